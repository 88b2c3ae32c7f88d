"""Scoring requests against descriptor sets: the scorers (:mod:`.scorers`: lexical, dense, re-ranking,
fused) and the fusion of their rankings (:mod:`.fusion`). Shared by serving, training and evaluation."""
