"""Atomic file and folder writes: a crash never leaves a half-written artifact in place."""

from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import xxhash

from melscribe.errors import DataError


#: The checksum of melscribe's files (indexes, published models): xxHash's 128-bit XXH3, hashed at memory speed.
CHECKSUM = "xxh3_128"
_HASH_CHUNK = 8 << 20


def file_checksum(file: str | os.PathLike | Any) -> str:
    """The :data:`CHECKSUM` (hex) of the content of a file, given by path or as an open binary file (read
    from its current position to its end), read in chunks."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb", buffering=0) as f:
            return file_checksum(f)
    h = xxhash.xxh3_128()
    buf = bytearray(_HASH_CHUNK)
    view = memoryview(buf)
    while n := file.readinto(buf):
        h.update(view[:n])
    return h.hexdigest()


#: Fault tests stop a writer at a known point: with ``MELSCRIBE_PAUSE_AT`` naming a :func:`pause_point`, the
#: process writes the point's name to the file ``MELSCRIBE_PAUSE_FILE`` when it gets there and waits, to be killed.
PAUSE_AT_ENV, PAUSE_FILE_ENV = "MELSCRIBE_PAUSE_AT", "MELSCRIBE_PAUSE_FILE"


def pause_point(name: str) -> None:
    """A point where a fault test may stop this process (:data:`PAUSE_AT_ENV`); nothing when it does not ask.
    Points: ``index-written`` (an index's files written, not yet in place), ``index-moved-aside`` (between the two
    renames of :func:`replace_dir`), ``checkpoint-saved`` (a training checkpoint on disk)."""
    if os.environ.get(PAUSE_AT_ENV) != name:
        return
    Path(os.environ[PAUSE_FILE_ENV]).write_text(name)
    while True:
        time.sleep(60)


def os_error_reason(e: OSError) -> str:
    """What an ``OSError`` of a write means, in words a user acts on: full disk, read-only, no permission."""
    reasons = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.ENOTDIR: "a part of the path is a file, not a folder",
               errno.EEXIST: "a file is in the way of the folder"}
    return reasons.get(e.errno, e.strerror or str(e))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling file and a rename."""
    path = Path(path)
    tmp = temp_sibling(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def check_replaceable(dst: str | os.PathLike, marker: str, what: str) -> None:
    """Raise :class:`~melscribe.errors.DataError` naming ``dst`` unless it is absent, an empty folder, or a folder
    holding ``marker``: the file that marks a melscribe ``what`` (an index's ``meta.json``, a model's
    ``config.json``). Nothing else, a user's folder, a file or ``.``, is ever replaced."""
    dst = Path(dst)
    if not (dst.exists() or dst.is_symlink()):
        return
    if not dst.is_dir() or dst.is_symlink():
        raise DataError(f"{dst} is not a folder: melscribe will not replace it with a {what}; choose another path")
    if (dst / marker).is_file():
        return
    try:
        empty = next(dst.iterdir(), None) is None
    except OSError as e:
        raise DataError(f"cannot read the folder {dst}: {e.strerror or e}") from e
    if not empty:
        raise DataError(f"{dst} holds files but no {marker}: it is not a melscribe {what}, and melscribe will not "
                        f"replace it; choose an empty or new folder")


def replace_dir(src: str | os.PathLike, dst: str | os.PathLike, *, marker: str, what: str) -> Path:
    """Move folder ``src`` to ``dst``, replacing ``dst`` if it exists (renames only, same file system); ``dst``
    must be absent, empty, or a melscribe ``what`` marked by ``marker`` (:func:`check_replaceable`)."""
    src, dst = Path(src), Path(dst)
    check_replaceable(dst, marker, what)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
        pause_point("index-moved-aside")
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
    return dst


def temp_sibling(path: str | os.PathLike) -> Path:
    """A fresh temporary path beside ``path`` (same file system, so a rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
