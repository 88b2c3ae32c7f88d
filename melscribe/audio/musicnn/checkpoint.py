"""Read a TensorFlow 1 checkpoint (a "tensor bundle") with the standard library and numpy.

A bundle is two files sharing a prefix: ``<prefix>.index`` and ``<prefix>.data-00000-of-00001``.
musicnn's prefix is the folder itself, so the files are the hidden ``.index`` and
``.data-00000-of-00001`` inside each model folder.

``.index`` is a LevelDB-style sorted table: data blocks of prefix-compressed key/value entries, an
index block pointing at them, and a 48-byte footer (two block handles and a magic number). Its keys
are variable names; each value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size) whose
offset/size locate the variable's raw little-endian bytes in the data file. The empty key holds the
bundle header and is skipped.

Only what musicnn's checkpoints use is supported: uncompressed blocks, one data shard, float32
tensors (other dtypes are rejected with a :class:`DataError`). The per-tensor CRC32C stored in each
entry is not verified (CRC32C in pure Python costs seconds per model): the structural checks below —
the table's magic number, block and entry bounds, sizes agreeing with shapes, offsets inside the
data file — catch missing, truncated or mangled files, but not a changed byte inside a tensor.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from melscribe.errors import DataError

INDEX_FILE = ".index"
DATA_FILE = ".data-00000-of-00001"

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # one compression-type byte and a CRC32C
_DT_FLOAT = 1


class _Corrupt(Exception):
    """Internal: a malformed structure; turned into a DataError naming the file."""


def read_checkpoint(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of the bundle in ``folder`` (files ``.index`` and ``.data-00000-of-00001``), by name.

    Raises :class:`DataError` when a file is missing, truncated or not a float32 bundle.
    """
    folder = Path(folder)
    index_path, data_path = folder / INDEX_FILE, folder / DATA_FILE
    for p in (index_path, data_path):
        if not p.is_file():
            raise DataError(f"TensorFlow checkpoint file {p} is missing")
    try:
        entries = _table_entries(index_path.read_bytes())
    except (_Corrupt, IndexError, struct.error) as e:
        raise DataError(f"TensorFlow checkpoint index {index_path} is corrupt: {e}") from None
    data = data_path.read_bytes()
    tensors = {}
    for key, value in entries:
        if not key:
            continue  # the bundle header
        name = key.decode("utf-8", errors="replace")
        try:
            tensors[name] = _tensor(_parse_entry(value), data)
        except (_Corrupt, IndexError) as e:
            raise DataError(f"TensorFlow checkpoint {folder}: variable {name!r}: {e}") from None
    return tensors


def _table_entries(buf: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a LevelDB-style table, in key order."""
    if len(buf) < _FOOTER_SIZE:
        raise _Corrupt("shorter than a table footer")
    footer = buf[-_FOOTER_SIZE:]
    if struct.unpack("<Q", footer[-8:])[0] != _TABLE_MAGIC:
        raise _Corrupt("bad magic number (not a table, or truncated)")
    _, pos = _block_handle(footer, 0)  # the meta-index handle, unused
    (index_offset, index_size), _ = _block_handle(footer, pos)
    entries = []
    for _, handle in _block_entries(_block(buf, index_offset, index_size)):
        (offset, size), _ = _block_handle(handle, 0)
        entries.extend(_block_entries(_block(buf, offset, size)))
    return entries


def _block(buf: bytes, offset: int, size: int) -> bytes:
    """The contents of the block at ``offset`` (its trailer checked for "no compression")."""
    end = offset + size
    if end + _BLOCK_TRAILER_SIZE > len(buf) - _FOOTER_SIZE:
        raise _Corrupt(f"block at {offset} (+{size}) runs past the end of the file")
    if buf[end] != 0:
        raise _Corrupt(f"block at {offset} is compressed (type {buf[end]}), which is not supported")
    return buf[offset:end]


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """The prefix-compressed entries of one block (the restart array at its end is skipped)."""
    if len(block) < 4:
        raise _Corrupt("block shorter than its restart count")
    n_restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 * (n_restarts + 1)
    if end < 0:
        raise _Corrupt("restart array larger than its block")
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + value_len > end:
            raise _Corrupt("entry runs past its block")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def _block_handle(buf: bytes, pos: int) -> tuple[tuple[int, int], int]:
    """A (offset, size) block handle at ``pos`` and the position after it."""
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return (offset, size), pos


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint at ``pos`` and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Corrupt("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a protobuf message: ints for varint/fixed, bytes for nested."""
    fields, pos = [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _Corrupt("protobuf field runs past its message")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack("<I", buf[pos : pos + 4])[0], pos + 4
        elif wire == 1:
            value, pos = struct.unpack("<Q", buf[pos : pos + 8])[0], pos + 8
        else:
            raise _Corrupt(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def _parse_entry(value: bytes) -> dict:
    """A ``BundleEntryProto``: dtype (1), shape (2), shard_id (3), offset (4), size (5), slices (7)."""
    entry = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "slices": False}
    for number, field in _proto_fields(value):
        if number == 1:
            entry["dtype"] = field
        elif number == 2:
            entry["shape"] = _parse_shape(field)
        elif number in (3, 4, 5):
            entry[{3: "shard_id", 4: "offset", 5: "size"}[number]] = field
        elif number == 7:
            entry["slices"] = True
    return entry


def _parse_shape(buf: bytes) -> list[int]:
    """A ``TensorShapeProto``: its repeated ``dim`` (2), each with a ``size`` (1)."""
    dims = []
    for number, dim in _proto_fields(buf):
        if number == 2:
            dims.append(next((v for n, v in _proto_fields(dim) if n == 1), 0))
    return dims


def _tensor(entry: dict, data: bytes) -> np.ndarray:
    """The float32 array an entry points at in the data file."""
    if entry["dtype"] != _DT_FLOAT:
        raise _Corrupt(f"dtype {entry['dtype']} is not float32 (1)")
    if entry["shard_id"] != 0 or entry["slices"]:
        raise _Corrupt("sharded or sliced tensors are not supported")
    shape, offset, size = entry["shape"], entry["offset"], entry["size"]
    if size != 4 * int(np.prod(shape)):
        raise _Corrupt(f"{size} bytes do not hold a float32 tensor of shape {shape}")
    if offset + size > len(data):
        raise _Corrupt(f"bytes {offset}..{offset + size} lie past the end of the data file ({len(data)} bytes)")
    return np.frombuffer(data, dtype="<f4", count=size // 4, offset=offset).reshape(shape).astype(np.float32)
