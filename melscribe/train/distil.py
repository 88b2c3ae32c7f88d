"""GPL step 5, stage ``distil``: the bi-encoder learns the teacher's margins. :func:`distil_margin_mse` is the GPL
student (MarginMSE: ``scale × (sim(q, pos) − sim(q, neg))`` regresses ``CE(q, pos) − CE(q, neg)``);
:func:`train_joint` (recipe ``joint``) sums MultipleNegativesRankingLoss and MarginMSE on the same batches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from melscribe.train.losses import MNRLPlusMarginMSE, ScaledSimilarity
from melscribe.train.schedule import Schedule
from melscribe.train.settings import DistilSettings, TrainerSettings
from melscribe.train.trainer import train_sentence_transformer


def distil_margin_mse(triplets: Sequence[tuple[str, str, str]], margins: Sequence[float], tracks: Sequence[str],
                      out_dir: str | os.PathLike, settings: DistilSettings = DistilSettings(),
                      trainer: TrainerSettings = TrainerSettings(), *, base: str | None = None, seed: int = 0,
                      callbacks: Sequence = ()) -> Path:
    """MarginMSE distillation of ``base`` (default ``trainer.student_base``): the student's
    ``settings.margin_scale × (sim(q, pos) − sim(q, neg))`` regresses the teacher margin. Returns the folder of
    the trained model (``out_dir/model``)."""
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss

    columns = _triplet_columns(triplets, margins, tracks)
    keys = [frozenset((f"t:{tr}",)) for tr in tracks]
    similarity = ScaledSimilarity(settings.similarity, settings.margin_scale)
    return train_sentence_transformer(columns, lambda m: MarginMSELoss(m, similarity_fct=similarity), Path(out_dir),
                                      base=base or trainer.student_base, schedule=settings.schedule, trainer=trainer,
                                      seed=seed, keys=keys, callbacks=callbacks)


def train_joint(triplets: Sequence[tuple[str, str, str]], margins: Sequence[float], tracks: Sequence[str],
                out_dir: str | os.PathLike, settings: DistilSettings = DistilSettings(),
                trainer: TrainerSettings = TrainerSettings(), *, schedule: Schedule | None = None,
                base: str | None = None, seed: int = 0, callbacks: Sequence = ()) -> Path:
    """MNRL and ``settings.margin_weight`` × MarginMSE summed on the same batches (:class:`MNRLPlusMarginMSE`):
    contrastive training on the (request, positive, mined negative) triplets, the teacher's margins shaping the
    scores, as ``schedule`` says (default ``settings.schedule``; the pipeline's is
    :meth:`~melscribe.train.recipes.Recipe.distil_schedule`). No batch holds two rows of one track or one
    descriptor-set text. Returns ``out_dir/model``."""
    columns = _triplet_columns(triplets, margins, tracks)
    keys = [frozenset((f"t:{tr}", f"d:{t[1]}", f"d:{t[2]}")) for t, tr in zip(triplets, tracks)]
    s = settings
    return train_sentence_transformer(columns, lambda m: MNRLPlusMarginMSE(m, s.similarity, s.margin_scale, s.margin_weight),
                                      Path(out_dir), base=base or trainer.student_base,
                                      schedule=schedule or settings.schedule, trainer=trainer, seed=seed, keys=keys,
                                      callbacks=callbacks)


def _triplet_columns(triplets, margins, tracks) -> dict[str, list]:
    if len(triplets) != len(margins) or len(triplets) != len(tracks):
        raise ValueError(f"{len(triplets)} triplets, {len(margins)} margins and {len(tracks)} tracks: lengths differ")
    columns = {"anchor": [t[0] for t in triplets], "positive": [t[1] for t in triplets],
               "negative": [t[2] for t in triplets], "label": [float(m) for m in margins]}
    return columns
