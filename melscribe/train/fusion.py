"""Stage ``fusion``: choose how the bi-encoder is fused with a lexical scorer (:mod:`melscribe.fusion`).

The method (reciprocal rank with constant ``k``, or a weighted sum of z-normalised scores) and the lexical
weight are chosen by Recall@10 on a test-like pair set (one descriptor set per sentence) built from
MusicCaps **train** clips held out from the bi-encoder's training (``TrainConfig.heldout_tracks``): tuned
on pairs the model has seen, the fusion under-weights the lexical side, because the model is better on
its own training data than on new requests.
"""

from __future__ import annotations

import itertools
import random

import numpy as np

from ..evaluate import evaluate_run
from ..fusion import FusionConfig, fuse
from ..pairs import PairDataset
from ..scorers import BASELINES, DenseScorer

RRF_KS = (10, 30, 60, 100)
LEXICAL_WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def _recall_at_10(scores: np.ndarray, ds: PairDataset, doc_ids: list[str], qids: list[str]) -> float:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return evaluate_run({q: [doc_ids[j] for j in row] for q, row in zip(qids, top)}, ds.qrels, ["recall@10"])["recall@10"]


def tune_fusion(model_dir: str, ds: PairDataset, lexical: str = "tfidf", seed: int = 0,
                max_queries: int = 2000) -> FusionConfig:
    """Grid-search the fusion of ``model_dir`` with ``lexical`` on ``ds`` (pairs of held-out clips) for
    Recall@10; the grid's figures are kept in the result's ``tuning``."""
    qids = list(ds.queries)
    if len(qids) > max_queries:
        qids = random.Random(seed).sample(qids, max_queries)
    doc_ids = list(ds.corpus)
    texts, queries = [ds.corpus[d] for d in doc_ids], [ds.queries[q] for q in qids]
    dense = DenseScorer(model_dir, show_progress_bar=True).fit(texts).score(queries)
    lex = BASELINES[lexical]().fit(texts).score(queries)
    grid = {"dense": _recall_at_10(dense, ds, doc_ids, qids), "lexical": _recall_at_10(lex, ds, doc_ids, qids)}
    best = None
    for method, k, w in itertools.chain((("rrf", k, w) for k in RRF_KS for w in LEXICAL_WEIGHTS),
                                        (("weighted", 60, w) for w in LEXICAL_WEIGHTS)):
        r = _recall_at_10(fuse([dense, lex], method, [1.0, w], k), ds, doc_ids, qids)
        grid[f"{method}{f'(k={k})' if method == 'rrf' else ''} w={w}"] = r
        if best is None or r > best[0] + 1e-12:
            best = (r, method, k, w)
    _, method, k, w = best
    return FusionConfig(method=method, k=k, weights=(1.0, w), lexical=lexical,
                        tuning={"queries": len(qids), "documents": len(doc_ids), "recall@10": grid})
