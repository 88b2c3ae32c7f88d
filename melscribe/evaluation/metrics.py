"""Ranking metrics over top-k runs: Recall@k, MRR@k, nDCG@k, MAP@k, with binary relevance.

A run is, per query, the ranked list of retrieved document ids. Relevant documents absent from the
corpus (the paper's empty document) count in the denominators and can never be retrieved.

We compute the metrics ourselves (a few lines of numpy-free Python over top-100 lists) rather than with
ranx: ranx pulls numba and a JIT warm-up of several seconds into every test run, and its
``recall`` equals ours on this binary-relevance setting; ``tests/test_metrics.py`` checks each metric
against an example worked out by hand.
"""

from __future__ import annotations

import math
import statistics
from typing import Mapping, Sequence

#: The metrics of the table, with their cut-offs.
DEFAULT_METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "map@100")


def _parse(metric: str) -> tuple[str, int]:
    name, _, k = metric.partition("@")
    if name not in ("recall", "mrr", "ndcg", "map") or not k.isdigit() or int(k) < 1:
        raise ValueError(f"unknown metric {metric!r}; use recall@k, mrr@k, ndcg@k or map@k")
    return name, int(k)


def query_metric(metric: str, ranked: Sequence[str], relevant: Mapping[str, int]) -> float:
    """One metric for one query: ``ranked`` doc ids, best first; ``relevant`` doc id → grade (> 0)."""
    name, k = _parse(metric)
    rel = {d for d, g in relevant.items() if g > 0}
    if not rel:
        return 0.0
    top = list(ranked[:k])
    hits = [d in rel for d in top]
    if name == "recall":
        return sum(hits) / len(rel)
    if name == "mrr":
        return next((1.0 / (i + 1) for i, h in enumerate(hits) if h), 0.0)
    if name == "ndcg":
        dcg = sum(1.0 / math.log2(i + 2) for i, h in enumerate(hits) if h)
        idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
        return dcg / idcg
    found, precisions = 0, 0.0
    for i, h in enumerate(hits):
        if h:
            found += 1
            precisions += found / (i + 1)
    return precisions / len(rel)


def evaluate_run(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]],
                 metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels`` (a query missing from ``run`` scores 0)."""
    if not qrels:
        raise ValueError("no queries to evaluate")
    return {m: sum(query_metric(m, run.get(q, ()), rel) for q, rel in qrels.items()) / len(qrels)
            for m in metrics}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean": m, "std": s}}`` over a list of per-seed metric dicts."""
    out = {}
    for metric in per_seed[0]:
        m, s = mean_std([r[metric] for r in per_seed])
        out[metric] = {"mean": m, "std": s}
    return out
