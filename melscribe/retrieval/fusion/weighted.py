"""Weighted sum of per-query z-normalised scores."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def weighted_fusion(score_matrices: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``Σ w_i · z_i`` where ``z_i`` is scorer ``i``'s ``(queries, documents)`` matrix z-normalised per query."""
    out = 0
    for w, s in zip(weights, score_matrices):
        mu, sd = s.mean(axis=1, keepdims=True), s.std(axis=1, keepdims=True) + 1e-9
        out = out + w * (s - mu) / sd
    return np.asarray(out, dtype=np.float32)
