"""GPL step 5, stage ``distil``: the bi-encoder learns the teacher's margins. :func:`distil_margin_mse` is the GPL
student (MarginMSE: ``scale × (sim(q, pos) − sim(q, neg))`` regresses ``CE(q, pos) − CE(q, neg)``);
:func:`train_joint` (recipe ``joint``) sums MultipleNegativesRankingLoss and MarginMSE on the same batches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from melscribe.train.losses import MNRLPlusMarginMSE, ScaledSimilarity
from melscribe.train.trainer import train_sentence_transformer


def distil_margin_mse(triplets: Sequence[tuple[str, str, str]], margins: Sequence[float], tracks: Sequence[str],
                      out_dir: str | os.PathLike, base: str | None = None, similarity: str = "cos_sim",
                      margin_scale: float = 1.0, max_seq_length: int = 96, batch_size: int = 32,
                      epochs: float = 1.0, max_steps: int = -1, lr: float = 2e-5, warmup_ratio: float = 0.1,
                      seed: int = 0, save_steps: int = 100, callbacks: Sequence = (), bf16: bool = False) -> Path:
    """MarginMSE distillation: the student's ``sim(q, pos) − sim(q, neg)`` regresses the teacher margin.
    Returns the folder of the trained model (``out_dir/model``)."""
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss

    columns = _triplet_columns(triplets, margins, tracks)
    keys = [frozenset((f"t:{tr}",)) for tr in tracks]
    return train_sentence_transformer(columns, lambda m: MarginMSELoss(m, similarity_fct=ScaledSimilarity(similarity, margin_scale)),
                  Path(out_dir), base, max_seq_length, batch_size, epochs, max_steps, lr, warmup_ratio, seed,
                  save_steps, keys, callbacks, bf16)


def train_joint(triplets: Sequence[tuple[str, str, str]], margins: Sequence[float], tracks: Sequence[str],
                out_dir: str | os.PathLike, base: str | None = None, similarity: str = "cos_sim",
                margin_scale: float = 1.0, margin_weight: float = 1.0, max_seq_length: int = 96,
                batch_size: int = 64, epochs: float = 1.0, max_steps: int = -1, lr: float = 5e-5,
                warmup_ratio: float = 0.1, seed: int = 0, save_steps: int = 100, callbacks: Sequence = (),
                bf16: bool = False) -> Path:
    """MNRL and MarginMSE summed on the same batches (:class:`MNRLPlusMarginMSE`): contrastive training on the
    (request, positive, mined negative) triplets, the teacher's margins shaping the scores. No batch holds two
    rows of one track or one descriptor-set text. Returns ``out_dir/model``."""
    columns = _triplet_columns(triplets, margins, tracks)
    keys = [frozenset((f"t:{tr}", f"d:{t[1]}", f"d:{t[2]}")) for t, tr in zip(triplets, tracks)]
    return train_sentence_transformer(columns, lambda m: MNRLPlusMarginMSE(m, similarity, margin_scale, margin_weight), Path(out_dir),
                  base, max_seq_length, batch_size, epochs, max_steps, lr, warmup_ratio, seed, save_steps, keys,
                  callbacks, bf16)


def _triplet_columns(triplets, margins, tracks) -> dict[str, list]:
    if len(triplets) != len(margins) or len(triplets) != len(tracks):
        raise ValueError(f"{len(triplets)} triplets, {len(margins)} margins and {len(tracks)} tracks: lengths differ")
    columns = {"anchor": [t[0] for t in triplets], "positive": [t[1] for t in triplets],
               "negative": [t[2] for t in triplets], "label": [float(m) for m in margins]}
    return columns
