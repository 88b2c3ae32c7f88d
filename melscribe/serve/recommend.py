"""From a natural-language request to ranked tracks.

The request is embedded by the bi-encoder, the closest descriptor sets are found in a
:class:`~melscribe.serve.index.DescriptorIndex`, and each set leads to the tracks that have it. Tracks are
ranked by their best set, de-duplicated and filtered; each result says which set matched and which of its
descriptors are closest to the request (the explanation).

Each result set says whether it is *low-confidence* (:class:`RecommendationList`): the request resembles no
descriptor set of the catalog much more than gibberish does (see :func:`low_confidence_threshold`), as with
requests in another language than the model's, emoji-only or meaningless requests.

Options: lexical + dense fusion (:mod:`melscribe.retrieval.fusion`: the fusion tuned by training and stored beside the
model, by default, of the dense ranking and a lexical scorer over the descriptor-set texts, on the union of the
best sets of each), and, for catalogs with audio-only tracks
(:meth:`Catalog.with_audio_folder`), re-ranking of those tracks by audio–text similarity to the request's
top descriptor sets.

Intent (``intent=True``, the default; :mod:`melscribe.intent.parser`): what a request rejects ("…but not jazz",
"no vocals") is cut out of the text the encoder reads and matched to the vocabulary; descriptor sets carrying
a rejected descriptor are excluded. If fewer than ``k`` tracks remain, the best excluded ones fill the
remaining places, after all the others, each saying in ``intent["carries_avoided"]`` what it carries.
``exclude_descriptors`` go through the same matching (excluding "piano" also excludes "piano ballad").
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from melscribe.config import home_dir
from melscribe.fileio import check_replaceable, os_error_reason
from melscribe.errors import IndexCorruptError, InvalidRequestError, StaleIndexError
from melscribe.retrieval.fusion import FusionConfig, load_fusion
from melscribe.retrieval.scorers import BASELINES
from melscribe.serve.catalog import Catalog, Track, set_text
from melscribe.encoding.encoder import SERVING_BACKEND, TextEncoder
from melscribe.intent.parser import Intent, IntentParser
from melscribe.intent.rejections import may_reject
from melscribe.encoding.models import TEACHER_DIR
from melscribe.encoding.reranker import Reranker
from melscribe.serve.index import META_FILE as INDEX_META_FILE, DescriptorIndex

log = logging.getLogger(__name__)

#: Descriptors at least this close (cosine) to the request explain a match; the closest one always does.
EXPLAIN_MIN_SIMILARITY = 0.3
#: How many of the request's top descriptor sets describe it to the audio model.
AUDIO_CONTEXT_SETS = 5
#: Descriptor sets fetched per requested track at first (more are fetched when filters reject many).
CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 32
#: Most descriptor sets fetched from the index for one request before falling back to an exact scan of
#: the sets whose tracks pass the filters.
MAX_CANDIDATES = 10_000
#: Up to this many descriptor sets, fusion ranks the union of the dense and the lexical best sets; above, the
#: lexical scores re-rank the dense candidates (scoring every set lexically grows with the catalog).
LEXICAL_UNION_MAX = 20_000
#: Requests no catalog matches (keyboard mashing, an emoji, filler) and plain music requests: their best
#: scores on an index anchor its low-confidence threshold (:func:`low_confidence_threshold`). Disjoint from
#: the requests of the calibration (``experiments/confidence_requests.py``).
NULL_PROBES = ("qwzx vbnm", "lorem ipsum dolor", "zzzz zzzz", "jkl poiuy trewq", "🙈", "xyzzy plugh",
               "aaa bbb ccc", "hjkl")
MUSIC_PROBES = ("rock music with electric guitar", "a calm piano piece", "upbeat dance music with drums",
                "a sad song with a female singer", "jazz with saxophone", "orchestral music with strings",
                "acoustic guitar and male vocals", "electronic music with synthesizers")
#: Where the low-confidence threshold lies between the mean best score of :data:`NULL_PROBES` (0) and of
#: :data:`MUSIC_PROBES` (1). Calibrated with the packaged MiniLM on MusicCaps by
#: ``experiments/calibrate_confidence.py`` (figures in ``experiments/results/confidence.md``).
LOW_CONFIDENCE_POSITION = 0.4
#: Longest request accepted, in characters (about 2,000 tokens, 9 windows of the packaged model's 256): every
#: request is read whole (:meth:`Recommender.embed_requests`), and this bounds what that costs
#: (``experiments/results/long_requests.md``).
MAX_REQUEST_CHARS = 10_000
#: How far a score may differ between a request encoded alone and in a batch (:meth:`Recommender.recommend_many`,
#: the HTTP server's batches): the same tracks come back in the same order, but matrix kernels on some CPUs
#: (Intel Xeon with AVX-512 VNNI / AMX) round differently at other batch sizes, in the sixth decimal.
BATCH_SCORE_TOLERANCE = 1e-5
#: The most descriptor sets ``rerank`` may re-score per request (50 add about 280 ms on 2 CPU cores).
MAX_RERANK = 500


@dataclass(frozen=True)
class Recommendation:
    """One recommended track.

    ``score`` is the cosine similarity of the request to ``descriptor_set`` (the track's best-matching set),
    or its fused score with ``fusion``. ``matched_descriptors`` are the descriptors of that set closest to the
    request, closest first. ``inferred`` marks a set tagged from audio; such tracks also carry
    ``audio_score``, the audio–text similarity by which they were re-ranked. ``intent`` (with intent handling
    on, for a request that rejects something; else ``None``): what the request ``wanted`` and ``avoided`` (its
    rejected phrases), and ``carries_avoided``: the rejected descriptors this track's set carries (empty unless
    it only fills a place no other track could). ``rerank_score``: with ``rerank=N``, the music cross-encoder's
    raw logit for the request and ``descriptor_set`` when that set was among the N re-ranked (the order then
    follows it; ``score`` stays the first stage's), else ``None``.
    """

    rank: int
    track_id: str
    score: float
    descriptor_set: tuple[str, ...]
    matched_descriptors: tuple[str, ...]
    metadata: Mapping[str, Any]
    inferred: bool = False
    audio_score: float | None = None
    intent: Mapping[str, Any] | None = None
    rerank_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The recommendation as JSON-able values."""
        # field by field: dataclasses.asdict deep-copies every value, on the server's path for every result
        intent = None if self.intent is None else {k: list(v) if isinstance(v, (tuple, list)) else v
                                                   for k, v in self.intent.items()}
        return {"rank": self.rank, "track_id": self.track_id, "score": self.score,
                "descriptor_set": list(self.descriptor_set), "matched_descriptors": list(self.matched_descriptors),
                "metadata": dict(self.metadata), "inferred": self.inferred, "audio_score": self.audio_score,
                "intent": intent, "rerank_score": self.rerank_score}


class RecommendationList(list):
    """The recommendations for one request (a ``list`` of :class:`Recommendation`, best first) and
    ``low_confidence``: whether the request's best score on the whole index (its cosine similarity to the
    closest descriptor set) fell below the index's :func:`low_confidence_threshold`, i.e. the request
    resembles nothing in the catalog and the results are likely poor."""

    def __init__(self, recommendations: Iterable[Recommendation] = (), *, low_confidence: bool = False):
        super().__init__(recommendations)
        self.low_confidence = low_confidence

    def __repr__(self) -> str:
        return f"RecommendationList({list.__repr__(self)}, low_confidence={self.low_confidence})"

    def to_dict(self, request: str, k: int, model: str, intent: Mapping[str, Any] | None) -> dict[str, Any]:
        """The answer as JSON-able values, one shape for HTTP and ``melscribe recommend --json``: ``request``,
        ``k``, ``model`` (the encoder's name), ``intent`` (what the request was read to want and avoid, ``None``
        with intent handling off), ``low_confidence`` and ``results``."""
        return {"request": request, "k": k, "model": model, "intent": intent, "low_confidence": self.low_confidence,
                "results": [r.to_dict() for r in self]}


def low_confidence_threshold(index: DescriptorIndex, null_probes: np.ndarray, music_probes: np.ndarray,
                             position: float = LOW_CONFIDENCE_POSITION) -> float:
    """The best score under which a request is low-confidence on ``index``: ``position`` of the way from the
    mean best score of the embedded :data:`NULL_PROBES` (``null_probes``) to that of the embedded
    :data:`MUSIC_PROBES` (``music_probes``). Anchored on the index's own scores, the threshold follows the
    score scale of the model and the catalog, where a fixed cosine would not."""
    null = float(index.search(null_probes, 1)[0][:, 0].mean())
    music = float(index.search(music_probes, 1)[0][:, 0].mean())
    return null + position * (music - null)


@dataclass(frozen=True)
class _Filter:
    exclude_tracks: frozenset[str]
    require: frozenset[str]
    exclude: frozenset[str]

    def accepts(self, track: Track) -> bool:
        if track.id in self.exclude_tracks:
            return False
        if not (self.require or self.exclude):
            return True
        ds = track.descriptors
        return self.require <= ds and not (self.exclude & ds)


@dataclass(frozen=True)
class PreparedRequest:
    """A request checked by :meth:`Recommender.prepare`: the text to encode, ``k``, the filter, and what the
    request rejects (``None`` when intent handling is off or it rejects nothing)."""

    text: str
    k: int
    filter: _Filter
    intent: Intent | None = None
    rerank: int = 0


@dataclass
class _Candidate:
    track: Track
    row: int
    score: float
    audio_score: float | None = None
    rerank_score: float | None = None


def index_cache_dir(model_name: str, fingerprint: str, kind: str = "auto") -> Path:
    """Where the index of a catalog (by fingerprint) under a model is cached: ``<home>/indexes/<hash>``.
    ``model_name``: the encoder's name (:func:`melscribe.encoding.encoder.encoder_name`, which tells apart the
    backends whose embeddings differ)."""
    key = hashlib.sha256(f"{model_name}\0{fingerprint}\0{kind}".encode()).hexdigest()[:16]
    return home_dir() / "indexes" / key


def load_catalog(catalog: Catalog | str | os.PathLike | None, data_dir: str | os.PathLike | None = None) -> Catalog:
    """``catalog`` itself, a catalog file, or (``None``) all of MusicCaps from the data directory."""
    if isinstance(catalog, Catalog):
        return catalog
    return Catalog.from_musiccaps(data_dir) if catalog is None else Catalog.from_file(catalog)


def build_index(catalog: Catalog, encoder: TextEncoder, folder: str | os.PathLike, kind: str = "auto") -> DescriptorIndex:
    """Embed the descriptor sets and vocabulary of ``catalog`` with ``encoder``, index them, save to ``folder``
    (which must be absent, empty or an index: checked before any encoding, :func:`melscribe.fileio.check_replaceable`)."""
    check_replaceable(Path(folder).expanduser(), INDEX_META_FILE, "index")
    index = DescriptorIndex.build(list(catalog.descriptor_sets), encoder, fingerprint=catalog.fingerprint(),
                                  vocabulary=catalog.vocabulary(), kind=kind)
    try:
        index.save(folder)
    except OSError as e:  # the work is not lost: the index serves from memory
        warnings.warn(f"could not save the index to {folder}: {os_error_reason(e)}; serving it from memory (the "
                      "next start builds it again: free space, or set MELSCRIBE_HOME / --index-dir to a writable "
                      "folder)", stacklevel=2)
        return index
    log.info("saved the %s index of %d descriptor sets to %s", index.kind, len(index), folder)
    return index


class Recommender:
    """Recommends tracks of a catalog for natural-language requests. Thread-safe.

    ``model``: a model name or path, a loaded ``SentenceTransformer`` or a :class:`TextEncoder`; default the
    trained bi-encoder (``config.trained_model_path()``) if present, else the packaged all-MiniLM-L6-v2.
    ``backend``: the encoder backend (see :mod:`melscribe.encoding.encoder`); default ``SERVING_BACKEND`` for a model given by
    name or path, torch for a loaded ``SentenceTransformer``.
    ``catalog``: a :class:`Catalog` or catalog file; default all of MusicCaps from ``data_dir``.
    The index is ``index`` if given, else loaded from ``index_dir`` (default
    :func:`index_cache_dir`) or built and saved there. An index that is corrupt or was built with another
    model or catalog is rebuilt when ``auto_rebuild``, else refused (:class:`IndexCorruptError`,
    :class:`StaleIndexError`). ``fusion`` fuses the dense ranking with a lexical one (:mod:`melscribe.retrieval.fusion`):
    ``None`` (default) uses the fusion tuned by training if the model folder has one (``fusion.json``), else
    none; ``True`` the tuned fusion, or untuned equal-weight RRF with TF-IDF if there is none; ``False`` none;
    or a :class:`~melscribe.retrieval.fusion.FusionConfig`. ``audio_rerank`` re-ranks the catalog's audio-only tracks
    by audio–text similarity. ``intent``: read what requests reject (module doc; per call
    ``recommend(..., intent=False)``); ``intent_threshold``: the cosine above which a descriptor sharing no
    word with a rejected phrase is taken to name it (default: calibrated for the model,
    :func:`melscribe.intent.matching.calibrate_threshold`). ``reranker``: the music cross-encoder that
    ``recommend(..., rerank=N)`` re-scores the top N descriptor sets with (a folder, a name or a
    :class:`~melscribe.encoding.reranker.Reranker`); default the teacher a GPL recipe publishes in the model's folder
    (``teacher/``), if there is one. Loaded on first use.
    """

    def __init__(self, model: Any = None, catalog: Catalog | str | os.PathLike | None = None, *,
                 data_dir: str | os.PathLike | None = None, index: DescriptorIndex | None = None,
                 index_dir: str | os.PathLike | None = None, index_kind: str = "auto", auto_rebuild: bool = True,
                 fusion: bool | FusionConfig | None = None, audio_rerank: bool = True, intent: bool = True,
                 intent_threshold: float | None = None, backend: str | None = None,
                 reranker: Reranker | str | os.PathLike | None = None):
        if backend is None:  # a model already loaded in PyTorch stays there
            backend = SERVING_BACKEND if model is None or isinstance(model, (str, os.PathLike)) else "torch"
        self.encoder = model if isinstance(model, TextEncoder) else TextEncoder(model, backend=backend)
        self.catalog = load_catalog(catalog, data_dir)
        self.index = index if index is not None else self._open_index(index_dir, index_kind, auto_rebuild)
        self.index.check(self.encoder, self.catalog.fingerprint())
        sets = {set_text(s): s for t in self.catalog for s in t.descriptor_sets}
        ids = self.catalog.descriptor_sets
        self._rows = [(sets[text], ids[text]) for text in self.index.texts]
        self._vocabulary = frozenset(self.catalog.vocabulary())
        self.fusion = resolve_fusion(fusion, self.encoder.source)
        self._lexical = BASELINES[self.fusion.lexical]().fit(self.index.texts) if self.fusion else None
        audio = self.catalog.audio if audio_rerank else None
        self._audio = audio if audio is not None and len(audio.track_ids) else None
        self._audio_rows = {tid: i for i, tid in enumerate(self._audio.track_ids)} if self._audio else {}
        self._audio_lock = threading.Lock()
        self.intent = bool(intent)
        self._intent_threshold = intent_threshold
        self._parser_lock = threading.Lock()
        self._parser: IntentParser | None = None
        self._parse_cached = functools.lru_cache(maxsize=1024)(self._parse)
        self._exclusions_cached = functools.lru_cache(maxsize=1024)(self._exclusions)
        if reranker is None and (Path(self.encoder.source) / TEACHER_DIR / "config.json").is_file():
            reranker = Path(self.encoder.source) / TEACHER_DIR
        self._reranker_source, self._reranker_lock = reranker, threading.Lock()
        if self.intent:
            self.intent_parser  # built now (its threshold calibration takes seconds), not on the first request
        log.info("recommender: %r, %s index of %d descriptor sets, model %s, fusion %s", self.catalog,
                 self.index.kind, len(self.index), self.encoder.name, self.fusion)

    def _open_index(self, index_dir: str | os.PathLike | None, kind: str, auto_rebuild: bool) -> DescriptorIndex:
        fingerprint = self.catalog.fingerprint()
        folder = Path(index_dir) if index_dir is not None else index_cache_dir(self.encoder.name, fingerprint, kind)
        check_replaceable(folder, INDEX_META_FILE, "index")  # a user's folder is refused before anything is read
        if folder.exists():
            try:
                index = DescriptorIndex.load(folder)
                index.check(self.encoder, fingerprint)
                if kind in ("auto", index.kind):
                    return index
                raise StaleIndexError(f"the index at {folder} is {index.kind}, not {kind}")
            except (IndexCorruptError, StaleIndexError) as e:
                if not auto_rebuild:
                    raise
                warnings.warn(f"{e}; rebuilding it", stacklevel=3)
        return build_index(self.catalog, self.encoder, folder, kind)

    @property
    def intent_parser(self) -> IntentParser:
        """The :class:`IntentParser` over the index's vocabulary and embeddings (built on first use)."""
        if self._parser is None:
            with self._parser_lock:
                if self._parser is None:
                    self._parser = IntentParser(self.index.vocabulary, self.index.vocabulary_embeddings,
                                                self.encoder, self._intent_threshold)
        return self._parser

    @property
    def reranker(self) -> Reranker | None:
        """The music cross-encoder of ``rerank=N`` (loaded on first use), or ``None`` if there is none."""
        with self._reranker_lock:
            if self._reranker_source is not None and not isinstance(self._reranker_source, Reranker):
                self._reranker_source = Reranker(self._reranker_source)
            return self._reranker_source

    def parse_intent(self, request: str) -> Intent:
        """What ``request`` wants and rejects (:class:`melscribe.intent.parser.Intent`); recent requests are cached."""
        if not isinstance(request, str):
            raise InvalidRequestError(f"the request must be a string, not {type(request).__name__}")
        return self._parse_cached(request.strip())

    def _parse(self, request: str) -> Intent:
        return self.intent_parser.parse(request)

    def recommend(self, request: str, k: int = 10, *, exclude_tracks: Iterable[str] = (),
                  require_descriptors: Iterable[str] = (), exclude_descriptors: Iterable[str] = (),
                  intent: bool | None = None, rerank: int = 0) -> RecommendationList:
        """The ``k`` best tracks for ``request``, best first, each with the descriptor set it matched, as a
        :class:`RecommendationList` (a list that also says whether it is ``low_confidence``).

        Filters: never return ``exclude_tracks`` (ids, each must be in the catalog); return only tracks having
        every one of ``require_descriptors`` (each must be in the catalog's vocabulary) and none of
        ``exclude_descriptors`` nor of the descriptors they name (:meth:`IntentParser`'s matching: "piano" also
        excludes "piano ballad"; one that names nothing in the vocabulary is an error, as for
        ``require_descriptors``). ``intent`` (default: the recommender's): read what the request rejects and
        keep it out (module doc). ``rerank``: re-score the best ``rerank`` descriptor sets with the music
        cross-encoder (``reranker``) and order them by it (0, the default: off; 50 add about 280 ms on 2 CPU
        cores). A request longer than the model's window is read whole (:meth:`embed_requests`); one that
        is not a string, is empty, is longer than :data:`MAX_REQUEST_CHARS` characters or is not valid Unicode
        (a lone surrogate) is refused (:func:`check_request_text`).
        """
        prepared = self.prepare(request, k, exclude_tracks=exclude_tracks, require_descriptors=require_descriptors,
                                exclude_descriptors=exclude_descriptors, intent=intent, rerank=rerank)
        return self.answer([prepared])[0]

    def recommend_many(self, requests: Sequence[str], k: int = 10, **options: Any) -> list[RecommendationList]:
        """:meth:`recommend` for several requests at once (same ``k``, filters and ``intent``), encoded as one batch:
        faster per request than one call each. Every request is checked before any is encoded. The answers are
        those of :meth:`recommend`, with scores within :data:`BATCH_SCORE_TOLERANCE` (module doc)."""
        if isinstance(requests, str):
            raise InvalidRequestError("recommend_many takes a list of requests, not one string")
        return self.answer([self.prepare(r, k, **options) for r in requests])

    def prepare(self, request: str, k: int = 10, *, exclude_tracks: Iterable[str] = (),
                require_descriptors: Iterable[str] = (), exclude_descriptors: Iterable[str] = (),
                intent: bool | None = None, rerank: int = 0) -> PreparedRequest:
        """Check a request and its options (:class:`InvalidRequestError` naming the problem) without encoding
        it; :meth:`answer` then answers a batch of prepared requests."""
        text = check_request_text(request, MAX_REQUEST_CHARS)
        k = _check_k(k)
        rerank = self._check_rerank(rerank)
        filt = self._filter(exclude_tracks, require_descriptors, exclude_descriptors)
        parsed = self.parse_intent(text) if (self.intent if intent is None else intent) else None
        if parsed is None or parsed.empty:  # nothing rejected: exactly the results without intent handling
            return PreparedRequest(text, k, filt, rerank=rerank)
        return PreparedRequest(parsed.text, k, filt, parsed, rerank)

    def prepare_may_encode(self, request: str, *, intent: bool | None = None,
                           exclude_descriptors: Iterable[str] = ()) -> bool:
        """Whether :meth:`prepare` may run the encoder for these arguments: with intent handling on, a request
        with a rejection cue (its rejected phrases are matched semantically), or ``exclude_descriptors``. The
        HTTP server prepares those on a worker thread and the others, string work only, on its event loop."""
        if exclude_descriptors:
            return True
        return bool(self.intent if intent is None else intent) and isinstance(request, str) and may_reject(request)

    def _check_rerank(self, rerank: Any) -> int:
        if isinstance(rerank, bool) or not isinstance(rerank, (int, np.integer)):
            raise InvalidRequestError(f"rerank must be an integer, not {type(rerank).__name__}")
        if not 0 <= rerank <= MAX_RERANK:
            raise InvalidRequestError(f"rerank must be between 0 and {MAX_RERANK}, not {rerank}")
        if rerank and self._reranker_source is None:
            raise InvalidRequestError("rerank needs a music cross-encoder: train with a GPL recipe (it publishes "
                                      f"{TEACHER_DIR}/ beside the model) or pass reranker= to Recommender")
        return int(rerank)

    def answer(self, prepared: Sequence[PreparedRequest]) -> list[RecommendationList]:
        """The recommendations of requests checked by :meth:`prepare`, their texts encoded as one batch
        (:meth:`embed_requests`, then :meth:`rank_embedded`)."""
        return self.rank_embedded(self.embed_requests(prepared), prepared)

    def embed_requests(self, prepared: Sequence[PreparedRequest]) -> np.ndarray:
        """The embeddings of the texts of requests checked by :meth:`prepare`, encoded as one batch, each read
        whole: a text longer than the encoder's window is embedded sentence by sentence, each sentence weighted
        by its best score on the index (:meth:`TextEncoder.encode_whole`); the others exactly as
        :meth:`TextEncoder.encode` embeds them."""
        return self.encoder.encode_whole([p.text for p in prepared],
                                         relevance=lambda pieces: self.index.search(pieces, 1)[0][:, 0])

    def rank_embedded(self, queries: np.ndarray, prepared: Sequence[PreparedRequest]) -> list[RecommendationList]:
        """The recommendations of ``prepared`` requests whose texts :meth:`embed_requests` encoded as ``queries``
        (the batching server runs this for one batch while it encodes the next)."""
        return [self._rank(q, p.k, p.filter, p.text, p.rerank) if p.intent is None else self._rank_with_intent(q, p)
                for q, p in zip(queries, prepared)]

    def _rank_with_intent(self, query: np.ndarray, p: PreparedRequest) -> RecommendationList:
        """Rank without the sets carrying a descriptor ``p.intent`` rejects; if fewer than ``k`` tracks remain,
        fill up with the best of the others, each saying what it carries."""
        rejected = frozenset(p.intent.rejected)
        results = self._rank(query, p.k, dataclasses.replace(p.filter, exclude=p.filter.exclude | rejected), p.text,
                             p.rerank)
        if len(results) < p.k:
            have = {r.track_id for r in results}
            more = [r for r in self._rank(query, p.k, p.filter, p.text, p.rerank) if r.track_id not in have]
            results += more[:p.k - len(results)]
        base = {"wanted": p.intent.wanted, "avoided": p.intent.rejected_phrases}
        return RecommendationList((dataclasses.replace(r, rank=rank, intent={
                                       **base, "carries_avoided": tuple(d for d in r.descriptor_set if d in rejected)})
                                   for rank, r in enumerate(results, 1)), low_confidence=results.low_confidence)

    def search(self, query: np.ndarray, k: int = 10, *, exclude_tracks: Iterable[str] = (),
               require_descriptors: Iterable[str] = (), exclude_descriptors: Iterable[str] = ()) -> RecommendationList:
        """Like :meth:`recommend` for a request already embedded by ``self.encoder`` (shape ``(dim,)``).
        Without the request's text there is no lexical fusion."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape != (self.index.dim,):
            raise InvalidRequestError(f"the query embedding has shape {query.shape}, expected ({self.index.dim},)")
        return self._rank(query, _check_k(k), self._filter(exclude_tracks, require_descriptors, exclude_descriptors))

    @cached_property
    def confidence_threshold(self) -> float:
        """The best score under which a request's results are low-confidence on this index
        (:func:`low_confidence_threshold`, computed on first use)."""
        return low_confidence_threshold(self.index, self.encoder.encode(NULL_PROBES),
                                        self.encoder.encode(MUSIC_PROBES))

    def _filter(self, exclude_tracks: Iterable[str], require: Iterable[str], exclude: Iterable[str]) -> _Filter:
        ids = frozenset(self.catalog.track(t).id for t in _as_list(exclude_tracks, "exclude_tracks"))
        req = frozenset(_as_list(require, "require_descriptors", normalise=True))
        unknown = sorted(req - self._vocabulary)
        if unknown:
            raise InvalidRequestError(f"unknown descriptor(s) in require_descriptors: {', '.join(map(repr, unknown))} "
                                      f"(not in the vocabulary of {self.catalog.name})")
        exc = tuple(sorted(set(_as_list(exclude, "exclude_descriptors", normalise=True))))
        return _Filter(ids, req, self._exclusions_cached(exc) if exc else frozenset())

    def _exclusions(self, exclude: tuple[str, ...]) -> frozenset[str]:
        """The descriptors that ``exclude_descriptors`` name: each one and those the intent matcher finds
        for it. :class:`InvalidRequestError` naming those that are unknown to the vocabulary and name nothing."""
        named = self.intent_parser.matcher.matches(list(exclude))
        unknown = [d for d, names in zip(exclude, named) if not names and d not in self._vocabulary]
        if unknown:
            raise InvalidRequestError(f"unknown descriptor(s) in exclude_descriptors: "
                                      f"{', '.join(map(repr, unknown))} (not in the vocabulary of "
                                      f"{self.catalog.name}, nor close to a descriptor)")
        return frozenset(exclude).union(*named)

    def _rank(self, query: np.ndarray, k: int, filt: _Filter, request: str | None = None,
              rerank: int = 0) -> RecommendationList:
        """Fetch ever more of the best descriptor sets until ``k`` tracks pass the filter; past
        :data:`MAX_CANDIDATES` sets, score exactly just the sets of the tracks that pass; with ``rerank``, order
        the best ``rerank`` sets by the cross-encoder. The request's best dense score over the whole index,
        whatever the filters, says whether the results are low-confidence."""
        total = len(self.index)
        n = min(total, max(MIN_CANDIDATES, CANDIDATES_PER_RESULT * k, rerank))
        teacher: dict[int, float] = {}
        best = None
        while True:
            allowed = self._allowed_rows(filt) if n > MAX_CANDIDATES else None
            scores, rows, best_dense = self._ranked_rows(query, n, request, allowed)
            best = best_dense if best is None else best
            if rerank and request is not None:
                scores, rows = self._rerank_rows(request, scores, rows, rerank, teacher)
            # audio re-ranking may promote any candidate; otherwise the first k are all that is needed
            candidates = self._collect(scores, rows, filt, None if self._audio is not None else k)
            if len(candidates) >= k or n >= total or allowed is not None:
                break
            n = min(total, 4 * n)
        if self._audio is not None:
            candidates = self._rerank_audio(candidates, rows, query)
        candidates = candidates[:k]
        for c in candidates:
            c.rerank_score = teacher.get(c.row)
        sets = [self._rows[c.row][0] for c in candidates]
        # only the descriptors the encoder read (all, unless a set is longer than it reads) explain a match
        read = [self.index.descriptors_read(c.row, ds) for c, ds in zip(candidates, sets)]
        sims = iter(self.index.descriptor_scores(query, [d for ds in read for d in ds]))  # one product for all
        if best is None:  # only the sets of allowed tracks were scored
            best = float(self.index.search(query, 1)[0][0, 0])
        return RecommendationList((self._result(rank, c, ds, [next(sims) for _ in r] + [None] * (len(ds) - len(r)))
                                   for rank, (c, ds, r) in enumerate(zip(candidates, sets, read), 1)),
                                  low_confidence=best < self.confidence_threshold)

    def _rerank_rows(self, request: str, scores: np.ndarray, rows: np.ndarray, depth: int,
                     teacher: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
        """The first ``depth`` of the ranked ``rows`` ordered by the cross-encoder's logits (kept in ``teacher``
        by row, each scored once), the rest after them as they were."""
        top = rows[:depth]
        todo = [r for r in top.tolist() if r not in teacher]
        teacher.update(zip(todo, self.reranker.score(request, [self.index.texts[r] for r in todo]).tolist()))
        order = np.argsort(-np.array([teacher[r] for r in top.tolist()]), kind="stable")
        return np.concatenate([scores[:depth][order], scores[depth:]]), np.concatenate([top[order], rows[depth:]])

    def _allowed_rows(self, filt: _Filter) -> np.ndarray:
        """Index rows with at least one track that passes the filter."""
        track = self.catalog.track
        return np.array([i for i, (_, ids) in enumerate(self._rows) if any(filt.accepts(track(t)) for t in ids)],
                        dtype=np.int64)

    def _ranked_rows(self, query: np.ndarray, n: int, request: str | None,
                     allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float | None]:
        """The ``n`` best index rows (scores, rows), best first, among ``allowed`` rows if given (scored
        exactly) else among all (by the index): dense, or fused with the lexical scorer; and the best dense
        score over the whole index (``None`` when only ``allowed`` rows were scored)."""
        best = None
        if allowed is None:
            scores, rows = (a[0] for a in self.index.search(query, n))
            keep = rows >= 0
            scores, rows = scores[keep], rows[keep]
            best = float(scores[0]) if len(scores) else None
        else:
            dense = self.index.index.reconstruct_batch(allowed) @ query if len(allowed) else np.zeros(0, np.float32)
            order = np.argsort(-dense, kind="stable")
            scores, rows = dense[order], allowed[order]
        if self._lexical is None or request is None or not len(rows):
            return scores, rows, best
        if len(self.index) > LEXICAL_UNION_MAX:
            # a large catalog: the lexical side re-ranks the dense candidates instead of adding its own (scoring
            # every set of a 1M-set index took ~170 ms a request)
            fused = self.fusion.fuse([scores[None, :], self._lexical.score_rows(request, rows)[None, :]])[0]
            order = np.argsort(-fused, kind="stable")
            return fused[order], rows[order], best
        lexical = self._lexical.score([request])[0]
        among = np.arange(len(lexical)) if allowed is None else allowed
        top_lexical = among[np.argpartition(-lexical[among], min(n, len(among)) - 1)[:n]]
        pool = np.union1d(rows, top_lexical).astype(np.int64)
        dense = self.index.index.reconstruct_batch(pool) @ query
        fused = self.fusion.fuse([dense[None, :], lexical[pool][None, :]])[0]
        order = np.argsort(-fused, kind="stable")[:n]
        return fused[order], pool[order], best

    def _collect(self, scores: np.ndarray, rows: np.ndarray, filt: _Filter, limit: int | None = None) -> list[_Candidate]:
        """Tracks of the ranked rows in order, each once (by its best row), that pass the filter; the first
        ``limit`` of them if given."""
        seen: set[str] = set()
        out: list[_Candidate] = []
        for score, row in zip(scores.tolist(), rows.tolist()):
            for tid in self._rows[row][1]:
                if tid in seen:
                    continue
                seen.add(tid)
                track = self.catalog.track(tid)
                if filt.accepts(track):
                    out.append(_Candidate(track, row, score))
                    if len(out) == limit:
                        return out
        return out

    def _rerank_audio(self, candidates: list[_Candidate], rows: np.ndarray, query: np.ndarray) -> list[_Candidate]:
        """Audio-only candidates keep the slots the ranking gave them, filled in order of the similarity of
        their audio to the request: to its embedding ``query`` when the audio model shares this recommender's
        text encoder (:class:`~melscribe.audio.tagger_space.TaggerTextModel`), else (CLAP) to the request's top
        descriptor sets embedded by the audio model's text tower."""
        from melscribe.audio.joint import rerank_by_audio

        audio = [c for c in candidates if c.track.id in self._audio_rows]
        if not audio:
            return candidates
        model = self._audio.model
        if getattr(getattr(model, "encoder", None), "name", None) == self.encoder.name:
            sims = self._audio.embeddings @ np.asarray(query, dtype=np.float32)
        else:
            texts = [self.index.texts[r] for r in rows[:AUDIO_CONTEXT_SETS].tolist()]
            with self._audio_lock:
                sims = rerank_by_audio(model, texts, self._audio.embeddings)
        for c in audio:
            c.audio_score = float(sims[self._audio_rows[c.track.id]])
        slots = iter(sorted(audio, key=lambda c: -c.audio_score))
        return [next(slots) if c.track.id in self._audio_rows else c for c in candidates]

    @staticmethod
    def _result(rank: int, c: _Candidate, descriptors: tuple[str, ...], sims: list[float | None]) -> Recommendation:
        ranked = sorted(((s, d) for s, d in zip(sims, descriptors) if s is not None), reverse=True)
        matched = tuple(d for s, d in ranked if s >= EXPLAIN_MIN_SIMILARITY) or tuple(d for _, d in ranked[:1])
        return Recommendation(rank, c.track.id, round(float(c.score), 6), descriptors, matched,
                              dict(c.track.metadata), c.track.inferred,
                              None if c.audio_score is None else round(c.audio_score, 6),
                              rerank_score=None if c.rerank_score is None else round(c.rerank_score, 6))


def resolve_fusion(fusion: bool | FusionConfig | None, model_source: str) -> FusionConfig | None:
    """The fusion a :class:`Recommender` uses (see its ``fusion`` argument): a model folder's tuned
    ``fusion.json`` is read for ``None`` and ``True``."""
    if isinstance(fusion, FusionConfig):
        return fusion
    if fusion is False:
        return None
    if fusion not in (None, True):
        raise InvalidRequestError(f"fusion must be True, False, None or a FusionConfig, not {fusion!r}")
    tuned = load_fusion(model_source) if Path(model_source).is_dir() else None
    return tuned or (FusionConfig() if fusion else None)


def check_request_text(request: Any, max_chars: int = MAX_REQUEST_CHARS) -> str:
    """``request`` without surrounding white space; :class:`InvalidRequestError` if it is not a string, is
    empty, has more than ``max_chars`` characters, or cannot be encoded as UTF-8 (a lone surrogate, which
    the tokenizer cannot read). Cheap: nothing is tokenised."""
    if not isinstance(request, str):
        raise InvalidRequestError(f"the request must be a string, not {type(request).__name__}")
    if len(request) > max_chars:
        raise InvalidRequestError(f"the request has {len(request):,} characters; at most {max_chars:,} are accepted")
    text = request.strip()
    if not text:
        raise InvalidRequestError("the request is empty")
    try:
        request.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidRequestError(f"the request is not valid Unicode text ({e.reason} at character {e.start})") from None
    return text


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidRequestError(f"k must be an integer, not {type(k).__name__}")
    if k <= 0:
        raise InvalidRequestError(f"k must be positive, not {k}")
    return int(k)


def _as_list(values: Iterable[str] | None, what: str, *, normalise: bool = False) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        if not isinstance(v, str):
            raise InvalidRequestError(f"{what} must hold strings, not {type(v).__name__}")
        out.append(v.strip().lower() if normalise else v)
    return out


_defaults: dict[Any, Recommender] = {}
_default_lock = threading.Lock()


def default_recommender(fusion: bool | FusionConfig | None = None) -> Recommender:
    """The recommender :func:`recommend` uses, built on first use with the defaults of :class:`Recommender`
    (the trained or packaged model, MusicCaps); with another ``fusion`` it shares that one's model and index."""
    with _default_lock:
        if None not in _defaults:
            _defaults[None] = Recommender()
        if fusion not in _defaults:
            base = _defaults[None]
            _defaults[fusion] = Recommender(base.encoder, base.catalog, index=base.index, fusion=fusion)
        return _defaults[fusion]


def recommend(request: str, k: int = 10, *, fusion: bool | FusionConfig | None = None,
              **filters: Any) -> RecommendationList:
    """:meth:`Recommender.recommend` on :func:`default_recommender` (the trained or packaged model, MusicCaps);
    ``fusion`` as for :class:`Recommender` (default: the model's tuned fusion if it has one); the other options
    (filters, ``intent``, ``rerank``) as for :meth:`Recommender.recommend`."""
    return default_recommender(fusion).recommend(request, k, **filters)
