"""The catalog of tracks a recommender can return.

A catalog file (CSV, JSONL or Parquet, chosen by suffix) has one row per descriptor set:

================  ========  ==============================================================================
column            required  meaning
================  ========  ==============================================================================
``track_id``      yes       the track's id; several rows with one id give that track several descriptor sets
``descriptors``   yes       a list, a Python-list literal or a comma-separated string of descriptors; may be
                            empty for a track known only by its audio (see ``audio_path``)
``title``         no        metadata shown with a recommendation
``artist``        no        metadata shown with a recommendation
``url``           no        metadata shown with a recommendation
``audio_path``    no        the track's audio file, relative to the catalog file's folder unless absolute
any other         no        kept as metadata
================  ========  ==============================================================================

A descriptor set's *text* is its descriptors joined by ``", "``: the text the bi-encoder embeds, shared by
every track with that set. Tracks that have only audio join a catalog through
:meth:`Catalog.with_audio_folder`, which tags them zero-shot with the catalog's vocabulary.

Rules, checked when a file is read (rows are counted from 1, the header not counted: in a CSV file row
*n* is line *n* + 1); a broken rule raises :class:`~melscribe.errors.DataError` naming the file, the row
and the reason:

- ``track_id`` is not empty;
- ``descriptors`` is empty, a string, or a list of strings (not a number, a mapping or nested lists);
- rows with one ``track_id`` are one track with several descriptor sets, and must agree on its metadata
  and ``audio_path``: a column filled in both rows must hold the same value (a column filled in only one
  row fills it in).

A track left without any descriptor set could never be recommended: it is dropped, with a warning giving
the number dropped (and how many of them had an ``audio_path``, which only
:meth:`Catalog.with_audio_folder` turns into descriptors). A catalog with no descriptor set at all is a
``DataError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from melscribe.data import load_musiccaps, parse_descriptors
from melscribe.errors import DataError, InvalidRequestError, StaleIndexError

REQUIRED_COLUMNS = ("track_id", "descriptors")
METADATA_COLUMNS = ("title", "artist", "url")


def set_text(descriptors: Iterable[str]) -> str:
    """The text of a descriptor set: its descriptors joined by ``", "``."""
    return ", ".join(descriptors)


@dataclass(frozen=True, eq=False)
class Track:
    """A track: id, metadata (``title``, ``artist``, ``url`` where known, plus source-specific keys), zero or
    more descriptor sets, an optional audio file. ``inferred`` marks descriptor sets that were predicted from
    the audio by zero-shot tagging rather than written by people."""

    id: str
    descriptor_sets: tuple[tuple[str, ...], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    audio_path: str | None = None
    inferred: bool = False

    @property
    def descriptors(self) -> frozenset[str]:
        """Every descriptor of every descriptor set of the track."""
        return frozenset(d for s in self.descriptor_sets for d in s)

    def _content(self) -> list:
        return [self.id, [list(s) for s in self.descriptor_sets], dict(self.metadata), self.audio_path, self.inferred]


@dataclass(frozen=True, eq=False)
class AudioTracks:
    """Audio embeddings of a catalog's audio-only tracks, made by ``model`` (a :class:`~melscribe.audio.joint.AudioTextModel`);
    ``failures`` lists the files that could not be decoded, with the reason."""

    model: Any
    track_ids: tuple[str, ...]
    embeddings: np.ndarray
    failures: tuple[tuple[str, str], ...] = ()


class Catalog:
    """An ordered collection of :class:`Track` with unique ids, each with at least one descriptor set:
    tracks without any are dropped, with a warning giving their number.

    ``audio`` holds the audio embeddings of tracks added by :meth:`with_audio_folder`, used to re-rank
    them by audio–text similarity.
    """

    def __init__(self, tracks: Iterable[Track], *, source: str = "catalog", audio: AudioTracks | None = None):
        tracks = tuple(tracks)
        self.source = source
        self.audio = audio
        self._by_id: dict[str, Track] = {}
        for t in tracks:
            if t.id in self._by_id:
                raise DataError(f"{source}: track id {t.id!r} appears twice")
            self._by_id[t.id] = t
        self.tracks: tuple[Track, ...] = tuple(t for t in tracks if t.descriptor_sets)
        if not self.tracks:
            raise DataError(f"{source} has no descriptors: {len(tracks)} track(s), none with a descriptor "
                            "set; a recommender needs descriptor sets to match requests against")
        dropped = [t for t in tracks if not t.descriptor_sets]
        if dropped:
            self._by_id = {t.id: t for t in self.tracks}
            with_audio = sum(t.audio_path is not None for t in dropped)
            warnings.warn(f"{source}: dropped {len(dropped)} of {len(tracks)} tracks that have no descriptor set and "
                          f"so could never be recommended ({with_audio} with an audio_path; tag audio with "
                          f"Catalog.with_audio_folder): {', '.join(repr(t.id) for t in dropped[:5])}"
                          + (", …" if len(dropped) > 5 else ""), stacklevel=2)

    @property
    def name(self) -> str:
        """What the catalog is called to clients: its source with each path cut to its last part
        (``catalog.csv + Music``), so that no server path reaches them."""
        return " + ".join(Path(part).name or part for part in self.source.split(" + "))

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(self.tracks)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._by_id

    def __repr__(self) -> str:
        return f"Catalog({self.source!r}, {len(self)} tracks, {len(self.descriptor_sets)} descriptor sets)"

    def track(self, track_id: str) -> Track:
        """The track with id ``track_id``; :class:`InvalidRequestError` if there is none."""
        try:
            return self._by_id[track_id]
        except (KeyError, TypeError):
            raise InvalidRequestError(f"unknown track id {track_id!r} (not in {self.name})") from None

    @cached_property
    def descriptor_sets(self) -> dict[str, list[str]]:
        """Each unique descriptor-set text (descriptors joined by ``", "``), in first-seen order, mapped to the
        ids of the tracks that have that set."""
        out: dict[str, list[str]] = {}
        for t in self.tracks:
            for s in t.descriptor_sets:
                out.setdefault(set_text(s), []).append(t.id)
        return out

    def vocabulary(self) -> list[str]:
        """Every descriptor of the catalog, sorted."""
        return sorted({d for t in self.tracks for d in t.descriptors})

    def fingerprint(self) -> str:
        """A stable hash (SHA-256, hex) of the catalog's content: ids, descriptor sets, metadata, audio paths."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        for t in self.tracks:
            h.update(json.dumps(t._content(), sort_keys=True, default=str).encode())
            h.update(b"\n")
        return h.hexdigest()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Catalog":
        """Load a catalog from a ``.csv``, ``.jsonl`` or ``.parquet`` file with the columns in the module doc
        (read in chunks of :data:`READ_ROWS` rows by :func:`read_records`, each row checked by
        :func:`check_record`)."""
        path = Path(path).expanduser()
        rows: dict[str, dict[str, Any]] = {}
        for i, rec in read_records(path):
            tid, descriptors, fields = check_record(rec, i, path)
            entry = rows.setdefault(tid, {"sets": [], "fields": {}, "row": i})
            merge_fields(entry["fields"], fields, tid, entry["row"], i, path)
            if descriptors and descriptors not in entry["sets"]:
                entry["sets"].append(descriptors)
        tracks = []
        for tid, e in rows.items():
            audio = e["fields"].pop("audio_path", None)
            tracks.append(Track(tid, tuple(e["sets"]), e["fields"], audio))
        warn_list_like(path, (d for t in tracks for ds in t.descriptor_sets for d in ds))
        return cls(tracks, source=str(path))

    def set_texts(self) -> list[str]:
        """The unique descriptor-set texts in first-seen order (the rows of an index built from the catalog)."""
        return list(self.descriptor_sets)

    def set_rows(self, texts: Sequence[str]) -> "CatalogRows":
        """The descriptor sets ``texts`` (an index's rows) with their descriptors and tracks."""
        sets = {set_text(s): s for t in self.tracks for s in t.descriptor_sets}
        ids = self.descriptor_sets
        try:
            return CatalogRows(self, [(sets[text], ids[text]) for text in texts])
        except KeyError as e:
            raise StaleIndexError(f"the index holds descriptor set {e.args[0]!r}, which {self.name} lacks") from None

    @classmethod
    def from_musiccaps(cls, data_dir: str | os.PathLike | None = None) -> "Catalog":
        """All 5,521 MusicCaps clips, each with its aspect list as one descriptor set and, as metadata, its
        YouTube id, time window and a YouTube URL starting at the clip."""
        tracks = []
        for r in load_musiccaps(data_dir):
            start = r.meta.get("start_s", 0)
            meta = dict(r.meta, url=f"https://www.youtube.com/watch?v={r.track_id}&t={start}s")
            tracks.append(Track(r.track_id, (r.descriptors,) if r.descriptors else (), meta))
        return cls(tracks, source="MusicCaps")

    def with_audio_folder(self, folder: str | os.PathLike, model: Any = None, *, top_k: int = 5,
                          cache_dir: str | os.PathLike | None = None) -> "Catalog":
        """A new catalog with one audio-only track per audio file under ``folder`` (id: the file's path
        relative to ``folder``), described by ``model`` (a :class:`~melscribe.audio.joint.AudioTextModel`;
        default :func:`default_audio_model`, the musicnn tagger in the default bi-encoder's space):
        a model with ``describe_files`` (the offline default,
        :class:`~melscribe.audio.tagger_space.TaggerTextModel`) gives each file its tags above its threshold;
        any other (CLAP) tags it zero-shot with its ``top_k`` closest descriptors of this catalog's vocabulary.
        Either becomes the track's descriptor set (``inferred``).

        Files that cannot be decoded are skipped with a warning and listed in ``audio.failures``. What the
        model computes per file is cached under ``cache_dir`` (default:
        :func:`~melscribe.audio.files.embed_audio_files`'s) by file hash and model.
        """
        model = default_audio_model() if model is None else model
        if self.audio is not None and len(self.audio.track_ids) and self.audio.model is not model:
            raise DataError(f"{self.source} has audio-only tracks embedded by another audio model")
        new, audio = _audio_tracks(Path(folder).expanduser(), model, self.vocabulary(), top_k, cache_dir)
        for t in new:
            if t.id in self:
                raise DataError(f"audio file {t.audio_path} would get track id {t.id!r}, which {self.source} "
                                "already has")
        if self.audio is not None and len(self.audio.track_ids):  # audio-only tracks added before
            audio = AudioTracks(model, self.audio.track_ids + audio.track_ids,
                                np.vstack([self.audio.embeddings, audio.embeddings]),
                                self.audio.failures + audio.failures)
        return Catalog([*self.tracks, *new], source=f"{self.source} + {folder}", audio=audio)

    @classmethod
    def from_audio_folder(cls, folder: str | os.PathLike, model: Any = None, *, vocabulary: Iterable[str] = (),
                          top_k: int = 5, cache_dir: str | os.PathLike | None = None) -> "Catalog":
        """A catalog of the audio files under ``folder`` alone, described as by :meth:`with_audio_folder`
        (same default ``model``). A model that tags zero-shot (CLAP) needs the ``vocabulary`` to tag with."""
        model = default_audio_model() if model is None else model
        vocabulary = list(vocabulary)
        if not vocabulary and not hasattr(model, "describe_files"):
            raise InvalidRequestError(f"{getattr(model, 'name', model)} tags audio with a vocabulary: pass "
                                      "vocabulary=..., or use a tagger (the default musicnn model)")
        new, audio = _audio_tracks(Path(folder).expanduser(), model, vocabulary, top_k, cache_dir)
        return cls(new, source=str(folder), audio=audio)


class CatalogRows:
    """The descriptor sets of an index's rows, for ranking: row ``i``'s descriptors (:meth:`descriptors`), the
    tracks that carry it (:meth:`tracks`), and the rows with a track that passes a filter
    (:meth:`allowed`). :class:`~melscribe.serve.columnar_catalog.ColumnarRows` is the same over a columnar
    catalog."""

    def __init__(self, catalog: Catalog, rows: list[tuple[tuple[str, ...], list[str]]]):
        self.catalog, self._rows = catalog, rows

    def __len__(self) -> int:
        return len(self._rows)

    def descriptors(self, row: int) -> tuple[str, ...]:
        """Row ``row``'s descriptors."""
        return self._rows[row][0]

    def tracks(self, row: int) -> list[Track]:
        """The tracks carrying row ``row``'s set, in catalog order."""
        return [self.catalog.track(t) for t in self._rows[row][1]]

    def allowed(self, filt: Any) -> np.ndarray:
        """The rows with at least one track that passes ``filt`` (a
        :class:`~melscribe.serve.request_checks.TrackFilter`)."""
        track = self.catalog.track
        return np.array([i for i, (_, ids) in enumerate(self._rows) if any(filt.accepts(track(t)) for t in ids)],
                        dtype=np.int64)


def default_audio_model() -> Any:
    """The audio model used when none is given: the musicnn tagger (``musicnn-mtt``) in the space of the default
    bi-encoder (:func:`melscribe.encoding.encoder.default_model`), on the serving backend."""
    from melscribe.audio.models import load_audio_model
    from melscribe.encoding.encoder import SERVING_BACKEND, TextEncoder

    return load_audio_model(None, TextEncoder(backend=SERVING_BACKEND))


def _audio_tracks(folder: Path, model: Any, vocabulary: list[str], top_k: int,
                  cache_dir: str | os.PathLike | None) -> tuple[list[Track], AudioTracks]:
    """The audio-only tracks of ``folder``'s audio files, and their :class:`AudioTracks` (see
    :meth:`Catalog.with_audio_folder`)."""
    from melscribe.audio.files import AUDIO_SUFFIXES, audio_files
    from melscribe.audio.joint import describe_audio

    if not folder.is_dir():
        raise DataError(f"audio folder {folder} does not exist")
    paths = audio_files(folder)
    if not paths:
        raise DataError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {folder}")
    described = describe_audio(model, paths, vocabulary, top_k=top_k, cache_dir=cache_dir)
    failures = tuple((str(p), str(reason)) for p, reason in described.failures)
    if failures:
        warnings.warn(f"skipped {len(failures)} undecodable audio file(s): "
                      + "; ".join(f"{p} ({r})" for p, r in failures), stacklevel=3)
    if not len(described.paths):
        raise DataError(f"none of the {len(paths)} audio file(s) under {folder} could be decoded")
    tracks = [Track(Path(p).relative_to(folder).as_posix(), (tuple(d for d, _ in tagged),), {"title": Path(p).stem},
                    str(p), inferred=True)
              for p, tagged in zip(described.paths, described.descriptors)]
    vectors = np.asarray(described.embeddings, dtype=np.float32)
    return tracks, AudioTracks(model, tuple(t.id for t in tracks), vectors, failures)


#: Rows read at a time from a catalog file: a catalog of up to this many rows is read in one piece (CSV and
#: JSON column types are inferred per piece, as pandas does).
READ_ROWS = 65_536


def read_records(path: Path, chunk_rows: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a catalog file as ``(row number from 1, record)``, read ``chunk_rows`` at a time (CSV and
    JSONL with pandas, Parquet by row batches with pyarrow, each piece converted as ``pandas`` converts it;
    default :data:`READ_ROWS`);
    :class:`DataError` naming the file if it is missing, unreadable, of another format, or lacks a required
    column."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"catalog {path} is a directory, expected a CSV/JSONL/Parquet file")
    if not path.is_file():
        raise DataError(f"catalog file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".parquet"):
        raise DataError(f"catalog {path}: unsupported format {suffix!r}; use .csv, .jsonl or .parquet")
    row, pieces = 0, _pieces(path, suffix, chunk_rows or READ_ROWS)
    while True:
        try:
            df = next(pieces)
        except StopIteration:
            break
        except Exception as e:  # pandas and pyarrow raise many types for broken files
            raise DataError(f"cannot read catalog {path}: {e}") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(f"catalog {path} lacks required column(s) {', '.join(missing)}; "
                            f"it has {', '.join(map(str, df.columns))}")
        for rec in df.to_dict("records"):
            row += 1
            yield row, rec


def _pieces(path: Path, suffix: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if suffix == ".csv":
        # no missing-value guessing: an id or a title "NA", "null", "None" or "nan" is read as written
        yield from pd.read_csv(path, dtype={"track_id": str}, keep_default_na=False, chunksize=chunk_rows)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as f:
            if f.metadata.num_rows == 0:
                yield f.schema_arrow.empty_table().to_pandas()
            for batch in f.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
    else:
        yield from pd.read_json(path, lines=True, dtype={"track_id": str}, chunksize=chunk_rows)


def check_record(rec: dict[str, Any], row: int, path: Path) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """A catalog row checked (module doc): its track id, descriptors, and other fields (``audio_path`` made
    relative to the catalog file's folder); :class:`DataError` naming the file, the row and the reason."""
    where = f"catalog {path}, row {row}"
    rec = dict(rec)
    tid = rec.pop("track_id")
    tid = str(_plain(tid)).strip() if _present(tid) else ""
    if not tid:
        raise DataError(f"{where}: empty track_id")
    descriptors = _descriptors(rec.pop("descriptors"), where)
    audio = rec.pop("audio_path", None)
    fields = {k: _plain(v) for k, v in rec.items() if _present(v)}
    if _present(audio):
        fields["audio_path"] = str(path.parent / Path(str(audio)).expanduser())
    return tid, descriptors, fields


def merge_fields(known: dict[str, Any], fields: dict[str, Any], tid: str, first_row: int, row: int,
                 path: Path) -> None:
    """Fill a track's ``known`` fields with those of another of its rows; :class:`DataError` if a field
    filled in both differs (the rows of one track must agree on its metadata)."""
    for k, v in fields.items():
        if k in known and known[k] != v:
            raise DataError(f"catalog {path}, row {row}: track_id {tid!r} repeats row {first_row} with another {k} "
                            f"({known[k]!r} there, {v!r} here); the rows of one track must agree on its metadata")
    known.update(fields)


def _descriptors(value: Any, where: str) -> tuple[str, ...]:
    """The descriptors of a ``descriptors`` cell: empty, a string (a list literal or comma-separated), or a
    list of strings; :class:`DataError` saying ``where`` for anything else."""
    if not _present(value):
        return ()
    if isinstance(value, (list, tuple, np.ndarray)):
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise DataError(f"{where}: descriptors must be strings, not {type(bad[0]).__name__} ({_short(bad[0])})")
    elif not isinstance(value, str):
        raise DataError(f"{where}: descriptors must be a list of strings or a string, not {type(value).__name__} "
                        f"({_short(value)})")
    try:
        return parse_descriptors(value)
    except DataError as e:
        raise DataError(f"{where}: {e}") from None


#: Separators other than the comma that people use in a descriptor cell.
LIST_LIKE = re.compile(r"[|;]")


def warn_list_like(path: Path, descriptors: Iterable[str]) -> None:
    """Warn when descriptors look like lists joined by another separator ("rock|pop"): each is read as one."""
    odd = sorted({d for d in descriptors if LIST_LIKE.search(d)})
    if odd:
        warnings.warn(f"catalog {path}: {len(odd)} descriptor(s) contain '|' or ';' and are each read as one "
                      f"descriptor (e.g. {odd[0]!r}); separate descriptors with commas, or give a list "
                      "([\"rock\", \"pop\"])", stacklevel=3)


def _short(v: Any, limit: int = 60) -> str:
    text = repr(_plain(v))
    return text if len(text) <= limit else text[:limit] + "…"


def _present(v: Any) -> bool:
    """Whether a cell holds a value: not missing (None, NaN, NA) and not a blank string."""
    if v is None:
        return False
    if isinstance(v, str):
        return bool(v.strip())
    if np.ndim(v) == 0:
        try:
            return not pd.isna(v)
        except (TypeError, ValueError):
            return True
    return True


def _plain(v: Any) -> Any:
    """numpy scalars and arrays as plain Python values, so metadata serialises and hashes stably."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v
