"""What the bi-encoder trainings of stages ``mnrl``, ``distil`` and ``fast`` share: the batch sampler that keeps
false negatives out of a batch, and one call of sentence-transformers' ``SentenceTransformerTrainer`` that
checkpoints, resumes a killed run and publishes the model atomically.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import torch
from transformers import TrainerCallback

from melscribe.encoding.models import load_sentence_transformer
from melscribe.fileio import pause_point
from melscribe.train.checkpoints import last_checkpoint, publish_model
from melscribe.train.schedule import Schedule
from melscribe.train.settings import TrainerSettings


class DistinctTrackBatchSampler:
    """Batches in which no two rows share a group key (the source track, or a descriptor-set text: in-batch
    negatives must not be false negatives), built from rows of similar length (less padding, about 2×
    faster on CPU), in a seeded order that changes with the epoch."""

    def __init__(self, keys: Sequence[frozenset], lengths: Sequence[int], batch_size: int, drop_last: bool = False,
                 seed: int = 0, chunk_batches: int = 50):
        self.keys, self.lengths = list(keys), list(lengths)
        self.batch_size, self.drop_last, self.seed, self.chunk = batch_size, drop_last, seed, chunk_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at each epoch: reshuffles."""
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.keys), generator=g).tolist()
        batches = []
        mega = self.batch_size * self.chunk
        for start in range(0, len(order), mega):
            pending = sorted(order[start:start + mega], key=lambda i: self.lengths[i])
            while pending:
                batch, used, rest = [], set(), []
                for i in pending:
                    if len(batch) < self.batch_size and not (self.keys[i] & used):
                        batch.append(i)
                        used |= self.keys[i]
                    else:
                        rest.append(i)
                pending = rest
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]

    def __iter__(self):
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())


def _distinct_track_sampler(dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0, *,
                            keys, lengths) -> DistinctTrackBatchSampler:
    return DistinctTrackBatchSampler(keys, lengths, batch_size, drop_last, seed=seed)


class _PausePoints(TrainerCallback):
    """Offers the fault tests :func:`~melscribe.fileio.pause_point` ``checkpoint-saved`` after each checkpoint."""

    def on_save(self, args, state, control, **kwargs):
        pause_point("checkpoint-saved")


def train_sentence_transformer(columns: dict[str, list], loss_factory, out_dir: Path, *, base: str | None,
                               schedule: Schedule, trainer: TrainerSettings, seed: int, keys: Sequence[frozenset],
                               callbacks: Sequence = ()) -> Path:
    """Train the sentence-transformers model ``base`` on ``columns`` with ``loss_factory(model)`` through
    ``SentenceTransformerTrainer`` as ``schedule`` and ``trainer`` say: batches from
    :class:`DistinctTrackBatchSampler` over ``keys``, checkpoints every ``trainer.save_steps`` under
    ``out_dir/checkpoints`` (a killed run resumes from the last), the model published atomically to
    ``out_dir/model``, which is returned."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import set_seed

    set_seed(seed)
    model = load_sentence_transformer(base, max_seq_length=trainer.max_seq_length)
    train = Dataset.from_dict(columns)
    sampler = functools.partial(_distinct_track_sampler, keys=list(keys), lengths=[len(a) for a in columns["anchor"]])
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir / "checkpoints"), num_train_epochs=schedule.epochs, max_steps=schedule.max_steps,
        per_device_train_batch_size=schedule.batch_size, learning_rate=schedule.lr,
        warmup_steps=float(trainer.warmup_ratio),  # a float below 1 is a ratio (transformers 5 deprecates warmup_ratio)
        seed=seed, data_seed=seed, save_strategy="steps", save_steps=trainer.save_steps, save_total_limit=2,
        logging_steps=50, report_to="none", use_cpu=not torch.cuda.is_available(), batch_sampler=sampler,
        bf16=trainer.bf16)
    model_trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss_factory(model),
                                               callbacks=[*callbacks, _PausePoints()])
    model_trainer.train(resume_from_checkpoint=last_checkpoint(out_dir / "checkpoints"))
    return publish_model(model, out_dir / "model")
