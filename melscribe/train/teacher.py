"""GPL step 3, stage ``teacher``: the music cross-encoder.

The teacher scores a (request, descriptor set) pair with one logit. It is fine-tuned on the training pairs
through sentence-transformers' ``CrossEncoderTrainer``: each positive against mined hard negatives (denoised
by :mod:`.denoise`) and random descriptor sets, with a listwise loss (``mnrl``, the offline default) or
pointwise binary cross-entropy (``bce``). Offline it starts from the run's MNRL bi-encoder (its transformer,
already music-aware, with a fresh one-logit head); the paper starts from ``cross-encoder/ms-marco-MiniLM-L-6-v2``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Sequence


from melscribe.config import resolve_model
from melscribe.encoding.models import cuda_available
from melscribe.pairs import PairDataset
from melscribe.train.checkpoints import last_checkpoint, publish_model
from melscribe.train.settings import TeacherSettings, TrainerSettings


TEACHER_LOSSES = ("bce", "mnrl")


def teacher_examples(ds: PairDataset, negatives: dict[str, list[str]], negatives_per_positive: int = 2,
                     max_rows: int | None = None, seed: int = 0) -> list[tuple[str, str, list[str]]]:
    """(request, positive descriptor set, negatives) rows: each positive pair of a request that has mined
    negatives, with ``negatives_per_positive`` negatives alternating a mined hard negative (without repeats
    while there are unused ones) and a random descriptor set (never a positive of the request). ``max_rows``
    caps the rows (a seeded subset)."""
    rng = random.Random(seed)
    doc_ids = list(ds.corpus)
    rows: list[tuple[str, str, list[str]]] = []
    for qid, did, _track in ds.pairs():
        hard = list(negatives.get(qid, []))
        if not hard:
            continue
        positives = ds.qrels[qid]
        rng.shuffle(hard)
        negs = []
        for j in range(negatives_per_positive):
            if j % 2 == 0 and hard:
                negs.append(hard.pop())
                continue
            neg = rng.choice(doc_ids)
            while neg in positives:
                neg = rng.choice(doc_ids)
            negs.append(neg)
        rows.append((ds.queries[qid], ds.corpus[did], [ds.corpus[n] for n in negs]))
    rng.shuffle(rows)
    return rows[:max_rows] if max_rows else rows


def train_teacher(examples: Sequence[tuple[str, str, Sequence[str]]], out_dir: str | os.PathLike,
                  settings: TeacherSettings = TeacherSettings(), trainer: TrainerSettings = TrainerSettings(), *,
                  base: str | None = None, seed: int = 0, callbacks: Sequence = ()) -> Path:
    """Fine-tune a one-logit cross-encoder on (request, positive, negatives) ``examples``, starting from
    ``base`` (default ``settings.base``: a cross-encoder, or a bi-encoder's transformer with a fresh head), with
    ``settings``' schedule and ``max_length``, and ``trainer``'s ``save_steps`` and ``bf16``.
    ``settings.loss``:

    * ``"mnrl"``: listwise, sentence-transformers' cross-encoder ``MultipleNegativesRankingLoss``: the positive
      must win a softmax over its negatives and four in-batch negatives;
    * ``"bce"``: pointwise binary cross-entropy, the positive labelled 1 and each negative 0.

    Checkpoints under ``out_dir/checkpoints`` (a killed run resumes from the last one); the final model is
    written to ``out_dir/model``."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (CrossEncoder, CrossEncoderTrainer,
                                                     CrossEncoderTrainingArguments)
    from sentence_transformers.cross_encoder import losses

    loss = settings.loss
    if loss not in TEACHER_LOSSES:
        raise ValueError(f"unknown teacher loss {loss!r}; choose one of {', '.join(TEACHER_LOSSES)}")
    widths = {len(e[2]) for e in examples}
    if len(widths) > 1:
        raise ValueError(f"every example needs the same number of negatives; got {sorted(widths)}")
    out_dir = Path(out_dir)
    model = CrossEncoder(resolve_model(base or settings.base), num_labels=1, max_length=settings.max_length)
    if loss == "bce":
        flat = [(q, d, y) for q, pos, negs in examples for d, y in [(pos, 1.0)] + [(n, 0.0) for n in negs]]
        columns = {"query": [f[0] for f in flat], "document": [f[1] for f in flat], "label": [f[2] for f in flat]}
        objective = losses.BinaryCrossEntropyLoss(model)
    else:
        columns = {"query": [e[0] for e in examples], "positive": [e[1] for e in examples]}
        for j in range(widths.pop() if widths else 0):
            columns[f"negative_{j + 1}"] = [e[2][j] for e in examples]
        objective = losses.MultipleNegativesRankingLoss(model)
    args = CrossEncoderTrainingArguments(
        output_dir=str(out_dir / "checkpoints"), num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size, learning_rate=settings.lr, warmup_steps=0.1, seed=seed,
        data_seed=seed, save_strategy="steps", save_steps=trainer.save_steps, save_total_limit=2, logging_steps=25,
        report_to="none", use_cpu=not cuda_available(), bf16=trainer.bf16)
    model_trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=Dataset.from_dict(columns), loss=objective,
                                        callbacks=list(callbacks))
    model_trainer.train(resume_from_checkpoint=last_checkpoint(out_dir / "checkpoints"))
    return publish_model(model, out_dir / "model")
