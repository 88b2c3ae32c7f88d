"""ScaledSimilarity: the similarity of MarginMSE's student margins (stages ``distil``, recipe ``joint``)."""

from __future__ import annotations

import torch


class ScaledSimilarity:
    """``scale × sim(a, b)`` for paired embeddings, ``sim`` being cosine or dot product.

    Cosine similarities live in [-1, 1] while cross-encoder margins span several units: the scale puts
    student and teacher margins on one footing (GPL's own loss silently used the dot product instead)."""

    def __init__(self, similarity: str = "cos_sim", scale: float = 1.0):
        if similarity not in ("cos_sim", "dot"):
            raise ValueError(f"unknown similarity {similarity!r}; use 'cos_sim' or 'dot'")
        self.similarity, self.scale = similarity, scale

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.similarity == "cos_sim":
            a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
        return self.scale * (a * b).sum(dim=-1)
