"""A catalog held in Arrow arrays, memory-mapped from the cache: for catalogs of millions of tracks.

A :class:`~melscribe.serve.catalog.Catalog` holds a Python :class:`~melscribe.serve.catalog.Track` object per
track, a few hundred bytes each before any metadata: ten million tracks would not fit in memory. A
:class:`ColumnarCatalog` holds the same content as Arrow arrays in two files, memory-mapped (opening one reads
nothing but its metadata and checksums; pages are read when touched):

- ``tracks.arrow``: per track, its id, its descriptor sets (a list of set ids: Arrow list arrays are offsets
  and values, CSR), its metadata as a JSON object and its audio path; plus ``id_order.npy``, the tracks sorted by
  id, to find a track by id (binary search);
- ``sets.arrow``: per unique descriptor set (first-seen order, as :attr:`Catalog.descriptor_sets`), its text,
  its descriptors (ids into the sorted vocabulary) and its tracks (CSR again).

A :class:`~melscribe.serve.catalog.Track` is made only for the tracks a request returns (:meth:`track`).

A catalog file is converted once (:func:`convert`) into ``$MELSCRIBE_HOME/catalogs/<key>/``, the key naming
the file by path, size and modification time: its rows are read :data:`~melscribe.serve.catalog.READ_ROWS`
at a time and checked by the code that reads a :class:`Catalog` (:func:`~melscribe.serve.catalog.read_records`,
:func:`~melscribe.serve.catalog.check_record`), so a bad row raises the same
:class:`~melscribe.errors.DataError` naming file, row and reason; tracks, sets and the content
:meth:`fingerprint` are those of the :class:`Catalog` of the same file. Arrow IPC, not Parquet, is the
cached form: its buffers are memory-mapped as they lie on disk, where Parquet's encoded pages must be decoded
into memory first. The folder is written atomically (a temporary folder, then a rename) with every file's size
and checksum in ``catalog.json``, verified when opened (:class:`~melscribe.errors.IndexCorruptError` naming the
file, after which :func:`open_columnar` converts again).

:func:`open_catalog` opens catalog files of :data:`COLUMNAR_MIN_BYTES` or more this way, smaller ones (and
MusicCaps) as a :class:`Catalog`, exactly as before.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from array import array
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from melscribe.config import home_dir
from melscribe.errors import DataError, IndexCorruptError, InvalidRequestError, StaleIndexError
from melscribe.fileio import CHECKSUM, file_checksum, replace_dir
from melscribe.serve.catalog import (Catalog, Track, check_record, merge_fields, read_records, set_text,
                                     warn_list_like)

log = logging.getLogger(__name__)

COLUMNAR_VERSION = 1
META_FILE = "catalog.json"
TRACKS_FILE = "tracks.arrow"
SETS_FILE = "sets.arrow"
ORDER_FILE = "id_order.npy"
#: :func:`open_catalog` opens catalog files at least this large as a :class:`ColumnarCatalog`.
COLUMNAR_MIN_BYTES = 64 << 20

TRACKS_SCHEMA = pa.schema([("track_id", pa.large_string()), ("sets", pa.list_(pa.int32())),
                           ("metadata", pa.large_string()), ("audio_path", pa.large_string())])
SETS_SCHEMA = pa.schema([("text", pa.large_string()), ("descriptors", pa.list_(pa.int32())),
                         ("tracks", pa.large_list(pa.int32()))])


def columnar_dir(path: str | os.PathLike) -> Path:
    """Where the columnar form of catalog file ``path`` is cached: ``<home>/catalogs/<key>``, the key hashing
    its absolute path, size and modification time (an edited file gets a new folder)."""
    path = Path(path).expanduser().absolute()
    st = path.stat()
    key = hashlib.sha256(f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return home_dir() / "catalogs" / key


class _Builder:
    """Accumulates tracks (rows of one track merged as :meth:`Catalog.from_file` merges them) in flat arrays."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.first_row = array("q")
        self.fields: list[str] = []  # per track: its fields as JSON (decoded again only when a row repeats it)
        self.set_ids: dict[str, int] = {}
        self.set_descriptors: list[tuple[str, ...]] = []
        self.pair_track, self.pair_set = array("i"), array("i")

    def add(self, tid: str, descriptors: tuple[str, ...], fields: dict[str, Any], row: int, path: Path) -> None:
        t = self.ids.get(tid)
        if t is None:
            t = self.ids[tid] = len(self.fields)
            self.first_row.append(row)
            self.fields.append(json.dumps(fields, default=str) if fields else "")
        elif fields:
            known = json.loads(self.fields[t]) if self.fields[t] else {}
            merge_fields(known, json.loads(json.dumps(fields, default=str)), tid, self.first_row[t], row, path)
            self.fields[t] = json.dumps(known)
        if descriptors:
            text = set_text(descriptors)
            s = self.set_ids.get(text)
            if s is None:
                s = self.set_ids[text] = len(self.set_descriptors)
                self.set_descriptors.append(descriptors)
            self.pair_track.append(t)
            self.pair_set.append(s)

    def write(self, folder: Path, source: str) -> dict[str, Any]:
        """Write the catalog files into ``folder`` (which exists); returns the metadata to record."""
        n_all = len(self.fields)
        pt = np.frombuffer(self.pair_track, dtype=np.int32) if len(self.pair_track) else np.zeros(0, np.int32)
        ps = np.frombuffer(self.pair_set, dtype=np.int32) if len(self.pair_set) else np.zeros(0, np.int32)
        # each track's sets in row order, each once
        order = np.argsort(pt, kind="stable")
        pt, ps = pt[order], ps[order]
        _, first = np.unique(pt.astype(np.int64) * max(len(self.set_descriptors), 1) + ps, return_index=True)
        keep = np.sort(first)
        pt, ps = pt[keep], ps[keep]
        # tracks without a set are dropped, as Catalog drops them
        has_set = np.zeros(n_all, bool)
        has_set[pt] = True
        kept_tracks = np.flatnonzero(has_set)
        if not len(kept_tracks):
            raise DataError(f"{source} has no descriptors: {n_all} track(s), none with a descriptor set; a "
                            "recommender needs descriptor sets to match requests against")
        dropped = n_all - len(kept_tracks)
        if dropped:
            names = [tid for tid, i in zip(self.ids, range(n_all)) if not has_set[i]][:5]
            with_audio = sum('"audio_path"' in self.fields[i] for i in np.flatnonzero(~has_set))
            warnings.warn(f"{source}: dropped {dropped} of {n_all} tracks that have no descriptor set and so could "
                          f"never be recommended ({with_audio} with an audio_path; tag audio with "
                          f"Catalog.with_audio_folder): {', '.join(map(repr, names))}" + (", …" if dropped > 5 else ""),
                          stacklevel=4)
        new_track = np.full(n_all, -1, np.int64)
        new_track[kept_tracks] = np.arange(len(kept_tracks))
        pt = new_track[pt].astype(np.int32)
        # sets renumbered in first-seen order over the tracks (Catalog.descriptor_sets' order)
        _, first_seen = np.unique(ps, return_index=True)
        set_order = ps[np.sort(first_seen)]
        new_set = np.full(len(self.set_descriptors), -1, np.int64)
        new_set[set_order] = np.arange(len(set_order))
        ps = new_set[ps].astype(np.int32)
        descriptors = [self.set_descriptors[s] for s in set_order.tolist()]
        vocabulary = sorted({d for ds in descriptors for d in ds})
        vocab_id = {d: i for i, d in enumerate(vocabulary)}
        ids = list(self.ids)
        track_ids = [ids[i] for i in kept_tracks.tolist()]
        fields = [json.loads(self.fields[i]) if self.fields[i] else {} for i in kept_tracks.tolist()]
        audio = [f.pop("audio_path", None) for f in fields]
        track_offsets = np.concatenate([[0], np.cumsum(np.bincount(pt, minlength=len(track_ids)))]).astype(np.int32)
        by_set = np.argsort(ps, kind="stable")
        set_offsets = np.concatenate([[0], np.cumsum(np.bincount(ps, minlength=len(descriptors)))]).astype(np.int64)
        desc_values = np.fromiter((vocab_id[d] for ds in descriptors for d in ds), np.int32)
        desc_offsets = np.concatenate([[0], np.cumsum([len(ds) for ds in descriptors])]).astype(np.int32)
        texts = [set_text(ds) for ds in descriptors]
        fingerprint = _fingerprint(track_ids, track_offsets, ps, descriptors, fields, audio)
        tracks = pa.table([pa.array(track_ids, pa.large_string()),
                           pa.ListArray.from_arrays(pa.array(track_offsets), pa.array(ps)),
                           pa.array([json.dumps(f, default=str) for f in fields], pa.large_string()),
                           pa.array(audio, pa.large_string())], schema=TRACKS_SCHEMA)
        sets = pa.table([pa.array(texts, pa.large_string()),
                         pa.ListArray.from_arrays(pa.array(desc_offsets), pa.array(desc_values)),
                         pa.LargeListArray.from_arrays(pa.array(set_offsets), pa.array(pt[by_set]))], schema=SETS_SCHEMA)
        _write_table(folder / TRACKS_FILE, tracks)
        _write_table(folder / SETS_FILE, sets)
        import pyarrow.compute as pc

        np.save(folder / ORDER_FILE, pc.sort_indices(tracks.column("track_id")).to_numpy().astype(np.int64))
        return {"source": source, "tracks": len(track_ids), "sets": len(texts), "vocabulary": vocabulary,
                "fingerprint": fingerprint}


def _fingerprint(track_ids: list[str], track_offsets: np.ndarray, track_sets: np.ndarray,
                 descriptors: list[tuple[str, ...]], fields: list[dict], audio: list[str | None]) -> str:
    """:meth:`Catalog.fingerprint` of these tracks (the same hash of the same content, track by track)."""
    h = hashlib.sha256()
    offsets = track_offsets.tolist()
    sets = track_sets.tolist()
    for i, tid in enumerate(track_ids):
        content = [tid, [list(descriptors[s]) for s in sets[offsets[i]:offsets[i + 1]]], fields[i], audio[i], False]
        h.update(json.dumps(content, sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def _write_table(path: Path, table: pa.Table) -> None:
    """Write ``table`` as one record batch: each column maps back as one array, without a copy."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=max(len(table), 1))


def _array(column: pa.ChunkedArray) -> pa.Array:
    """A column as one array: the mapped array itself when it has one chunk (as written), else a copy."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def convert(path: str | os.PathLike, folder: str | os.PathLike | None = None, *, progress: bool = True,
            chunk_rows: int | None = None) -> Path:
    """Convert catalog file ``path`` (CSV, JSONL or Parquet, the columns of :mod:`melscribe.serve.catalog`)
    into a columnar catalog in ``folder`` (default :func:`columnar_dir`), reading it ``chunk_rows`` rows at a time
    (:func:`~melscribe.serve.catalog.read_records`); returns the folder. :class:`DataError` naming file, row and reason on a bad row, as :meth:`Catalog.from_file`."""
    path = Path(path).expanduser()
    builder = _Builder()
    seen: set[str] = set()
    bar = tqdm(desc=f"reading {path.name}", unit=" rows", disable=not progress, unit_scale=True)
    for i, rec in read_records(path, chunk_rows):
        tid, descriptors, fields = check_record(rec, i, path)
        builder.add(tid, descriptors, fields, i, path)
        seen.update(descriptors)
        bar.update()
    bar.close()
    warn_list_like(path, seen)
    return _save(builder, str(path), Path(folder) if folder is not None else columnar_dir(path))


def from_catalog(catalog: Catalog, folder: str | os.PathLike) -> Path:
    """Write ``catalog`` (say MusicCaps) as a columnar catalog in ``folder``; returns the folder. Its audio-only
    tracks' audio embeddings are not kept (a columnar catalog has none)."""
    builder = _Builder()
    for t in catalog:
        fields = dict(t.metadata, **({"audio_path": t.audio_path} if t.audio_path else {}))
        for s in t.descriptor_sets:
            builder.add(t.id, s, fields, 0, Path(catalog.source))
    return _save(builder, catalog.source, Path(folder))


def _save(builder: _Builder, source: str, folder: Path) -> Path:
    folder = folder.expanduser().absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        meta = builder.write(tmp, source)
        meta["files"] = {f: {"bytes": (tmp / f).stat().st_size, CHECKSUM: file_checksum(tmp / f)}
                         for f in (TRACKS_FILE, SETS_FILE, ORDER_FILE)}
        meta["version"] = COLUMNAR_VERSION
        (tmp / META_FILE).write_text(json.dumps(meta))
        replace_dir(tmp, folder, marker=META_FILE, what="columnar catalog")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("columnar catalog of %s: %d tracks, %d descriptor sets in %s", source, meta["tracks"], meta["sets"], folder)
    return folder


def open_columnar(path: str | os.PathLike, *, progress: bool = True) -> "ColumnarCatalog":
    """The columnar catalog of catalog file ``path``: opened from the cache, or converted first (again when the
    cached one is corrupt)."""
    folder = columnar_dir(path)
    if (folder / META_FILE).is_file():
        try:
            return ColumnarCatalog.open(folder)
        except (IndexCorruptError, StaleIndexError) as e:
            warnings.warn(f"{e}; converting {path} again", stacklevel=2)
    return ColumnarCatalog.open(convert(path, folder, progress=progress))


def open_catalog(path: str | os.PathLike, columnar: bool | None = None) -> "Catalog | ColumnarCatalog":
    """The catalog in file ``path``: a :class:`ColumnarCatalog` when ``columnar`` (default: when the file has
    :data:`COLUMNAR_MIN_BYTES` or more), else a :class:`Catalog`."""
    path = Path(path).expanduser()
    if columnar is None:
        columnar = path.is_file() and path.stat().st_size >= COLUMNAR_MIN_BYTES
    return open_columnar(path) if columnar else Catalog.from_file(path)


class ColumnarCatalog:
    """A catalog in memory-mapped Arrow arrays (module doc), with the reading interface of :class:`Catalog`:
    ``len``, ``in``, iteration (each :class:`Track` made on the fly), :meth:`track`, :meth:`set_texts`,
    :meth:`set_rows`, :meth:`vocabulary`, :meth:`fingerprint`. It has no audio-only tracks (``audio`` is
    ``None``)."""

    audio = None

    def __init__(self, folder: Path, meta: dict[str, Any], tracks: pa.Table, sets: pa.Table, order: np.ndarray):
        self.folder, self.source = folder, str(meta["source"])
        self._meta, self._tracks, self._sets, self._order = meta, tracks, sets, order
        self._ids = _array(tracks.column("track_id"))
        self._vocabulary: list[str] = list(meta["vocabulary"])

    @classmethod
    def open(cls, folder: str | os.PathLike) -> "ColumnarCatalog":
        """Open the columnar catalog in ``folder``, every file's size and checksum verified first;
        :class:`IndexCorruptError` naming a file that is missing, altered or unreadable, :class:`StaleIndexError`
        for another format version."""
        folder = Path(folder).expanduser().absolute()
        meta_path = folder / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
            files = {name: (int(f["bytes"]), str(f[CHECKSUM])) for name, f in meta["files"].items()}
        except FileNotFoundError:
            raise IndexCorruptError(f"columnar catalog file {meta_path} is missing") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise IndexCorruptError(f"columnar catalog file {meta_path} is unreadable ({e})") from None
        if meta.get("version") != COLUMNAR_VERSION:
            raise StaleIndexError(f"the columnar catalog at {folder} has format version {meta.get('version')}, this "
                                  f"melscribe reads {COLUMNAR_VERSION}")
        if set(files) != {TRACKS_FILE, SETS_FILE, ORDER_FILE}:
            raise IndexCorruptError(f"columnar catalog file {meta_path} lists files {sorted(files)}")
        for name, (size, checksum) in files.items():
            p = folder / name
            try:
                if p.stat().st_size != size:
                    raise IndexCorruptError(f"columnar catalog file {p} is truncated or altered "
                                            f"({p.stat().st_size} of {size} bytes)")
                if file_checksum(p) != checksum:
                    raise IndexCorruptError(f"columnar catalog file {p} fails its checksum (altered or damaged)")
            except OSError as e:
                raise IndexCorruptError(f"columnar catalog file {p} is missing or unreadable ({e})") from None
        try:
            tracks = pa.ipc.open_file(pa.memory_map(str(folder / TRACKS_FILE))).read_all()
            sets = pa.ipc.open_file(pa.memory_map(str(folder / SETS_FILE))).read_all()
            order = np.load(folder / ORDER_FILE, mmap_mode="r")
        except (OSError, ValueError, pa.ArrowException) as e:
            raise IndexCorruptError(f"the columnar catalog at {folder} is unreadable: {e}") from None
        if (tracks.schema != TRACKS_SCHEMA or sets.schema != SETS_SCHEMA or len(tracks) != meta["tracks"]
                or len(sets) != meta["sets"] or order.shape != (len(tracks),)):
            raise IndexCorruptError(f"the files of the columnar catalog at {folder} disagree with {META_FILE}")
        return cls(folder, meta, tracks, sets, order)

    @property
    def name(self) -> str:
        """What the catalog is called to clients: its source's last path part."""
        return Path(self.source).name or self.source

    def __len__(self) -> int:
        return len(self._tracks)

    def __repr__(self) -> str:
        return f"ColumnarCatalog({self.source!r}, {len(self)} tracks, {len(self._sets)} descriptor sets)"

    def __iter__(self) -> Iterator[Track]:
        return (self._track_at(i) for i in range(len(self)))

    def __contains__(self, track_id: object) -> bool:
        return isinstance(track_id, str) and self._find(track_id) is not None

    def _find(self, track_id: str) -> int | None:
        ids, order = self._ids, self._order
        at = bisect.bisect_left(range(len(order)), track_id, key=lambda j: ids[int(order[j])].as_py())
        if at < len(order) and ids[int(order[at])].as_py() == track_id:
            return int(order[at])
        return None

    def track(self, track_id: str) -> Track:
        """The track with id ``track_id``; :class:`InvalidRequestError` if there is none."""
        i = self._find(track_id) if isinstance(track_id, str) else None
        if i is None:
            raise InvalidRequestError(f"unknown track id {track_id!r} (not in {self.name})")
        return self._track_at(i)

    @cached_property
    def _columns(self) -> dict[str, Any]:
        """The CSR arrays as numpy views of the mapped buffers."""
        t_sets = _array(self._tracks.column("sets"))
        s_desc = _array(self._sets.column("descriptors"))
        s_tracks = _array(self._sets.column("tracks"))
        return {"track_offsets": t_sets.offsets.to_numpy(), "track_sets": t_sets.values.to_numpy(),
                "desc_offsets": s_desc.offsets.to_numpy(), "desc_values": s_desc.values.to_numpy(),
                "set_offsets": s_tracks.offsets.to_numpy(), "set_tracks": s_tracks.values.to_numpy(),
                "metadata": _array(self._tracks.column("metadata")),
                "audio": _array(self._tracks.column("audio_path"))}

    @cached_property
    def _vocabulary_ids(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self._vocabulary)}

    def _set_descriptors(self, s: int) -> tuple[str, ...]:
        c = self._columns
        return tuple(self._vocabulary[d] for d in c["desc_values"][c["desc_offsets"][s]:c["desc_offsets"][s + 1]].tolist())

    def _track_at(self, i: int) -> Track:
        c = self._columns
        sets = c["track_sets"][c["track_offsets"][i]:c["track_offsets"][i + 1]].tolist()
        meta = c["metadata"][i].as_py()
        return Track(self._ids[i].as_py(), tuple(self._set_descriptors(s) for s in sets),
                     json.loads(meta) if meta else {}, c["audio"][i].as_py())

    def _set_track_rows(self, s: int) -> list[int]:
        c = self._columns
        return c["set_tracks"][c["set_offsets"][s]:c["set_offsets"][s + 1]].tolist()

    def set_texts(self) -> list[str]:
        """The unique descriptor-set texts in first-seen order (as :meth:`Catalog.set_texts`)."""
        return self._sets.column("text").to_pylist()

    @cached_property
    def descriptor_sets(self) -> dict[str, list[str]]:
        """Each unique descriptor-set text mapped to the ids of its tracks (as :attr:`Catalog.descriptor_sets`;
        built whole on first use: the serving path does not need it)."""
        texts = self.set_texts()
        return {text: [self._ids[t].as_py() for t in self._set_track_rows(s)] for s, text in enumerate(texts)}

    def vocabulary(self) -> list[str]:
        """Every descriptor of the catalog, sorted."""
        return list(self._vocabulary)

    def fingerprint(self) -> str:
        """The content hash, equal to :meth:`Catalog.fingerprint` of the same catalog (computed at conversion)."""
        return str(self._meta["fingerprint"])

    def with_audio_folder(self, folder: str | os.PathLike, *args: Any, **kwargs: Any) -> Catalog:
        """Not supported: audio-only tracks join a :class:`Catalog`; :class:`DataError` saying so."""
        raise DataError(f"{self.name} is opened as a columnar catalog (a file of {COLUMNAR_MIN_BYTES >> 20} MiB or "
                        f"more), which takes no audio-only tracks: serve the audio folder {folder} with a catalog of "
                        "its own (`--catalog none --audio-folder ...`)")

    def set_rows(self, texts: Sequence[str]) -> "ColumnarRows":
        """The descriptor sets ``texts`` (an index's rows) with their descriptors and tracks; an index built from
        this catalog holds its sets in the catalog's order (checked); :class:`StaleIndexError` if it holds a set
        the catalog lacks."""
        started = time.perf_counter()
        mine = self._sets.column("text")
        given = pa.chunked_array([pa.array(texts, pa.large_string())]) if len(texts) else mine.slice(0, 0)
        if len(given) == len(mine) and given.equals(mine):
            rows = None
        else:
            import pyarrow.compute as pc

            rows = pc.index_in(given, value_set=_array(mine))
            if rows.null_count:
                missing = texts[int(np.flatnonzero(rows.is_null().to_numpy(zero_copy_only=False))[0])]
                raise StaleIndexError(f"the index holds descriptor set {missing!r}, which {self.name} lacks")
            rows = rows.to_numpy()
        log.debug("matched %d index rows to the catalog's sets in %.2f s", len(texts), time.perf_counter() - started)
        return ColumnarRows(self, rows)


class ColumnarRows:
    """An index's rows over a :class:`ColumnarCatalog` (the interface of
    :class:`~melscribe.serve.catalog.CatalogRows`); ``rows[i]`` the catalog set of index row ``i``, or ``None``
    when they are the same."""

    def __init__(self, catalog: ColumnarCatalog, rows: np.ndarray | None):
        self.catalog, self._rows = catalog, rows

    def _set(self, row: int) -> int:
        return int(row) if self._rows is None else int(self._rows[row])

    def __len__(self) -> int:
        return len(self.catalog._sets) if self._rows is None else len(self._rows)

    def descriptors(self, row: int) -> tuple[str, ...]:
        """Row ``row``'s descriptors."""
        return self.catalog._set_descriptors(self._set(row))

    def tracks(self, row: int) -> list[Track]:
        """The tracks carrying row ``row``'s set, in catalog order."""
        return [self.catalog._track_at(t) for t in self.catalog._set_track_rows(self._set(row))]

    def allowed(self, filt: Any) -> np.ndarray:
        """The rows with at least one track that passes ``filt`` (a
        :class:`~melscribe.serve.request_checks.TrackFilter`), computed on the arrays (no track is made)."""
        cat, c = self.catalog, self.catalog._columns
        ok = np.ones(len(cat), bool)
        for tid in filt.exclude_tracks:
            i = cat._find(tid)
            if i is not None:
                ok[i] = False
        if filt.require or filt.exclude:
            vocab = cat._vocabulary_ids
            set_has = _sets_having(c, [vocab[d] for d in filt.exclude if d in vocab])
            track_sets, starts = c["track_sets"], c["track_offsets"][:-1]
            ok &= ~np.logical_or.reduceat(set_has[track_sets], starts)
            for d in filt.require:
                has = _sets_having(c, [vocab[d]] if d in vocab else [])
                ok &= np.logical_or.reduceat(has[track_sets], starts)
        passing = np.logical_or.reduceat(ok[c["set_tracks"]], c["set_offsets"][:-1])
        sets = np.flatnonzero(passing)
        if self._rows is None:
            return sets.astype(np.int64)
        return np.flatnonzero(np.isin(self._rows, sets)).astype(np.int64)


def _sets_having(c: dict[str, Any], descriptor_ids: Iterable[int]) -> np.ndarray:
    """Per catalog set, whether it holds one of ``descriptor_ids``."""
    ids = list(descriptor_ids)
    hits = np.isin(c["desc_values"], ids) if ids else np.zeros(len(c["desc_values"]), bool)
    return np.logical_or.reduceat(hits, c["desc_offsets"][:-1])
