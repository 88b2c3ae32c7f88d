"""Fusion of a dense ranking with a lexical one, shared by evaluation, training and serving.

One method per module: :mod:`.rrf` (reciprocal rank) and :mod:`.weighted` (z-normalised scores). A
:class:`FusionConfig` says which method, its constant and weights, and which lexical scorer; training
chooses one on held-out clips (:func:`melscribe.train.fusion.tune_fusion`) and stores it as
:data:`FUSION_FILE` beside the bi-encoder, where :func:`load_fusion` finds it for serving and evaluation.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from melscribe.errors import InvalidRequestError
from melscribe.retrieval.fusion.rrf import rank_matrix, reciprocal_rank_fusion
from melscribe.retrieval.fusion.weighted import weighted_fusion

__all__ = ["FUSION_FILE", "METHODS", "FusionConfig", "fuse", "load_fusion", "rank_matrix", "reciprocal_rank_fusion",
           "weighted_fusion"]

FUSION_FILE = "fusion.json"
METHODS = ("rrf", "weighted")


@dataclass(frozen=True)
class FusionConfig:
    """How to fuse: ``method`` (``"rrf"`` or ``"weighted"``), the RRF constant ``k``, the ``weights`` of the
    dense and the lexical ranking, and the ``lexical`` scorer's name (one of :data:`melscribe.retrieval.scorers.BASELINES`:
    ``tfidf``, ``tfidf-bigrams`` or ``bm25``). The default is untuned equal-weight RRF over TF-IDF. ``tuning``
    records how a tuned configuration was chosen."""

    method: str = "rrf"
    k: int = 60
    weights: tuple[float, float] = (1.0, 1.0)
    lexical: str = "tfidf"
    tuning: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.method not in METHODS:
            raise InvalidRequestError(f"unknown fusion method {self.method!r}; use one of {', '.join(METHODS)}")
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))

    def fuse(self, score_matrices: Sequence[np.ndarray]) -> np.ndarray:
        """Fuse the dense and lexical ``(queries, documents)`` score matrices, in that order."""
        return fuse(score_matrices, self.method, self.weights, self.k)

    def to_dict(self) -> dict:
        """Plain values, as written to :data:`FUSION_FILE`."""
        d = asdict(self)
        d["weights"] = list(self.weights)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FusionConfig":
        """The configuration a :data:`FUSION_FILE` holds (unknown keys are kept under ``tuning``)."""
        known = {"method", "k", "weights", "lexical", "tuning"}
        tuning = dict(d.get("tuning", {}), **{k: v for k, v in d.items() if k not in known})
        return cls(method=d["method"], k=int(d.get("k") or 60), weights=tuple(d["weights"]),
                   lexical=d.get("lexical", "tfidf"), tuning=tuning)


def fuse(score_matrices: Sequence[np.ndarray], method: str = "rrf", weights: Sequence[float] | None = None,
         k: int = 60) -> np.ndarray:
    """Fuse score matrices with ``method`` (see :data:`METHODS`)."""
    weights = list(weights) if weights is not None else [1.0] * len(score_matrices)
    if method == "rrf":
        return reciprocal_rank_fusion(score_matrices, k=k, weights=weights)
    if method == "weighted":
        return weighted_fusion(score_matrices, weights)
    raise InvalidRequestError(f"unknown fusion method {method!r}; use one of {', '.join(METHODS)}")


def load_fusion(model_dir: str | os.PathLike) -> FusionConfig | None:
    """The tuned fusion stored beside a model folder, or ``None`` if it has none."""
    path = Path(model_dir).expanduser() / FUSION_FILE
    if not path.is_file():
        return None
    try:
        return FusionConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidRequestError(f"{path} is not a fusion configuration ({type(e).__name__}: {e})") from None
