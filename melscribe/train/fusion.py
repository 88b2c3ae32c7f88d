"""Beyond the paper: fuse the bi-encoder with a lexical scorer. The fusion (reciprocal-rank with constant
``k``, or a weighted sum of z-normalised scores) and its weight are chosen on training data only: a
test-like pair set (one descriptor set per sentence) built from MusicCaps **train** clips."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from ..evaluate import evaluate_run
from ..pairs import PairDataset
from ..scorers import BASELINES, DenseScorer, FusedScorer, Scorer

FUSION_FILE = "fusion.json"
RRF_KS = (10, 30, 60)
LEXICAL_WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5)


def _recall_at_10(scores, ds: PairDataset, doc_ids, qids) -> float:
    import numpy as np

    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return evaluate_run({q: [doc_ids[j] for j in row] for q, row in zip(qids, top)}, ds.qrels, ["recall@10"])["recall@10"]


def tune_fusion(model_dir: str, ds: PairDataset, lexical: str = "tfidf", seed: int = 0,
                max_queries: int = 2000) -> dict:
    """Grid-search the fusion of ``model_dir`` with ``lexical`` on ``ds`` (training data) for Recall@10.

    Returns ``{"lexical", "method", "k", "weights", "train_recall@10": {...}}``."""
    import random

    from ..scorers import reciprocal_rank_fusion, weighted_fusion

    rng = random.Random(seed)
    qids = list(ds.queries)
    if len(qids) > max_queries:
        qids = rng.sample(qids, max_queries)
    sub = PairDataset({q: ds.queries[q] for q in qids}, {}, {q: ds.qrels[q] for q in qids})
    docs = {d for q in qids for d in ds.qrels[q] if d in ds.corpus}
    docs |= set(rng.sample(list(ds.corpus), min(len(ds.corpus), 2 * len(docs))))
    sub.corpus = {d: ds.corpus[d] for d in ds.corpus if d in docs}
    doc_ids = list(sub.corpus)
    texts, queries = [sub.corpus[d] for d in doc_ids], [sub.queries[q] for q in qids]
    dense = DenseScorer(model_dir, show_progress_bar=True).fit(texts).score(queries)
    lex = BASELINES[lexical]().fit(texts).score(queries)
    results = {"dense": _recall_at_10(dense, sub, doc_ids, qids), "lexical": _recall_at_10(lex, sub, doc_ids, qids)}
    best = None
    for method, k, w in itertools.chain(
            (("rrf", k, w) for k in RRF_KS for w in LEXICAL_WEIGHTS),
            (("weighted", None, w) for w in LEXICAL_WEIGHTS)):
        fused = reciprocal_rank_fusion([dense, lex], k=k, weights=[1.0, w]) if method == "rrf" \
            else weighted_fusion([dense, lex], [1.0, w])
        r = _recall_at_10(fused, sub, doc_ids, qids)
        results[f"{method}{'' if k is None else f'(k={k})'} w={w}"] = r
        if best is None or r > best[0] + 1e-12:
            best = (r, method, k, w)
    _, method, k, w = best
    return {"lexical": lexical, "method": method, "k": k or 60, "weights": [1.0, w],
            "train_queries": len(qids), "train_documents": len(doc_ids), "train_recall@10": results}


def fused_scorer(model_dir: str | os.PathLike, name: str | None = None, backend: str = "torch") -> Scorer:
    """The fused scorer a trained model folder describes in its ``fusion.json``, its dense side encoded with
    ``backend`` (the weights were tuned for the bi-encoder, and are kept for its students)."""
    model_dir = Path(model_dir)
    path = model_dir / FUSION_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train with `melscribe train` or run the fusion stage")
    cfg = json.loads(path.read_text())
    return FusedScorer([DenseScorer(str(model_dir), backend=backend), BASELINES[cfg["lexical"]]()], method=cfg["method"],
                       weights=cfg["weights"], k=cfg["k"], name=name or f"fused:{model_dir}")
