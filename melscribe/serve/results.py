"""What a request gets back: :class:`Recommendation` (one track, with the descriptors that explain it) and
:class:`RecommendationList` (best first, and whether the request was low-confidence), and :func:`explain`, which
turns a ranked candidate into a result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from melscribe.serve.catalog import Track

#: Descriptors at least this close (cosine) to the request explain a match; the closest one always does.
EXPLAIN_MIN_SIMILARITY = 0.3


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


@dataclass
class Candidate:
    """A track on its way to the results: the index row of its best set, its score, and its audio and
    cross-encoder scores when those re-ranked it."""

    track: Track
    row: int
    score: float
    audio_score: float | None = None
    rerank_score: float | None = None


def explain(rank: int, c: Candidate, descriptors: tuple[str, ...], sims: list[float | None]) -> Recommendation:
    """The result at ``rank`` for candidate ``c``: its set ``descriptors`` and, for each, its cosine to the request
    (``sims``, ``None`` where unknown); the matched descriptors are those of at least
    :data:`EXPLAIN_MIN_SIMILARITY`, closest first, or the closest alone."""
    ranked = sorted(((s, d) for s, d in zip(sims, descriptors) if s is not None), reverse=True)
    matched = tuple(d for s, d in ranked if s >= EXPLAIN_MIN_SIMILARITY) or tuple(d for _, d in ranked[:1])
    return Recommendation(rank, c.track.id, round(float(c.score), 6), descriptors, matched,
                          dict(c.track.metadata), c.track.inferred,
                          None if c.audio_score is None else round(c.audio_score, 6),
                          rerank_score=None if c.rerank_score is None else round(c.rerank_score, 6))
