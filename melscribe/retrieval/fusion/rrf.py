"""Reciprocal-rank fusion (Cormack et al. 2009): ``Σ w_i / (k + rank_i)``."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def rank_matrix(scores: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of every document for every query row; ties broken by document position."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, scores.shape[1] + 1)
    return ranks


def reciprocal_rank_fusion(score_matrices: Sequence[np.ndarray], k: int = 60,
                           weights: Sequence[float] | None = None) -> np.ndarray:
    """Reciprocal-rank fusion of ``(queries, documents)`` score matrices: ``Σ w_i / (k + rank_i)``."""
    weights = weights or [1.0] * len(score_matrices)
    return sum(w / (k + rank_matrix(s)) for w, s in zip(weights, score_matrices)).astype(np.float32)
