"""Stage ``mnrl``: plain in-batch-negatives training of the bi-encoder (MultipleNegativesRankingLoss) on the
(request, descriptor set) pairs: the offline default recipe, the GPL teacher's starting point and miner.

With ``mnrl.denoise`` (:class:`~melscribe.train.settings.MNRLSettings`), :class:`DenoisedMNRLLoss` leaves out of each request's
softmax the other rows' descriptor sets that are false negatives of it
(:func:`melscribe.train.denoise.verbatim_false_negative`): in the stage's batches of 64 MusicCaps pairs, 18 % of
requests meet such a set (``experiments/results/false_negatives.json``), which plain MNRL pushes away from them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from melscribe.train.losses import DenoisedMNRLLoss
from melscribe.train.settings import MNRLSettings, TrainerSettings
from melscribe.train.trainer import train_sentence_transformer


def train_mnrl(pairs: Sequence[tuple[str, str]], tracks: Sequence[str], out_dir: str | os.PathLike,
               settings: MNRLSettings = MNRLSettings(), trainer: TrainerSettings = TrainerSettings(), *,
               base: str | None = None, negatives: Sequence[str] | None = None, seed: int = 0,
               callbacks: Sequence = ()) -> Path:
    """Plain in-batch-negatives training (MultipleNegativesRankingLoss) of ``base`` (default
    ``trainer.student_base``) on (request, descriptor set) pairs, optionally with one hard negative per pair,
    and with ``settings.denoise`` without the false negatives of :class:`DenoisedMNRLLoss`. No batch holds two
    pairs of one track or one text."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    columns = {"anchor": [p[0] for p in pairs], "positive": [p[1] for p in pairs]}
    if negatives is not None:
        columns["negative"] = list(negatives)
    keys = batch_keys(pairs, tracks, negatives)
    loss = MultipleNegativesRankingLoss
    if settings.denoise:
        documents = [columns["positive"]] + ([columns["negative"]] if negatives is not None else [])
        columns["label"] = [float(i) for i in range(len(pairs))]  # the row index: the loss looks its texts up
        loss = lambda model: DenoisedMNRLLoss(model, columns["anchor"], documents)  # noqa: E731
    return train_sentence_transformer(columns, loss, Path(out_dir), base=base or trainer.student_base,
                                      schedule=settings.schedule, trainer=trainer, seed=seed, keys=keys,
                                      callbacks=callbacks)


def batch_keys(pairs: Sequence[tuple[str, str]], tracks: Sequence[str],
               negatives: Sequence[str] | None = None) -> list[frozenset]:
    """The group keys of stage ``mnrl``'s batch sampler, one per pair: its track and its documents' texts (no batch
    holds two rows that share one)."""
    return [frozenset((f"t:{tr}", f"d:{p[1]}") + ((f"d:{negatives[i]}",) if negatives is not None else ()))
            for i, (p, tr) in enumerate(zip(pairs, tracks))]
