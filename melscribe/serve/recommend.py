"""From a natural-language request to ranked tracks: :class:`Recommender`, the front door, and
:func:`recommend`.

The request is checked (:mod:`.request_checks`), its intent read (:mod:`melscribe.intent`), its text
embedded by the bi-encoder; the closest descriptor sets are found in the store (:mod:`.store`: the faiss
:class:`~melscribe.serve.index.DescriptorIndex`, or Milvus, opened or built by :mod:`.store_setup`), and each set
leads to the tracks that have it. :mod:`.ranking` ranks the tracks by their best set, de-duplicated and
filtered, fused with a lexical ranking, re-ranked by the cross-encoder or by audio when asked; each result
(:mod:`.results`) says which set matched and which of its descriptors are closest to the request (the
explanation), and the list says whether the request was low-confidence (:mod:`.confidence`): it resembles no
descriptor set of the catalog much more than gibberish does.

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

import functools
import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from melscribe.encoding.encoder import SERVING_BACKEND, TextEncoder
from melscribe.encoding.models import TEACHER_DIR
from melscribe.encoding.reranker import Reranker
from melscribe.errors import InvalidRequestError
from melscribe.intent.parser import Intent, IntentParser
from melscribe.intent.rejections import may_reject
from melscribe.retrieval.fusion import FusionConfig, load_fusion
from melscribe.retrieval.scorers import BASELINES
from melscribe.serve.catalog import Catalog
from melscribe.serve.confidence import MUSIC_PROBES, NULL_PROBES, low_confidence_threshold
from melscribe.serve.ranking import Ranker
from melscribe.serve.request_checks import (MAX_REQUEST_CHARS, MAX_RERANK, PreparedRequest, TrackFilter, as_list,
                                            check_k, check_request_text)
from melscribe.serve.results import RecommendationList
from melscribe.serve.store import DescriptorStore, parse_store
from melscribe.serve.store_setup import DEFAULT_SPARSE, load_catalog, open_index, open_milvus

log = logging.getLogger(__name__)

#: How far a score may differ between a request encoded alone and in a batch (:meth:`Recommender.recommend_many`,
#: the HTTP server's batches): the same tracks come back in the same order, but matrix kernels on some CPUs
#: (Intel Xeon with AVX-512 VNNI / AMX) round differently at other batch sizes, in the sixth decimal.
BATCH_SCORE_TOLERANCE = 1e-5


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
    (``teacher/``), if there is one. Loaded on first use. ``store``: where the descriptor sets are kept
    (:mod:`melscribe.serve.store`): ``None`` or ``"faiss"`` the faiss index above; ``"milvus:PATH.db"`` (Milvus
    Lite) or ``"milvus://HOST:PORT"`` a Milvus store, built there if absent and rebuilt if stale (as the
    index, ``auto_rebuild``); or a store object.
    """

    def __init__(self, model: Any = None, catalog: Catalog | str | os.PathLike | None = None, *,
                 data_dir: str | os.PathLike | None = None, index: DescriptorStore | None = None,
                 index_dir: str | os.PathLike | None = None, index_kind: str = "auto", auto_rebuild: bool = True,
                 fusion: bool | FusionConfig | None = None, audio_rerank: bool = True, intent: bool = True,
                 intent_threshold: float | None = None, backend: str | None = None,
                 reranker: Reranker | str | os.PathLike | None = None,
                 store: str | DescriptorStore | None = None):
        if backend is None:  # a model already loaded in PyTorch stays there
            backend = SERVING_BACKEND if model is None or isinstance(model, (str, os.PathLike)) else "torch"
        self.encoder = model if isinstance(model, TextEncoder) else TextEncoder(model, backend=backend)
        self.catalog = load_catalog(catalog, data_dir)
        self.fusion = resolve_fusion(fusion, self.encoder.source)
        if index is None and store is not None and not isinstance(store, str):
            index = store
        if index is None and parse_store(store)[0] == "milvus":
            index = open_milvus(self.catalog, self.encoder, parse_store(store)[1], auto_rebuild,
                                self.fusion.lexical if self.fusion else DEFAULT_SPARSE)
        if index is None:
            index = open_index(self.catalog, self.encoder, index_dir, index_kind, auto_rebuild)
        self.index = index
        self.index.check(self.encoder, self.catalog.fingerprint())
        rows = self.catalog.set_rows(self.index.texts)
        self._vocabulary = frozenset(self.catalog.vocabulary())
        self._lexical = BASELINES[self.fusion.lexical]().fit(self.index.texts) if self.fusion else None
        audio = self.catalog.audio if audio_rerank else None
        audio = audio if audio is not None and len(audio.track_ids) else None
        self.intent = bool(intent)
        self._intent_threshold = intent_threshold
        self._parser_lock = threading.Lock()
        self._parser: IntentParser | None = None
        self._parse_cached = functools.lru_cache(maxsize=1024)(self._parse)
        self._exclusions_cached = functools.lru_cache(maxsize=1024)(self._exclusions)
        if reranker is None and (Path(self.encoder.source) / TEACHER_DIR / "config.json").is_file():
            reranker = Path(self.encoder.source) / TEACHER_DIR
        self._reranker_source, self._reranker_lock = reranker, threading.Lock()
        self._ranker = Ranker(self.index, self.catalog, rows, lexical=self._lexical, fusion=self.fusion, audio=audio,
                              encoder_name=self.encoder.name, reranker=lambda: self.reranker,
                              threshold=lambda: self.confidence_threshold)
        if self.intent:
            self.intent_parser  # built now (its threshold calibration takes seconds), not on the first request
        log.info("recommender: %r, %s index of %d descriptor sets, model %s, fusion %s", self.catalog,
                 self.index.kind, len(self.index), self.encoder.name, self.fusion)

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
        k = check_k(k)
        rerank = self._check_rerank(rerank)
        filt = self._filter(exclude_tracks, require_descriptors, exclude_descriptors)
        parsed = self.parse_intent(text) if (self.intent if intent is None else intent) else None
        if parsed is None or parsed.empty:  # nothing rejected: exactly the results without intent handling
            return PreparedRequest(text, k, filt, rerank=rerank)
        return PreparedRequest(parsed.text, k, filt, parsed, rerank)

    def prepare_may_encode(self, request: str, *, intent: bool | None = None,
                           exclude_descriptors: Iterable[str] = ()) -> bool:
        """Whether :meth:`prepare` may run the encoder (or wait on a network) for these arguments: with intent
        handling on, a request with a rejection cue (its rejected phrases are matched semantically), any request
        when the intent parser has a reader beyond the rules (an LLM reader asks its endpoint, a learned scope
        reader may find rejections without a cue), or ``exclude_descriptors``. The HTTP server prepares those on a
        worker thread and the others, string work only, on its event loop."""
        if exclude_descriptors:
            return True
        if not (self.intent if intent is None else intent) or not isinstance(request, str):
            return False
        parser = self.intent_parser
        return parser.reader is not None or parser.scope is not None or may_reject(request)

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
        ranker = self._ranker
        return [ranker.rank(q, p.k, p.filter, p.text, p.rerank) if p.intent is None else ranker.rank_with_intent(q, p)
                for q, p in zip(queries, prepared)]

    def search(self, query: np.ndarray, k: int = 10, *, exclude_tracks: Iterable[str] = (),
               require_descriptors: Iterable[str] = (), exclude_descriptors: Iterable[str] = ()) -> RecommendationList:
        """Like :meth:`recommend` for a request already embedded by ``self.encoder`` (shape ``(dim,)``).
        Without the request's text there is no lexical fusion."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape != (self.index.dim,):
            raise InvalidRequestError(f"the query embedding has shape {query.shape}, expected ({self.index.dim},)")
        return self._ranker.rank(query, check_k(k), self._filter(exclude_tracks, require_descriptors, exclude_descriptors))

    @cached_property
    def confidence_threshold(self) -> float:
        """The best score under which a request's results are low-confidence on this index
        (:func:`low_confidence_threshold`, computed on first use)."""
        return low_confidence_threshold(self.index, self.encoder.encode(NULL_PROBES),
                                        self.encoder.encode(MUSIC_PROBES))

    def _filter(self, exclude_tracks: Iterable[str], require: Iterable[str], exclude: Iterable[str]) -> TrackFilter:
        ids = frozenset(self.catalog.track(t).id for t in as_list(exclude_tracks, "exclude_tracks"))
        req = frozenset(as_list(require, "require_descriptors", normalise=True))
        unknown = sorted(req - self._vocabulary)
        if unknown:
            raise InvalidRequestError(f"unknown descriptor(s) in require_descriptors: {', '.join(map(repr, unknown))} "
                                      f"(not in the vocabulary of {self.catalog.name})")
        exc = tuple(sorted(set(as_list(exclude, "exclude_descriptors", normalise=True))))
        return TrackFilter(ids, req, self._exclusions_cached(exc) if exc else frozenset())

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
