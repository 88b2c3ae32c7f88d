"""DenoisedMNRLLoss: MultipleNegativesRankingLoss without the in-batch false negatives (stage ``mnrl`` with
``mnrl.denoise``)."""

from __future__ import annotations

from typing import Sequence

import torch

from melscribe.train.denoise import verbatim_false_negative


class _MaskedCosine:
    """Cosine similarity with the entries of ``mask`` (set per batch) at −∞: out of the softmax."""

    def __init__(self):
        self.mask: torch.Tensor | None = None

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from sentence_transformers.util import cos_sim

        scores = cos_sim(a, b)
        return scores if self.mask is None else scores.masked_fill(self.mask.to(scores.device), float("-inf"))


class DenoisedMNRLLoss(torch.nn.Module):
    """sentence-transformers' ``MultipleNegativesRankingLoss`` (request → documents, scale 20, cosine) in which
    each request's softmax leaves out every other row's document that
    :func:`~melscribe.train.denoise.verbatim_false_negative` calls a false negative of it (its own positive
    always stays). ``requests[i]`` and ``documents[c][i]`` are row ``i``'s request and its document of column
    ``c`` (the positive, then the hard negatives); each batch's labels are its row indices."""

    def __init__(self, model, requests: Sequence[str], documents: Sequence[Sequence[str]]):
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        super().__init__()
        self.model, self.requests, self.documents = model, list(requests), [list(c) for c in documents]
        self.similarity = _MaskedCosine()
        self.mnrl = MultipleNegativesRankingLoss(model, similarity_fct=self.similarity)
        self.masked = 0  # false negatives left out so far (a running count)

    def false_negatives(self, rows: Sequence[int]) -> torch.Tensor:
        """``(len(rows), columns × len(rows))`` booleans: True where column ``c``'s document of row ``j`` is a
        false negative of row ``i``'s request (the layout of MNRL's request → document scores)."""
        mask = torch.zeros(len(rows), len(self.documents) * len(rows), dtype=torch.bool)
        for i, row in enumerate(rows):
            request = self.requests[row]
            for c, column in enumerate(self.documents):
                for j, other in enumerate(rows):
                    if (c, j) != (0, i) and verbatim_false_negative(request, column[other]):
                        mask[i, c * len(rows) + j] = True
        return mask

    def forward(self, sentence_features, labels: torch.Tensor) -> torch.Tensor:
        mask = self.false_negatives([int(r) for r in labels.tolist()])
        self.masked += int(mask.sum())
        self.similarity.mask = mask
        try:
            return self.mnrl(sentence_features, labels)
        finally:
            self.similarity.mask = None
