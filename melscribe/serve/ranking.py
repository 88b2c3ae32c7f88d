"""Ranking: from a request's embedding (and text) to its ranked, filtered and explained tracks, on a store.

:class:`Ranker` fetches ever more of the best descriptor sets from the store until ``k`` tracks pass the
request's filter (past :data:`MAX_CANDIDATES`, it scores exactly the sets of the tracks that pass); fuses the
dense ranking with the lexical one (on the union of both candidate lists up to :data:`LEXICAL_UNION_MAX`
sets; above, re-ranking the dense candidates, or with a store that has a sparse index the union again);
orders the best sets by the music cross-encoder when asked (``rerank``); re-ranks audio-only tracks by
audio–text similarity; fills up with the best excluded tracks when intent leaves fewer than ``k``; and
explains each result (:func:`melscribe.serve.results.explain`).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable

import numpy as np

from melscribe.encoding.reranker import Reranker
from melscribe.retrieval.fusion import FusionConfig
from melscribe.serve.catalog import AudioTracks, Catalog, CatalogRows
from melscribe.serve.request_checks import PreparedRequest, TrackFilter
from melscribe.serve.results import Candidate, RecommendationList, explain
from melscribe.serve.store import DescriptorStore, SetFilter

#: How many of the request's top descriptor sets describe it to the audio model.
AUDIO_CONTEXT_SETS = 5
#: Descriptor sets fetched per requested track at first (more are fetched when filters reject many).
CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 32
#: Most descriptor sets fetched from the index for one request before falling back to an exact scan of
#: the sets whose tracks pass the filters.
MAX_CANDIDATES = 10_000
#: Sets whose vectors the exact scan of the allowed sets holds at once (past :data:`MAX_CANDIDATES`).
EXACT_PIECE = 65_536
#: Up to this many descriptor sets, fusion ranks the union of the dense and the lexical best sets; above, the
#: lexical scores re-rank the dense candidates (scoring every set lexically grows with the catalog).
LEXICAL_UNION_MAX = 20_000


class Ranker:
    """Ranks the tracks of ``catalog`` whose descriptor sets ``index`` holds (``rows``: each row's descriptors
    and track ids, :meth:`Catalog.set_rows`). ``lexical`` and ``fusion``: the fitted lexical scorer and the fusion, or
    ``None``; ``audio``: the catalog's audio-only tracks to re-rank (or ``None``); ``encoder_name``: the
    request encoder's (an audio model sharing it ranks audio by the request's own embedding); ``reranker`` and
    ``threshold``: called when needed, for the cross-encoder and the low-confidence threshold."""

    def __init__(self, index: DescriptorStore, catalog: Catalog, rows: CatalogRows, *,
                 lexical: Any, fusion: FusionConfig | None, audio: AudioTracks | None, encoder_name: str,
                 reranker: Callable[[], Reranker | None], threshold: Callable[[], float]):
        self.index, self.catalog, self.rows = index, catalog, rows
        self.lexical, self.fusion, self.encoder_name = lexical, fusion, encoder_name
        self.audio = audio
        self.audio_rows = {tid: i for i, tid in enumerate(audio.track_ids)} if audio is not None else {}
        self.audio_lock = threading.Lock()
        self.reranker, self.threshold = reranker, threshold

    def rank_with_intent(self, query: np.ndarray, p: PreparedRequest) -> RecommendationList:
        """Rank without the sets carrying a descriptor ``p.intent`` rejects; if fewer than ``k`` tracks remain,
        fill up with the best of the others, each saying what it carries."""
        rejected = frozenset(p.intent.rejected)
        results = self.rank(query, p.k, dataclasses.replace(p.filter, exclude=p.filter.exclude | rejected), p.text,
                             p.rerank)
        if len(results) < p.k:
            have = {r.track_id for r in results}
            more = [r for r in self.rank(query, p.k, p.filter, p.text, p.rerank) if r.track_id not in have]
            results += more[:p.k - len(results)]
        base = {"wanted": p.intent.wanted, "avoided": p.intent.rejected_phrases}
        return RecommendationList((dataclasses.replace(r, rank=rank, intent={
                                       **base, "carries_avoided": tuple(d for d in r.descriptor_set if d in rejected)})
                                   for rank, r in enumerate(results, 1)), low_confidence=results.low_confidence)

    def rank(self, query: np.ndarray, k: int, filt: TrackFilter, request: str | None = None,
              rerank: int = 0) -> RecommendationList:
        """Fetch ever more of the best descriptor sets until ``k`` tracks pass the filter; past
        :data:`MAX_CANDIDATES` sets, score exactly just the sets of the tracks that pass (a store that prunes in
        its engine instead searches on, up to its ``max_search`` sets); with ``rerank``, order
        the best ``rerank`` sets by the cross-encoder. The request's best dense score over the whole index,
        whatever the filters, says whether the results are low-confidence."""
        total = len(self.index)
        n = min(total, max(MIN_CANDIDATES, CANDIDATES_PER_RESULT * k, rerank))
        teacher: dict[int, float] = {}
        best = None
        prunes = getattr(self.index, "prunes", False)
        where = SetFilter(filt.exclude, filt.require) if prunes else None
        limit = min(total, getattr(self.index, "max_search", total))
        n = min(n, limit)
        while True:
            allowed = self._allowed_rows(filt) if n > MAX_CANDIDATES and not prunes else None
            scores, rows, best_dense = self._ranked_rows(query, n, request, allowed, where)
            if where and best is None and best_dense is not None:  # the store pruned: the best of all is asked apart
                best_dense = float(self.index.search(query, 1)[0][0, 0])
            best = best_dense if best is None else best
            if rerank and request is not None:
                scores, rows = self._rerank_rows(request, scores, rows, rerank, teacher)
            # audio re-ranking may promote any candidate; otherwise the first k are all that is needed
            candidates = self._collect(scores, rows, filt, None if self.audio is not None else k)
            if len(candidates) >= k or n >= limit or allowed is not None:
                break
            n = min(limit, 4 * n)
        if self.audio is not None:
            candidates = self._rerank_audio(candidates, rows, query)
        candidates = candidates[:k]
        for c in candidates:
            c.rerank_score = teacher.get(c.row)
        sets = [self.rows.descriptors(c.row) for c in candidates]
        # only the descriptors the encoder read (all, unless a set is longer than it reads) explain a match
        read = [self.index.descriptors_read(c.row, ds) for c, ds in zip(candidates, sets)]
        sims = iter(self.index.descriptor_scores(query, [d for ds in read for d in ds]))  # one product for all
        if best is None:  # only the sets of allowed tracks were scored
            best = float(self.index.search(query, 1)[0][0, 0])
        return RecommendationList((explain(rank, c, ds, [next(sims) for _ in r] + [None] * (len(ds) - len(r)))
                                   for rank, (c, ds, r) in enumerate(zip(candidates, sets, read), 1)),
                                  low_confidence=best < self.threshold())

    def _rerank_rows(self, request: str, scores: np.ndarray, rows: np.ndarray, depth: int,
                     teacher: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
        """The first ``depth`` of the ranked ``rows`` ordered by the cross-encoder's logits (kept in ``teacher``
        by row, each scored once), the rest after them as they were."""
        top = rows[:depth]
        todo = [r for r in top.tolist() if r not in teacher]
        teacher.update(zip(todo, self.reranker().score(request, [self.index.texts[r] for r in todo]).tolist()))
        order = np.argsort(-np.array([teacher[r] for r in top.tolist()]), kind="stable")
        return np.concatenate([scores[:depth][order], scores[depth:]]), np.concatenate([top[order], rows[depth:]])

    def _allowed_rows(self, filt: TrackFilter) -> np.ndarray:
        """Index rows with at least one track that passes the filter."""
        return self.rows.allowed(filt)

    def _ranked_rows(self, query: np.ndarray, n: int, request: str | None, allowed: np.ndarray | None = None,
                     where: SetFilter | None = None) -> tuple[np.ndarray, np.ndarray, float | None]:
        """The ``n`` best index rows (scores, rows), best first, among ``allowed`` rows if given (scored
        exactly) else among all (by the store, which may prune the sets ``where`` excludes): dense, or fused with
        the lexical scorer; and the best dense score of the search (``None`` when only ``allowed`` rows were
        scored)."""
        best = None
        if allowed is None:
            scores, rows = (a[0] for a in (self.index.search(query, n, where=where) if where else
                                           self.index.search(query, n)))
            keep = rows >= 0
            scores, rows = scores[keep], rows[keep]
            best = float(scores[0]) if len(scores) else None
        else:
            # a piece at a time: on a large catalog the allowed sets' vectors would not fit in memory at once
            dense = np.concatenate([self.index.vectors(allowed[s:s + EXACT_PIECE]) @ query
                                    for s in range(0, len(allowed), EXACT_PIECE)] or [np.zeros(0, np.float32)])
            order = np.argsort(-dense, kind="stable")
            scores, rows = dense[order], allowed[order]
        if self.lexical is None or request is None or not len(rows):
            return scores, rows, best
        if len(self.index) > LEXICAL_UNION_MAX:
            if allowed is None and getattr(self.index, "sparse", None) == self.fusion.lexical:
                # a store with a sparse index (Milvus) gives the lexical candidates that scoring every set here
                # would cost: the union is fused, as on small catalogs
                top_lexical = self.index.lexical_search(*self.lexical.query_vector(request), n, where=where)[1][0]
                pool = np.union1d(rows, top_lexical).astype(np.int64)
                # the dense candidates' scores are known; only the lexical newcomers' vectors are fetched
                known = dict(zip(rows.tolist(), scores.tolist()))
                new = np.array([r for r in pool.tolist() if r not in known], dtype=np.int64)
                fetched = dict(zip(new.tolist(), (self.index.vectors(new) @ query).tolist())) if len(new) else {}
                dense = np.array([known.get(r, fetched.get(r)) for r in pool.tolist()], dtype=np.float32)
                fused = self.fusion.fuse([dense[None, :], self.lexical.score_rows(request, pool)[None, :]])[0]
                order = np.argsort(-fused, kind="stable")[:n]
                return fused[order], pool[order], best
            # a large catalog: the lexical side re-ranks the dense candidates instead of adding its own (scoring
            # every set of a 1M-set index took ~170 ms a request)
            fused = self.fusion.fuse([scores[None, :], self.lexical.score_rows(request, rows)[None, :]])[0]
            order = np.argsort(-fused, kind="stable")
            return fused[order], rows[order], best
        lexical = self.lexical.score([request])[0]
        among = np.arange(len(lexical)) if allowed is None else allowed
        top_lexical = among[np.argpartition(-lexical[among], min(n, len(among)) - 1)[:n]]
        pool = np.union1d(rows, top_lexical).astype(np.int64)
        dense = self.index.vectors(pool) @ query
        fused = self.fusion.fuse([dense[None, :], lexical[pool][None, :]])[0]
        order = np.argsort(-fused, kind="stable")[:n]
        return fused[order], pool[order], best

    def _collect(self, scores: np.ndarray, rows: np.ndarray, filt: TrackFilter, limit: int | None = None) -> list[Candidate]:
        """Tracks of the ranked rows in order, each once (by its best row), that pass the filter; the first
        ``limit`` of them if given."""
        seen: set[str] = set()
        out: list[Candidate] = []
        for score, row in zip(scores.tolist(), rows.tolist()):
            for track in self.rows.tracks(row):
                if track.id in seen:
                    continue
                seen.add(track.id)
                if filt.accepts(track):
                    out.append(Candidate(track, row, score))
                    if len(out) == limit:
                        return out
        return out

    def _rerank_audio(self, candidates: list[Candidate], rows: np.ndarray, query: np.ndarray) -> list[Candidate]:
        """Audio-only candidates keep the slots the ranking gave them, filled in order of the similarity of
        their audio to the request: to its embedding ``query`` when the audio model shares this recommender's
        text encoder (:class:`~melscribe.audio.tagger_space.TaggerTextModel`), else (CLAP) to the request's top
        descriptor sets embedded by the audio model's text tower."""
        from melscribe.audio.joint import rerank_by_audio

        audio = [c for c in candidates if c.track.id in self.audio_rows]
        if not audio:
            return candidates
        model = self.audio.model
        if getattr(getattr(model, "encoder", None), "name", None) == self.encoder_name:
            sims = self.audio.embeddings @ np.asarray(query, dtype=np.float32)
        else:
            texts = [self.index.texts[r] for r in rows[:AUDIO_CONTEXT_SETS].tolist()]
            with self.audio_lock:
                sims = rerank_by_audio(model, texts, self.audio.embeddings)
        for c in audio:
            c.audio_score = float(sims[self.audio_rows[c.track.id]])
        slots = iter(sorted(audio, key=lambda c: -c.audio_score))
        return [next(slots) if c.track.id in self.audio_rows else c for c in candidates]
