"""Stage ``fusion``: choose how the bi-encoder is fused with a lexical scorer (:mod:`melscribe.retrieval.fusion`).

The method (reciprocal rank with constant ``k``, or a weighted sum of z-normalised scores) and the lexical
weight are chosen by Recall@10 on a test-like pair set (one descriptor set per sentence) built from
MusicCaps **train** clips held out from the bi-encoder's training (``pairs.heldout_tracks``): tuned
on pairs the model has seen, the fusion under-weights the lexical side, because the model is better on
its own training data than on new requests.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from melscribe.evaluation.protocol import evaluate_run
from melscribe.retrieval.fusion import FusionConfig
from melscribe.pairs import PairDataset
from melscribe.retrieval.scorers import BASELINES, DenseScorer

RRF_KS = (10, 30, 60, 100)
LEXICAL_WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def _recall_at_10(scores: np.ndarray, ds: PairDataset, doc_ids: list[str], qids: list[str]) -> float:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return evaluate_run({q: [doc_ids[j] for j in row] for q, row in zip(qids, top)}, ds.qrels, ["recall@10"])["recall@10"]


def grid_configs(lexical: str = "tfidf") -> dict[str, FusionConfig]:
    """The fusions :func:`tune_fusion` chooses from, by label: RRF with each constant of :data:`RRF_KS` and
    the weighted sum, each with every lexical weight of :data:`LEXICAL_WEIGHTS` (the dense weight is 1)."""
    configs = [FusionConfig("rrf", k, (1.0, w), lexical) for k in RRF_KS for w in LEXICAL_WEIGHTS]
    configs += [FusionConfig("weighted", 60, (1.0, w), lexical) for w in LEXICAL_WEIGHTS]
    return {f"{c.method}{f'(k={c.k})' if c.method == 'rrf' else ''} w={c.weights[1]}": c for c in configs}


def grid_recall(dense: np.ndarray, lex: np.ndarray, ds: PairDataset, doc_ids: list[str], qids: list[str],
                lexical: str = "tfidf") -> dict[str, float]:
    """Recall@10 on ``ds`` of the dense and lexical ``(queries, documents)`` score matrices alone
    (``"dense"``, ``"lexical"``) and of every fusion of :func:`grid_configs`, by label."""
    grid = {"dense": _recall_at_10(dense, ds, doc_ids, qids), "lexical": _recall_at_10(lex, ds, doc_ids, qids)}
    for label, cfg in grid_configs(lexical).items():
        grid[label] = _recall_at_10(cfg.fuse([dense, lex]), ds, doc_ids, qids)
    return grid


def dataset_grid(dense_scorer, ds: PairDataset, lexical: str = "tfidf", qids: list[str] | None = None) -> dict[str, float]:
    """:func:`grid_recall` on ``ds`` (all its queries, or ``qids``): ``dense_scorer`` (a
    :class:`~melscribe.retrieval.scorers.DenseScorer`) and the lexical scorer ``lexical`` are fitted on its corpus."""
    qids = list(ds.queries) if qids is None else list(qids)
    doc_ids = list(ds.corpus)
    texts, queries = [ds.corpus[d] for d in doc_ids], [ds.queries[q] for q in qids]
    dense = dense_scorer.fit(texts).score(queries)
    lex = BASELINES[lexical]().fit(texts).score(queries)
    return grid_recall(dense, lex, ds, doc_ids, qids, lexical)


def tune_fusion(model_dir: str, ds: PairDataset, lexical: str = "tfidf", seed: int = 0,
                max_queries: int = 2000) -> FusionConfig:
    """Grid-search the fusion of ``model_dir`` with ``lexical`` on ``ds`` (pairs of held-out clips) for
    Recall@10; the grid's figures are kept in the result's ``tuning``. Ties go to the earlier fusion of
    :func:`grid_configs`."""
    qids = list(ds.queries)
    if len(qids) > max_queries:
        qids = random.Random(seed).sample(qids, max_queries)
    grid = dataset_grid(DenseScorer(model_dir, show_progress_bar=True), ds, lexical, qids)
    configs = grid_configs(lexical)
    best = max(configs, key=lambda label: (grid[label], -list(configs).index(label)))
    return dataclasses.replace(configs[best], tuning={"queries": len(qids), "documents": len(ds.corpus),
                                                      "recall@10": grid})
