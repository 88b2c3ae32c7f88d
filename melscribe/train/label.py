"""GPL step 4, stage ``label``: the teacher's margins as pseudo-labels.

The teacher is anything that scores (request, descriptor set) pairs (``score_pairs``): the music
cross-encoder of stage ``teacher`` (:class:`~melscribe.encoding.reranker.Reranker`, ``label.teacher =
"cross-encoder"``), or :class:`FusedTeacher`, the run's MNRL bi-encoder fused with TF-IDF (``"fused"``).

Cross-encoder margins are computed from **raw logits**: a one-logit ``CrossEncoder`` applies a sigmoid by
default, which squashes every margin toward 0, so the :class:`~melscribe.encoding.reranker.Reranker` asks for the
identity activation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from melscribe.retrieval.fusion.weighted import weighted_fusion


def margin_labels(teacher, triplets: Sequence[tuple[str, str, str]], show_progress_bar: bool = True) -> np.ndarray:
    """``T(q, pos) − T(q, neg)`` for each (query, positive text, negative text), ``T`` being ``teacher``'s
    ``score_pairs`` (raw logits of a :class:`melscribe.encoding.reranker.Reranker`, or a :class:`FusedTeacher`). Each
    distinct (query, document) pair is scored once."""
    unique = list(dict.fromkeys(p for q, pos, neg in triplets for p in ((q, pos), (q, neg))))
    score = dict(zip(unique, teacher.score_pairs(unique, show_progress_bar=show_progress_bar).tolist()))
    return np.array([score[q, pos] - score[q, neg] for q, pos, neg in triplets], dtype=np.float32)


class FusedTeacher:
    """A bi-encoder fused with a lexical scorer, as a teacher: ``T(q, d) = scale · (cos(q, d) + w · σ_q ·
    z_q(lex(q, d)))``, where ``z_q`` z-normalises the lexical scores of ``q`` over ``corpus`` and ``σ_q`` is the
    spread of its cosine scores there. Per request this ranks exactly as the weighted fusion
    ``z(dense) + w · z(lex)`` of :mod:`melscribe.retrieval.fusion.weighted`, but in the bi-encoder's own cosine units
    (times ``scale``, the student's ``margin_scale``): a student starting from that bi-encoder already matches
    the dense part of every margin and learns the lexical part."""

    def __init__(self, model: str, corpus: Sequence[str], lexical: str = "tfidf", weight: float = 1.0,
                 scale: float = 1.0, chunk: int = 512):
        from melscribe.encoding.encoder import TextEncoder
        from melscribe.retrieval.scorers import BASELINES

        self.encoder, self.corpus = TextEncoder(model), list(corpus)
        self.lexical = BASELINES[lexical]().fit(self.corpus)
        self.weight, self.scale, self.chunk = weight, scale, chunk
        self._docs = self.encoder.encode(self.corpus, progress=True)
        self._row = {t: i for i, t in enumerate(self.corpus)}

    def score_pairs(self, pairs: Sequence[tuple[str, str]], show_progress_bar: bool = False) -> np.ndarray:
        """Teacher scores of (request, document) pairs; every document must be in the corpus."""
        missing = {d for _, d in pairs if d not in self._row}
        if missing:
            raise ValueError(f"{len(missing)} documents are not in the teacher's corpus, e.g. {next(iter(missing))!r}")
        by_query: dict[str, list[int]] = {}
        for i, (q, _) in enumerate(pairs):
            by_query.setdefault(q, []).append(i)
        queries = list(by_query)
        out = np.empty(len(pairs), dtype=np.float32)
        for start in tqdm(range(0, len(queries), self.chunk), desc="fused teacher", disable=not show_progress_bar):
            block = queries[start:start + self.chunk]
            dense = self.encoder.encode(block) @ self._docs.T
            z = weighted_fusion([dense, self.lexical.score(block)], [1.0, self.weight])
            # back to cosine units: σ·(z_dense + w·z_lex) + μ = cos + w·σ·z_lex
            fused = self.scale * (dense.std(axis=1, keepdims=True) * z + dense.mean(axis=1, keepdims=True))
            for j, q in enumerate(block):
                idx = by_query[q]
                out[idx] = fused[j, [self._row[pairs[i][1]] for i in idx]]
        return out
