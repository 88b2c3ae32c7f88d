"""MNRLPlusMarginMSE: the joint objective of recipe ``joint`` (MNRL and MarginMSE on the same batches)."""

from __future__ import annotations

import torch

from melscribe.train.losses.scaled_similarity import ScaledSimilarity


class MNRLPlusMarginMSE(torch.nn.Module):
    """The joint objective: MultipleNegativesRankingLoss (the mined negative as a hard negative, the batch's
    other positives as in-batch negatives) plus ``weight`` × MarginMSELoss on the teacher's margin, summed on
    the same (request, positive, negative) batch, every text embedded once."""

    def __init__(self, model, similarity: str = "cos_sim", margin_scale: float = 1.0, weight: float = 1.0):
        from sentence_transformers.sentence_transformer.losses import MarginMSELoss, MultipleNegativesRankingLoss

        super().__init__()
        self.model, self.weight = model, weight
        self.mnrl = MultipleNegativesRankingLoss(model)
        self.margin_mse = MarginMSELoss(model, similarity_fct=ScaledSimilarity(similarity, margin_scale))

    def forward(self, sentence_features, labels: torch.Tensor) -> torch.Tensor:
        from sentence_transformers.base.losses.merged_forward import embed_columns

        embeddings = embed_columns(self.model, sentence_features)
        return (self.mnrl.compute_loss_from_embeddings(embeddings, labels)
                + self.weight * self.margin_mse.compute_loss_from_embeddings(embeddings, labels))
