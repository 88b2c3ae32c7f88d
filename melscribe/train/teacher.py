"""GPL step 3: the music cross-encoder (teacher) and its margin pseudo-labels.

The teacher scores a (request, descriptor set) pair with one logit. It is fine-tuned on MusicCaps train
pairs: positives from the pairs, negatives from the miners and at random, binary cross-entropy, through
sentence-transformers' ``CrossEncoderTrainer``. The paper starts from ``cross-encoder/ms-marco-MiniLM-L-6-v2``;
offline we start from the packaged all-MiniLM-L6-v2 weights with a fresh one-logit head.

Margins are computed from **raw logits**: a one-logit ``CrossEncoder`` applies a sigmoid by default,
which squashes every margin toward 0, so :func:`margin_labels` asks for the identity activation.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import resolve_model
from ..pairs import PairDataset
from .checkpoints import last_checkpoint, publish_model


def teacher_examples(ds: PairDataset, negatives: dict[str, list[str]], negatives_per_positive: int = 2,
                     max_pairs: int | None = None, seed: int = 0) -> list[tuple[str, str, float]]:
    """(request, descriptor set, label) rows: each positive pair with label 1, and for each
    ``negatives_per_positive`` negatives with label 0, alternating a mined hard negative and a random
    descriptor set (never a positive of the request). ``max_pairs`` caps the rows (a random subset)."""
    rng = random.Random(seed)
    doc_ids = list(ds.corpus)
    rows: list[tuple[str, str, float]] = []
    for qid, did, _track in ds.pairs():
        query, positives, hard = ds.queries[qid], ds.qrels[qid], negatives.get(qid, [])
        rows.append((query, ds.corpus[did], 1.0))
        for j in range(negatives_per_positive):
            if j % 2 == 0 and hard:
                neg = rng.choice(hard)
            else:
                neg = rng.choice(doc_ids)
                while neg in positives:
                    neg = rng.choice(doc_ids)
            rows.append((query, ds.corpus[neg], 0.0))
    rng.shuffle(rows)
    return rows[:max_pairs] if max_pairs else rows


def train_teacher(examples: Sequence[tuple[str, str, float]], out_dir: str | os.PathLike, base: str | None = None,
                  max_length: int = 96, epochs: float = 1.0, batch_size: int = 32, lr: float = 5e-5,
                  seed: int = 0, save_steps: int = 200, callbacks: Sequence = (), bf16: bool = False) -> Path:
    """Fine-tune a one-logit cross-encoder on ``examples``; checkpoints under ``out_dir/checkpoints``
    (a killed run resumes from the last one); the final model is written to ``out_dir/model``."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (CrossEncoder, CrossEncoderTrainer,
                                                     CrossEncoderTrainingArguments)
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    out_dir = Path(out_dir)
    model = CrossEncoder(resolve_model(base), num_labels=1, max_length=max_length)
    train = Dataset.from_dict({"query": [e[0] for e in examples], "document": [e[1] for e in examples],
                               "label": [float(e[2]) for e in examples]})
    args = CrossEncoderTrainingArguments(
        output_dir=str(out_dir / "checkpoints"), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        learning_rate=lr, warmup_ratio=0.1, seed=seed, data_seed=seed, save_strategy="steps", save_steps=save_steps,
        save_total_limit=2, logging_steps=50, report_to="none", use_cpu=not _cuda(), bf16=bf16)
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=train, loss=BinaryCrossEntropyLoss(model),
                                  callbacks=list(callbacks))
    trainer.train(resume_from_checkpoint=last_checkpoint(out_dir / "checkpoints"))
    return publish_model(model, out_dir / "model")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def margin_labels(cross_encoder, triplets: Sequence[tuple[str, str, str]], batch_size: int = 64,
                  show_progress_bar: bool = True) -> np.ndarray:
    """``CE(q, pos) − CE(q, neg)`` for each (query, positive text, negative text), from raw logits.

    Each distinct (query, document) pair is scored once."""
    import torch

    unique = list(dict.fromkeys(p for q, pos, neg in triplets for p in ((q, pos), (q, neg))))
    order = sorted(range(len(unique)), key=lambda i: len(unique[i][0]) + len(unique[i][1]))
    logits = cross_encoder.predict([unique[i] for i in order], batch_size=batch_size,
                                   activation_fn=torch.nn.Identity(), show_progress_bar=show_progress_bar)
    score = {unique[i]: float(s) for i, s in zip(order, np.asarray(logits).reshape(-1))}
    return np.array([score[q, pos] - score[q, neg] for q, pos, neg in triplets], dtype=np.float32)
