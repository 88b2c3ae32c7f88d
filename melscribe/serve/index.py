"""A faiss index of descriptor-set embeddings, saved to and loaded from a folder.

Each unique descriptor-set text is embedded once by a sentence encoder (L2-normalised, so inner product is
cosine similarity). Up to :data:`FLAT_MAX` sets the index is exact (``IndexFlatIP``). Above, it is
approximate, and its best ``REFINE_K_FACTOR × k`` candidates are re-scored exactly on the float32 vectors
(``IndexRefineFlat``):

- ``"hnsw"`` (the default up to :data:`HNSW_MAX` sets): an HNSW graph over 8-bit codes (``IndexHNSWSQ``,
  ``M`` = :data:`HNSW_M`, searched with ``efSearch`` = :data:`HNSW_EF_SEARCH`).
- ``"ivf"`` (the default above): an inverted file of 8-bit codes (``IndexIVFScalarQuantizer``) over
  :func:`ivf_lists` k-means cells, of which :func:`default_nprobe` are scanned per query; the cells'
  centroids are kept as 8-bit codes too. Its exact vectors are kept apart (:data:`VECTORS_FILE`) and
  memory-mapped when loaded: re-scoring reads a few pages per query instead of holding every float32 vector in
  RAM (4× the codes). :meth:`DescriptorIndex.build` builds it in pieces (:func:`build_ivf_in_pieces`): trained
  on a seeded sample, filled chunk by chunk from the embedding cache, never all vectors in memory at once.
  Indexes saved before (``IndexRefineFlat`` over the inverted file) still load and search as they did.

In ``experiments/results/bench_recommend_trained.md`` the graph was the faster of the two at 100k sets
for the same recall, the inverted file at 1M: scanning a few long lists is sequential memory access, which
suffers less than a graph walk from the cache misses left by encoding the request. :data:`HNSW_MAX` lies
between the two measured sizes.

A single query is searched on one OpenMP thread (faster on a busy machine; concurrent requests run in
parallel threads instead). The descriptor vocabulary is embedded too, to explain matches descriptor by
descriptor.

A saved index is a folder of three files (four for an inverted file), written atomically (a temporary folder
beside it, then ``os.replace``): :data:`FAISS_FILE` (``faiss.write_index``), :data:`VOCAB_FILE` (vocabulary
embeddings), :data:`VECTORS_FILE` (an inverted file's exact vectors) and :data:`META_FILE` (texts, vocabulary,
model name and probe embedding, embedding dimension, catalog fingerprint, index kind, format version, and the
size and checksum of the other files).

Integrity: every file is checksummed (:data:`CHECKSUM`, xxHash's 128-bit XXH3, hashed at memory speed,
~13 GB/s here: ~0.15 s for the ~2 GB of a 1M-set index) when saved, and verified before it is parsed when
loaded; ``meta.json`` carries the checksum of its own content (see :func:`write_meta`). A missing, truncated,
altered or unreadable file raises :class:`IndexCorruptError` naming it.

Concurrency: writers of one folder take an inter-process lock (:func:`writer_lock`, a lock file beside the
folder), so saves follow one another. Readers take no lock: :meth:`DescriptorIndex.load` opens the three
files of one version and checks that the folder was not replaced meanwhile, else it tries again, so it
always reads one complete version. A save killed midway (even by SIGKILL) leaves a temporary or moved-aside
folder beside the index; the next save, or the next load when no writer holds the lock, removes them, after
putting back the newest complete version if the kill came between the two renames that replace the folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import faiss
import filelock
import numpy as np
import xxhash
from tqdm.auto import tqdm

from melscribe.encoding.encoder import TextEncoder
from melscribe.errors import IndexBusyError, IndexCorruptError, InvalidRequestError, MelscribeError, StaleIndexError
from melscribe.fileio import CHECKSUM, file_checksum, pause_point, replace_dir, temp_sibling
from melscribe.serve import embedding_cache

log = logging.getLogger(__name__)

#: Format version of a saved index; 2 added checksums (version 1 indexes are stale: rebuilt or refused).
INDEX_VERSION = 2
FAISS_FILE = "index.faiss"
VOCAB_FILE = "vocabulary.npy"
#: An inverted file's exact vectors (float32 ``.npy``), memory-mapped when loaded.
VECTORS_FILE = "vectors.npy"
META_FILE = "meta.json"
KINDS = ("auto", "flat", "ivf", "hnsw")
#: ``kind="auto"``: exact up to ``FLAT_MAX`` descriptor sets, HNSW up to ``HNSW_MAX``, IVF above.
FLAT_MAX = 20_000
HNSW_MAX = 500_000
#: Inverted lists: about ``IVF_LISTS_PER_SQRT × √n`` (a power of two), trained on ``IVF_TRAIN_PER_LIST``
#: sampled vectors per list (seeded), with ``IVF_KMEANS_ITERATIONS`` rounds of k-means.
IVF_LISTS_PER_SQRT = 8
IVF_TRAIN_PER_LIST = 64
IVF_KMEANS_ITERATIONS = 10
#: Lists scanned per query (all of them if fewer). At 1M sets recall@10 reached 0.983 at nprobe 128 with
#: 4,096 lists (1.87 ms) and at nprobe 160 with 8,192 (1.55 ms): ``bench_recommend_trained.md`` as
#: committed in 73529d6 and 377eafd.
IVF_NPROBE = 160
#: Environment variable overriding :data:`IVF_NPROBE` for a process (a large catalog trading recall for
#: latency: at ten million tracks nprobe 128 or 96, ``experiments/results/large_catalog.md``).
NPROBE_ENV = "MELSCRIBE_IVF_NPROBE"
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
HNSW_EF_SEARCH = 512
REFINE_K_FACTOR = 2
#: Probe embeddings (``TextEncoder.probe``) at least this close come from the same weights.
PROBE_MIN_COSINE = 0.999
#: The checksum of index files (xxHash XXH3, 128 bits, hex) and the chunk size it reads files in.
#: How long a save waits for another process's save of the same folder to finish.
SAVE_LOCK_TIMEOUT = 600.0
#: How many times a load looks again before it calls a file missing rather than replaced by a writer.
REPLACED_CHECKS = 3
#: How long a load keeps trying while other processes replace the folder under it.
LOAD_RETRY_SECONDS = 10.0



def same_model(probe_a: np.ndarray, probe_b: np.ndarray) -> bool:
    """Whether two probe embeddings come from the same model (same shape, cosine ≥ 0.999)."""
    return probe_a.shape == probe_b.shape and float(probe_a @ probe_b) >= PROBE_MIN_COSINE


def check_build(built: Any, encoder: TextEncoder | None, fingerprint: str | None, where: str,
                rebuild: str = "`melscribe index build`") -> None:
    """Raise :class:`StaleIndexError` (naming ``where`` and how to ``rebuild``) if the store ``built`` (a
    :class:`DescriptorIndex` or another store with ``model_probe``, ``model_name``, ``encoded_alone`` and
    ``fingerprint``) was built with another model than ``encoder`` or for another catalog than the one with
    ``fingerprint``, or, for an encoder that embeds each text alone (onnx-int8), with the descriptor sets
    embedded in shared batches (as melscribe did before), which such an encoder's requests would not match
    exactly."""
    if encoder is not None and not same_model(built.model_probe, encoder.probe):
        raise StaleIndexError(f"{where} was built with model {built.model_name!r}, which differs from "
                              f"{encoder.name!r}: rebuild it ({rebuild}) or use the model it was built with")
    if encoder is not None and encoder.encodes_each_text_alone and not built.encoded_alone:
        raise StaleIndexError(f"{where} holds descriptor sets embedded in shared batches, and {encoder!r} now "
                              f"embeds each text alone, as it embeds requests: rebuild it ({rebuild})")
    if fingerprint is not None and fingerprint != built.fingerprint:
        raise StaleIndexError(f"{where} was built for another catalog (fingerprint {built.fingerprint[:12]}…, "
                              f"this catalog {fingerprint[:12]}…): rebuild it ({rebuild})")


def vocabulary_scores(vocab_rows: dict[str, int], vocabulary_embeddings: np.ndarray, query: np.ndarray,
                      descriptors: Sequence[str]) -> list[float | None]:
    """Cosine similarity of ``query`` (one embedding) to each descriptor, by its row in ``vocab_rows`` of
    ``vocabulary_embeddings``; ``None`` where a descriptor is not in the vocabulary."""
    rows = [vocab_rows.get(d) for d in descriptors]
    known = [r for r in rows if r is not None]
    sims = iter((vocabulary_embeddings[known] @ query).tolist()) if known else iter(())
    return [next(sims) if r is not None else None for r in rows]


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of the index folder ``folder``: ``.<name>.lock`` beside it."""
    folder = Path(folder).expanduser().absolute()
    return folder.parent / f".{folder.name}.lock"


def writer_lock(folder: str | os.PathLike, timeout: float = SAVE_LOCK_TIMEOUT) -> filelock.FileLock:
    """The inter-process lock that writers of the index folder ``folder`` hold (``filelock`` on
    :func:`lock_path`); ``timeout`` in seconds, -1 to wait for ever, 0 to try once."""
    return filelock.FileLock(lock_path(folder), timeout=timeout)


def _leftovers(folder: Path) -> list[Path]:
    """Folders that saves of ``folder`` make beside it and remove when they finish: the temporary folder
    (``.<name>.XXXXXXXX.tmp``, from ``tempfile.mkdtemp``) and the previous version moved aside
    (``.<name>.old-XXXXXXXX``, from ``fileio.replace_dir``)."""
    pattern = re.compile(rf"\.{re.escape(folder.name)}\.(?:[a-z0-9_]{{8}}\.tmp|old-[0-9a-f]{{8}})")
    try:
        return [p for p in folder.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir()]
    except OSError:
        return []


def _remove_leftovers(folder: Path) -> None:
    """Remove what saves killed midway left beside ``folder``; if no index is at ``folder`` (a kill between
    the two renames of ``replace_dir``), first put back the newest complete version among them. Only with
    the writer lock held: then no live writer owns them."""
    found = _leftovers(folder)
    if not found:
        return
    if not folder.exists():
        complete = []
        for p in found:
            with contextlib.suppress(MelscribeError, OSError):
                read_meta(p / META_FILE)  # written last: a folder whose meta.json reads whole is complete
                complete.append(p)
        if complete:
            newest = max(complete, key=lambda p: (p / META_FILE).stat().st_mtime_ns)
            os.replace(newest, folder)
            found.remove(newest)
            log.warning("put back the index at %s from %s, left by an interrupted save", folder, newest.name)
    for p in found:
        shutil.rmtree(p, ignore_errors=True)
    if found:
        log.info("removed %d folder(s) left beside %s by interrupted saves", len(found), folder)


def _remove_leftovers_unless_writing(folder: Path) -> None:
    """:func:`_remove_leftovers` if no other process holds the writer lock (and the lock file can be made);
    else nothing."""
    if not _leftovers(folder):
        return
    try:
        with writer_lock(folder, timeout=0):
            _remove_leftovers(folder)
    except (filelock.Timeout, OSError):
        pass


class _FolderChanged(Exception):
    """The index folder was replaced while it was being read."""


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


def _replaced(folder: Path, meta_before: os.stat_result | None) -> bool:
    """After a file of ``folder`` was not found: whether the folder was being replaced (rather than the
    file really missing): its ``meta.json`` changed, or the folder is absent while a version is moved aside."""
    for attempt in range(REPLACED_CHECKS):
        try:
            now = os.stat(folder / META_FILE)
        except FileNotFoundError:
            # a version moved aside (between the two renames, or being removed after them), or, if that is gone
            # too, the new version in place by now; a next writer may slip between the two looks, so look again
            if any(".old-" in p.name for p in _leftovers(folder)) or (folder / META_FILE).exists():
                return True
            time.sleep(0.01 * (attempt + 1))
            continue
        return meta_before is None or not _same_file(meta_before, now)
    return False  # missing each time with no save under way: really missing


_META_HEAD = b'{"' + CHECKSUM.encode() + b'": "'
_META_MID = b'", "meta": '
_META_DIGITS = 32


def write_meta(path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Write ``meta`` as ``{"xxh3_128": "<checksum of BODY>", "meta": BODY}``, ``BODY`` being the JSON of
    ``meta``: the file stays plain JSON and carries the checksum of its own content."""
    body = json.dumps(meta).encode()
    Path(path).write_bytes(_META_HEAD + xxhash.xxh3_128(body).hexdigest().encode() + _META_MID + body + b"}")


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata written by :func:`write_meta`, its checksum verified. :class:`IndexCorruptError` naming
    the file if it is missing, unreadable or altered. A file of another format version is returned as read
    (its ``"version"`` differs from :data:`INDEX_VERSION`)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IndexCorruptError(f"index file {path} is missing; rebuild the index") from None
    except OSError as e:
        raise IndexCorruptError(f"index file {path} is unreadable ({e}); rebuild the index") from None
    return _parse_meta(raw, path)


def _parse_meta(raw: bytes, path: Path) -> dict[str, Any]:
    digits = len(_META_HEAD) + _META_DIGITS
    if raw.startswith(_META_HEAD) and raw[digits:digits + len(_META_MID)] == _META_MID and raw.endswith(b"}"):
        body = raw[digits + len(_META_MID):-1]
        if xxhash.xxh3_128(body).hexdigest().encode() != raw[len(_META_HEAD):digits]:
            raise IndexCorruptError(f"index file {path} fails its checksum (altered or damaged); rebuild the index")
        try:
            meta = json.loads(body)
        except ValueError as e:
            raise IndexCorruptError(f"index file {path} is unreadable ({e}); rebuild the index") from None
        if isinstance(meta, dict):
            return meta
    else:  # a file of another format version (version 1 had no checksum), or a damaged one
        try:
            meta = json.loads(raw)
        except ValueError:
            meta = None
        version = meta.get("version") if isinstance(meta, dict) else None
        if isinstance(version, int) and version != INDEX_VERSION:
            return meta
    raise IndexCorruptError(f"index file {path} is unreadable (not an index's metadata); rebuild the index")


def ivf_lists(n: int) -> int:
    """Number of inverted lists for ``n`` vectors: the power of two nearest ``IVF_LISTS_PER_SQRT × √n``,
    at most ``n / 39`` (faiss's minimum of training points per list), at least 1."""
    target = IVF_LISTS_PER_SQRT * np.sqrt(n)
    nlist = 2 ** int(np.round(np.log2(max(target, 1))))
    return int(max(1, min(nlist, 2 ** int(np.floor(np.log2(max(n // 39, 1)))))))


def default_nprobe(nlist: int) -> int:
    """Inverted lists scanned per query by default: ``$MELSCRIBE_IVF_NPROBE`` if set (:func:`nprobe_setting`),
    else :data:`IVF_NPROBE`; at most ``nlist``."""
    return min(nlist, nprobe_setting())


def nprobe_setting() -> int:
    """The lists an inverted file scans per query: :data:`NPROBE_ENV` if set, else :data:`IVF_NPROBE`.
    :class:`MelscribeError` naming the variable if it is not a positive integer."""
    raw = os.environ.get(NPROBE_ENV, "").strip()
    if not raw:
        return IVF_NPROBE
    if not raw.isdigit() or int(raw) < 1:
        raise MelscribeError(f"{NPROBE_ENV}={raw!r}: expected a positive integer, the inverted lists scanned per "
                             f"query (default {IVF_NPROBE}; fewer is faster, more finds more of the exact top 10)")
    return int(raw)


def resolve_kind(kind: str, n: int) -> str:
    """The index kind built for ``n`` descriptor sets when ``kind`` is asked for: ``"auto"`` is flat up to
    :data:`FLAT_MAX`, HNSW up to :data:`HNSW_MAX`, else IVF; the other kinds are themselves."""
    if kind not in KINDS:
        raise InvalidRequestError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "flat" if n <= FLAT_MAX else "hnsw" if n <= HNSW_MAX else "ivf"


def make_faiss_index(embeddings: np.ndarray, kind: str = "auto", *, progress: bool = True) -> tuple[faiss.Index, str]:
    """A faiss inner-product index holding ``embeddings``: ``"flat"`` (exact), ``"ivf"`` (the inverted file
    alone: :class:`DescriptorIndex` re-scores its candidates on the exact vectors), ``"hnsw"`` (with exact
    re-scoring, ``IndexRefineFlat``), or ``"auto"`` (see :func:`resolve_kind`). Returns the index and the kind
    chosen."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, d = embeddings.shape
    kind = resolve_kind(kind, n)
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "ivf":  # re-scored exactly by DescriptorIndex, on vectors it keeps apart (in RAM or mapped)
        index = approx = _trained_ivf(embeddings)
    else:
        approx = _trained_hnsw(embeddings)
        index = faiss.IndexRefineFlat(approx)  # exact re-scoring of the approximate index's candidates
        index.own_fields = True
        approx.this.disown()
    step = 50_000
    for start in tqdm(range(0, n, step), desc=f"faiss {kind} index", unit="chunk", disable=not progress or n <= step):
        index.add(embeddings[start:start + step])
    if kind == "ivf":
        _compress_coarse_quantizer(approx)
    return index, kind


def _trained_hnsw(embeddings: np.ndarray) -> faiss.IndexHNSWSQ:
    """An empty HNSW graph over 8-bit codes, its quantiser trained on ``embeddings``."""
    graph = faiss.IndexHNSWSQ(embeddings.shape[1], faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    graph.train(embeddings)
    return graph


def _trained_ivf(embeddings: np.ndarray) -> faiss.IndexIVFScalarQuantizer:
    """An empty inverted file of 8-bit codes over :func:`ivf_lists` k-means lists, trained on a seeded
    sample of ``embeddings`` (:func:`ivf_training_rows`)."""
    n, d = embeddings.shape
    nlist = ivf_lists(n)
    return _train_ivf(embeddings[ivf_training_rows(n, nlist)], nlist)


def ivf_training_rows(n: int, nlist: int) -> np.ndarray:
    """The rows an inverted file of ``nlist`` lists over ``n`` vectors is trained on: a seeded sample of
    ``IVF_TRAIN_PER_LIST × nlist`` of them (all when fewer), sorted."""
    return np.sort(np.random.default_rng(0).choice(n, size=min(n, IVF_TRAIN_PER_LIST * nlist), replace=False))


def _train_ivf(sample: np.ndarray, nlist: int) -> faiss.IndexIVFScalarQuantizer:
    d = sample.shape[1]
    ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT, False)
    ivf.cp.niter = IVF_KMEANS_ITERATIONS
    log.info("training %d inverted lists on %d vectors", nlist, len(sample))
    ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
    return ivf


def build_ivf_in_pieces(parts: Iterable[np.ndarray], n: int, dim: int,
                        vectors_path: str | os.PathLike) -> tuple[faiss.IndexIVFScalarQuantizer, np.memmap]:
    """An IVF index of ``n`` vectors given as ``parts`` (arrays of rows, in order), never holding more than one
    part and the training sample in memory: the parts are written to ``vectors_path`` (a float32 ``.npy``,
    written atomically) while the seeded training sample (:func:`ivf_training_rows`) is picked from them, the
    lists are trained, then filled from the file a piece at a time. Returns the index (its exact vectors
    re-score its candidates, :meth:`DescriptorIndex.search`) and the vectors memory-mapped from the file.
    Equal to the inverted file of :func:`make_faiss_index` over the same vectors (the same sample, the same
    lists)."""
    vectors_path = Path(vectors_path)
    nlist = ivf_lists(n)
    wanted = ivf_training_rows(n, nlist)
    sample = np.empty((len(wanted), dim), np.float32)
    vectors_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(vectors_path)
    try:
        with open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n, dim)})
            start = 0
            for part in parts:
                part = np.ascontiguousarray(part, dtype=np.float32)
                if part.ndim != 2 or part.shape[1] != dim:
                    raise InvalidRequestError(f"a piece of embeddings has shape {part.shape}, expected (*, {dim})")
                lo, hi = np.searchsorted(wanted, [start, start + len(part)])
                sample[lo:hi] = part[wanted[lo:hi] - start]
                f.write(part.tobytes())
                start += len(part)
            if start != n:
                raise InvalidRequestError(f"the pieces hold {start} embeddings, expected {n}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, vectors_path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    ivf = _train_ivf(sample, nlist)
    del sample
    step = 65_536
    with open(vectors_path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        for _ in tqdm(range(0, n, step), desc="faiss ivf index", unit="piece", disable=n <= step):
            piece = np.fromfile(f, dtype=np.float32, count=step * dim)
            ivf.add(piece.reshape(-1, dim))
    _compress_coarse_quantizer(ivf)
    return ivf, np.load(vectors_path, mmap_mode="r")


def _write_vectors(vectors: np.ndarray, path: Path) -> None:
    """Write exact vectors as ``.npy`` at ``path``: a hard link to (or a copy of) the file a mapped array comes
    from, without reading it into memory; an array in RAM saved."""
    source = getattr(vectors, "filename", None)
    if source is not None and Path(source).is_file():
        try:
            os.link(source, path)
        except OSError:
            shutil.copyfile(source, path)
    else:
        np.save(path, np.ascontiguousarray(vectors, dtype=np.float32))


def _memmap_npy(f: Any) -> np.memmap:
    """The ``.npy`` array of open file ``f``, memory-mapped (the mapping outlives the file object)."""
    f.seek(0)
    major, _ = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(f)
    if fortran_order or dtype != np.float32 or len(shape) != 2:
        raise ValueError(f"expected a C-ordered 2-d float32 array, not {dtype} {shape}")
    return np.memmap(f, dtype=dtype, mode="r", shape=shape, offset=f.tell())


def _compress_coarse_quantizer(ivf: faiss.IndexIVF) -> None:
    """Replace the exact centroids of ``ivf`` (used to train and fill the lists) by 8-bit codes of them, for
    search: choosing the lists to scan then reads 4× less memory."""
    centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    coarse = faiss.IndexScalarQuantizer(ivf.d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    coarse.train(centroids)
    coarse.add(centroids)
    ivf.quantizer = coarse  # the exact quantizer stays with its Python object (faiss keeps a reference), freed with it
    ivf.own_fields = True
    coarse.this.disown()


def descriptors_read(texts: Sequence[str], encoder: TextEncoder) -> dict[int, int]:
    """For each text (a descriptor set joined by ", ") longer than ``encoder`` reads, its row -> how many of its
    leading descriptors fit in what the encoder reads. A text of fewer characters than the encoder reads tokens
    cannot be too long (a token covers a character at least), so only long texts are tokenised."""
    limit = encoder.max_seq_length
    out = {}
    for row, text in enumerate(texts):
        if len(text) + 2 <= limit or encoder.token_count(text) <= limit:  # 2: the [CLS] and [SEP] tokens
            continue
        descriptors = text.split(", ")
        low, high = 0, len(descriptors) - 1  # the most descriptors that fit lies in [low, high]
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if encoder.token_count(", ".join(descriptors[:mid])) <= limit else (low, mid - 1)
        out[row] = max(low, 1)  # the first descriptor is read, if only in part
    return out


@dataclass(eq=False)
class DescriptorIndex:
    """Embeddings of unique descriptor-set texts in a faiss index (row ``i`` is ``texts[i]``), plus the
    embeddings of the descriptor vocabulary, and what they were built from."""

    index: faiss.Index
    texts: list[str]
    vocabulary: list[str]
    vocabulary_embeddings: np.ndarray
    model_name: str
    model_probe: np.ndarray
    fingerprint: str
    kind: str
    path: Path | None = field(default=None, compare=False)
    #: whether each text was embedded in a run of its own (an int8 encoder's embeddings depend on the batch)
    encoded_alone: bool = False
    #: row -> how many of its leading descriptors the encoder read, for the sets longer than it reads
    #: (:func:`descriptors_read`); only those explain a match
    read: dict[int, int] = field(default_factory=dict, compare=False)
    #: where :meth:`build` kept its embeddings until the index is saved (:mod:`melscribe.serve.embedding_cache`)
    embedding_chunks: Path | None = field(default=None, compare=False, repr=False)
    #: an inverted file's exact vectors, which re-score its candidates: in RAM, or memory-mapped from
    #: :data:`VECTORS_FILE` (``None``: the faiss index re-scores itself, ``IndexRefineFlat``)
    exact_vectors: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, texts: Sequence[str], encoder: TextEncoder, *, fingerprint: str,
              vocabulary: Sequence[str] = (), kind: str = "auto", batch_size: int = 64) -> "DescriptorIndex":
        """Embed ``texts`` (unique descriptor-set texts) and ``vocabulary`` with ``encoder`` and index them."""
        log.info("embedding %d descriptor sets and %d descriptors with %s", len(texts), len(vocabulary), encoder.name)
        vocab_emb = encoder.encode(vocabulary, batch_size=batch_size, progress=True)
        if resolve_kind(kind, len(texts)) == "ivf":  # built in pieces: never all the vectors in memory
            kept = embedding_cache.cache_dir(encoder, texts)
            ivf, vectors = build_ivf_in_pieces(embedding_cache.chunks(encoder, texts, batch_size), len(texts),
                                               encoder.dim, kept / VECTORS_FILE)
            built = cls(ivf, list(texts), list(vocabulary), vocab_emb, encoder.name, encoder.probe, fingerprint,
                        "ivf", encoded_alone=encoder.encodes_each_text_alone, exact_vectors=vectors)
        else:
            embeddings, kept = embedding_cache.embed(encoder, texts, batch_size=batch_size)
            built = cls.from_embeddings(embeddings, texts, encoder, fingerprint=fingerprint, vocabulary=vocabulary,
                                        vocabulary_embeddings=vocab_emb, kind=kind)
        built.embedding_chunks = kept
        built.read = descriptors_read(texts, encoder)
        if built.read:
            row, n = next(iter(built.read.items()))
            warnings.warn(f"{len(built.read)} of {len(texts)} descriptor sets are longer than {encoder.name} reads "
                          f"({encoder.max_seq_length} tokens): only their first descriptors are embedded and explain "
                          f"a match, e.g. {n} of {len(texts[row].split(', '))} in {texts[row][:80]!r}…", stacklevel=2)
        return built

    @classmethod
    def from_embeddings(cls, embeddings: np.ndarray, texts: Sequence[str], encoder: TextEncoder, *,
                        fingerprint: str, vocabulary: Sequence[str] = (),
                        vocabulary_embeddings: np.ndarray | None = None, kind: str = "auto") -> "DescriptorIndex":
        """Index precomputed, L2-normalised embeddings of ``texts`` (and of ``vocabulary``) made by ``encoder``."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape != (len(texts), encoder.dim):
            raise InvalidRequestError(f"embeddings have shape {embeddings.shape}; expected ({len(texts)}, {encoder.dim})")
        if not len(texts):
            raise InvalidRequestError("nothing to index: no descriptor sets")
        if vocabulary_embeddings is None:
            vocabulary_embeddings = np.zeros((0, encoder.dim), dtype=np.float32)
        if len(vocabulary_embeddings) != len(vocabulary):
            raise InvalidRequestError(f"{len(vocabulary_embeddings)} vocabulary embeddings for {len(vocabulary)} descriptors")
        index, kind = make_faiss_index(embeddings, kind)
        return cls(index, list(texts), list(vocabulary), np.asarray(vocabulary_embeddings, dtype=np.float32),
                   encoder.name, encoder.probe, fingerprint, kind, encoded_alone=encoder.encodes_each_text_alone,
                   exact_vectors=embeddings if kind == "ivf" else None)

    def __post_init__(self) -> None:
        if self.kind == "ivf":
            nprobe_setting()  # a bad $MELSCRIBE_IVF_NPROBE fails when the index is loaded, not at its first search

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def descriptors_read(self, row: int, descriptors: Sequence[str]) -> Sequence[str]:
        """The leading ``descriptors`` of row ``row``'s set that the encoder read (all of them unless the set
        was longer than the encoder reads)."""
        return descriptors[: self.read.get(row, len(descriptors))]

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.index.d)

    @cached_property
    def nlist(self) -> int | None:
        """Number of inverted lists of an IVF index (``None`` for the other kinds)."""
        if self.kind != "ivf":
            return None
        return int(faiss.downcast_index(self.index if self.exact_vectors is not None else self.index.base_index).nlist)

    def search(self, queries: np.ndarray, k: int, *, ef_search: int = HNSW_EF_SEARCH,
               nprobe: int | None = None, where: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` (at most ``len(self)``) best rows for each query: ``(scores, rows)``, each ``(n, k)``.
        ``where`` (a :class:`~melscribe.serve.store.SetFilter`) is accepted as the store interface asks and
        prunes nothing: the recommender filters the tracks.
        ``ef_search``: breadth of an HNSW search (raised to the number of candidates if below); ``nprobe``:
        inverted lists an IVF search scans (default :func:`default_nprobe`)."""
        k = min(int(k), len(self))
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InvalidRequestError(f"query vectors of shape {queries.shape}: expected dimension {self.dim}")
        if not np.isfinite(queries).all():
            raise InvalidRequestError("query vectors must be finite: they hold NaN or infinite values")
        params = None
        if self.exact_vectors is not None:
            return self._search_rescored(queries, k, nprobe)
        if self.kind == "hnsw":
            approx = faiss.SearchParametersHNSW(efSearch=max(ef_search, REFINE_K_FACTOR * k))
        elif self.kind == "ivf":
            nlist = self.nlist
            approx = faiss.SearchParametersIVF(nprobe=min(nlist, nprobe or default_nprobe(nlist)))
        if self.kind != "flat":
            params = faiss.IndexRefineSearchParameters(k_factor=REFINE_K_FACTOR, base_index_params=approx)
        if len(queries) > 1:
            return self.index.search(queries, k, params=params)
        threads = faiss.omp_get_max_threads()  # a per-thread OpenMP setting: safe with concurrent searches
        faiss.omp_set_num_threads(1)
        try:
            return self.index.search(queries, k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)

    def _search_rescored(self, queries: np.ndarray, k: int, nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
        """An inverted file's search: its ``REFINE_K_FACTOR × k`` best candidates by their 8-bit codes, re-scored
        on the exact vectors (read from the mapped file: a few pages per query)."""
        nlist = self.nlist
        params = faiss.SearchParametersIVF(nprobe=min(nlist, nprobe or default_nprobe(nlist)))
        depth = min(len(self), REFINE_K_FACTOR * k)
        threads = faiss.omp_get_max_threads()
        if len(queries) == 1:
            faiss.omp_set_num_threads(1)
        try:
            candidates = self.index.search(queries, depth, params=params)[1]
        finally:
            faiss.omp_set_num_threads(threads)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        rows = np.full((len(queries), k), -1, np.int64)
        for i, (query, found) in enumerate(zip(queries, candidates)):
            found = np.sort(found[found >= 0])  # in file order: sequential reads
            exact = self.vectors(found) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            scores[i, :len(best)], rows[i, :len(best)] = exact[best], found[best]
        return scores, rows

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The float32 embeddings of ``rows`` (exact: the refine index or the exact vectors keep them), in that
        order."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.exact_vectors is not None:
            return np.asarray(self.exact_vectors[rows], dtype=np.float32)
        return self.index.reconstruct_batch(rows)

    @cached_property
    def _vocab_rows(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.vocabulary)}

    def descriptor_scores(self, query: np.ndarray, descriptors: Sequence[str]) -> list[float | None]:
        """Cosine similarity of ``query`` (one embedding) to each descriptor; ``None`` where a descriptor is
        not in the indexed vocabulary."""
        return vocabulary_scores(self._vocab_rows, self.vocabulary_embeddings, query, descriptors)

    def check(self, encoder: TextEncoder | None = None, fingerprint: str | None = None) -> None:
        """Raise :class:`StaleIndexError` if the index was built with another model than ``encoder`` or for
        another catalog than the one with ``fingerprint``, or, for an encoder that embeds each text alone (onnx-int8),
        with the descriptor sets embedded in shared batches (as melscribe did before), which such an encoder's
        requests would not match exactly (:func:`check_build`)."""
        check_build(self, encoder, fingerprint, f"the index at {self.path}" if self.path else "the index")

    def info(self) -> dict[str, Any]:
        """What the index holds and how it was built, as plain JSON-able values."""
        return {"path": str(self.path) if self.path else None, "kind": self.kind, "descriptor_sets": len(self),
                "inverted_lists": self.nlist, "vocabulary": len(self.vocabulary), "dim": self.dim, "model": self.model_name,
                "catalog_fingerprint": self.fingerprint, "encoded_alone": self.encoded_alone, "version": INDEX_VERSION}

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the index to ``folder`` atomically (replacing any index there); returns the folder."""
        folder = Path(folder).expanduser().absolute()
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = writer_lock(folder)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise IndexBusyError(f"another process has held {lock_path(folder)} for {SAVE_LOCK_TIMEOUT:g} s: the "
                                 f"index at {folder} was not saved") from None
        try:
            _remove_leftovers(folder)
            self._save_unlocked(folder)
        finally:
            lock.release()
        self.path = folder
        if self.embedding_chunks is not None:  # saved: the chunks kept in case it could not be are done with
            embedding_cache.clear(self.embedding_chunks)
        return folder

    def _save_unlocked(self, folder: Path) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        try:
            faiss.write_index(self.index, str(tmp / FAISS_FILE))
            np.save(tmp / VOCAB_FILE, self.vocabulary_embeddings)
            names = [FAISS_FILE, VOCAB_FILE]
            if self.exact_vectors is not None:
                _write_vectors(self.exact_vectors, tmp / VECTORS_FILE)
                names.append(VECTORS_FILE)
            files = {f: {"bytes": (tmp / f).stat().st_size, CHECKSUM: file_checksum(tmp / f)} for f in names}
            meta = {"version": INDEX_VERSION, "kind": self.kind, "dim": self.dim, "model": self.model_name,
                    "model_probe": self.model_probe.tolist(), "catalog_fingerprint": self.fingerprint,
                    "encoded_alone": self.encoded_alone, "files": files, "texts": self.texts, "vocabulary": self.vocabulary,
                    "descriptors_read": {str(r): n for r, n in self.read.items()}}
            write_meta(tmp / META_FILE, meta)
            pause_point("index-written")
            replace_dir(tmp, folder, marker=META_FILE, what="index")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if isinstance(self.exact_vectors, np.memmap):  # served from the saved file from now on
            self.exact_vectors = np.load(folder / VECTORS_FILE, mmap_mode="r")

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "DescriptorIndex":
        """Read an index saved by :meth:`save`, every file's checksum verified before it is parsed, all files
        from one version even while other processes save the folder again (see the module doc).
        :class:`IndexCorruptError` (naming the file) if a file is missing, truncated, altered or unreadable;
        :class:`StaleIndexError` if it has another format version."""
        folder = Path(folder).expanduser().absolute()
        _remove_leftovers_unless_writing(folder)
        deadline, pause = time.monotonic() + LOAD_RETRY_SECONDS, 0.001
        while True:
            try:
                return cls._load_version(folder)
            except _FolderChanged:
                if time.monotonic() > deadline:
                    raise IndexCorruptError(f"the index at {folder} was replaced again and again while it was read, "
                                            f"for {LOAD_RETRY_SECONDS:g} s; try again") from None
                time.sleep(pause)
                pause = min(2 * pause, 0.05)

    @classmethod
    def _load_version(cls, folder: Path) -> "DescriptorIndex":
        """:meth:`load` once: :class:`_FolderChanged` if the folder was replaced while its files were opened."""
        meta_path = folder / META_FILE
        with contextlib.ExitStack() as stack:
            before = None
            try:
                before = os.stat(meta_path)
                files = {name: stack.enter_context(open(folder / name, "rb"))
                         for name in (META_FILE, FAISS_FILE, VOCAB_FILE)}
                with contextlib.suppress(FileNotFoundError):  # an inverted file's exact vectors
                    files[VECTORS_FILE] = stack.enter_context(open(folder / VECTORS_FILE, "rb"))
                after = os.stat(meta_path)
            except FileNotFoundError as e:
                if _replaced(folder, before):
                    raise _FolderChanged from None
                raise IndexCorruptError(f"index file {e.filename} is missing; rebuild the index") from None
            except OSError as e:
                raise IndexCorruptError(f"index file {e.filename or folder} is unreadable ({e.strerror or e}); "
                                        "rebuild the index") from None
            if not (_same_file(before, os.fstat(files[META_FILE].fileno())) and _same_file(before, after)):
                raise _FolderChanged  # the three files may come from different versions
            # from here on the open files are one version, whatever happens to the folder
            return cls._read_version(folder, files)

    @classmethod
    def _read_version(cls, folder: Path, files: dict[str, Any]) -> "DescriptorIndex":
        meta_path = folder / META_FILE
        try:
            meta = _parse_meta(files[META_FILE].read(), meta_path)
        except OSError as e:
            raise IndexCorruptError(f"index file {meta_path} is unreadable ({e}); rebuild the index") from None
        if meta.get("version") != INDEX_VERSION:
            raise StaleIndexError(f"the index at {folder} has format version {meta.get('version')}, this melscribe "
                                  f"reads version {INDEX_VERSION}: rebuild it (`melscribe index build`)")
        try:
            recorded = {name: (int(f["bytes"]), str(f[CHECKSUM])) for name, f in meta["files"].items()}
            texts, vocabulary = list(meta["texts"]), list(meta["vocabulary"])
            dim, model, fingerprint, kind = int(meta["dim"]), meta["model"], meta["catalog_fingerprint"], meta["kind"]
            probe = np.asarray(meta["model_probe"], dtype=np.float32)
            encoded_alone = bool(meta.get("encoded_alone", False))  # absent from indexes saved before it existed
            read = {int(r): int(n) for r, n in meta.get("descriptors_read", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise IndexCorruptError(f"index file {meta_path} is unreadable ({type(e).__name__}: {e}); "
                                    "rebuild the index") from None
        if set(recorded) not in ({FAISS_FILE, VOCAB_FILE}, {FAISS_FILE, VOCAB_FILE, VECTORS_FILE}):
            raise IndexCorruptError(f"index file {meta_path} lists files {sorted(recorded)}; rebuild the index")
        for name, (size, checksum) in recorded.items():
            p, f = folder / name, files.get(name)
            if f is None:
                raise IndexCorruptError(f"index file {p} is missing; rebuild the index")
            try:
                actual = os.fstat(f.fileno()).st_size
                if actual != size:
                    raise IndexCorruptError(f"index file {p} is truncated or altered ({actual} of {size} bytes); "
                                            "rebuild the index")
                if file_checksum(f) != checksum:
                    raise IndexCorruptError(f"index file {p} fails its checksum (altered or damaged); "
                                            "rebuild the index")
                f.seek(0)
            except OSError as e:
                raise IndexCorruptError(f"index file {p} is unreadable ({e}); rebuild the index") from None
        try:
            index = faiss.read_index(faiss.PyCallbackIOReader(files[FAISS_FILE].read))
        except (RuntimeError, OSError) as e:
            raise IndexCorruptError(f"index file {folder / FAISS_FILE} is unreadable: {e}") from None
        try:
            vocab_emb = np.load(files[VOCAB_FILE], allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise IndexCorruptError(f"index file {folder / VOCAB_FILE} is unreadable: {e}") from None
        exact = None
        if VECTORS_FILE in recorded:
            try:
                exact = _memmap_npy(files[VECTORS_FILE])
            except (OSError, ValueError) as e:
                raise IndexCorruptError(f"index file {folder / VECTORS_FILE} is unreadable: {e}") from None
        if (index.ntotal != len(texts) or index.d != dim or vocab_emb.shape != (len(vocabulary), index.d)
                or (exact is not None and exact.shape != (len(texts), dim))):
            raise IndexCorruptError(f"index files in {folder} disagree: {index.ntotal} vectors of dim {index.d}, "
                                    f"{len(texts)} texts, vocabulary embeddings {vocab_emb.shape} for "
                                    f"{len(vocabulary)} descriptors"
                                    + (f", exact vectors {exact.shape}" if exact is not None else "")
                                    + "; rebuild the index")
        return cls(index, texts, vocabulary, vocab_emb, model, probe, fingerprint, kind, folder, encoded_alone, read,
                   exact_vectors=exact)
