"""GPL step 4: train the bi-encoder. ``distil_margin_mse`` is the GPL student (MarginMSE on the teacher's
margins); ``train_mnrl`` is the plain in-batch-negatives recipe (MultipleNegativesRankingLoss);
``distil_mse`` regresses a teacher's embeddings (MSELoss, for the fast students of :mod:`.static`). All go
through ``SentenceTransformerTrainer``, checkpoint every ``save_steps``, resume from the last checkpoint
of a killed run, and publish a plain sentence-transformers folder atomically.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import torch

from ..models import load_sentence_transformer
from .checkpoints import last_checkpoint, publish_model


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


def _train(columns: dict[str, list], loss_factory, out_dir: Path, base: str | None, max_seq_length: int,
           batch_size: int, epochs: float, max_steps: int, lr: float, warmup_ratio: float, seed: int,
           save_steps: int, keys: Sequence[frozenset], callbacks: Sequence, bf16: bool) -> Path:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import set_seed

    set_seed(seed)
    model = load_sentence_transformer(base, max_seq_length=max_seq_length)
    train = Dataset.from_dict(columns)
    sampler = functools.partial(_distinct_track_sampler, keys=list(keys), lengths=[len(a) for a in columns["anchor"]])
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir / "checkpoints"), num_train_epochs=epochs, max_steps=max_steps,
        per_device_train_batch_size=batch_size, learning_rate=lr, warmup_ratio=warmup_ratio, seed=seed,
        data_seed=seed, save_strategy="steps", save_steps=save_steps, save_total_limit=2, logging_steps=50,
        report_to="none", use_cpu=not torch.cuda.is_available(), batch_sampler=sampler, bf16=bf16)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss_factory(model),
                                         callbacks=list(callbacks))
    trainer.train(resume_from_checkpoint=last_checkpoint(out_dir / "checkpoints"))
    return publish_model(model, out_dir / "model")


def distil_margin_mse(triplets: Sequence[tuple[str, str, str]], margins: Sequence[float], tracks: Sequence[str],
                      out_dir: str | os.PathLike, base: str | None = None, similarity: str = "cos_sim",
                      margin_scale: float = 1.0, max_seq_length: int = 96, batch_size: int = 32,
                      epochs: float = 1.0, max_steps: int = -1, lr: float = 2e-5, warmup_ratio: float = 0.1,
                      seed: int = 0, save_steps: int = 100, callbacks: Sequence = (), bf16: bool = False) -> Path:
    """MarginMSE distillation: the student's ``sim(q, pos) − sim(q, neg)`` regresses the teacher margin.
    Returns the folder of the trained model (``out_dir/model``)."""
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss

    columns, keys = _triplet_columns(triplets, margins, tracks)
    return _train(columns, lambda m: MarginMSELoss(m, similarity_fct=ScaledSimilarity(similarity, margin_scale)),
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
    columns, _ = _triplet_columns(triplets, margins, tracks)
    keys = [frozenset((f"t:{tr}", f"d:{t[1]}", f"d:{t[2]}")) for t, tr in zip(triplets, tracks)]
    return _train(columns, lambda m: MNRLPlusMarginMSE(m, similarity, margin_scale, margin_weight), Path(out_dir),
                  base, max_seq_length, batch_size, epochs, max_steps, lr, warmup_ratio, seed, save_steps, keys,
                  callbacks, bf16)


def _triplet_columns(triplets, margins, tracks) -> tuple[dict[str, list], list[frozenset]]:
    if len(triplets) != len(margins) or len(triplets) != len(tracks):
        raise ValueError(f"{len(triplets)} triplets, {len(margins)} margins and {len(tracks)} tracks: lengths differ")
    columns = {"anchor": [t[0] for t in triplets], "positive": [t[1] for t in triplets],
               "negative": [t[2] for t in triplets], "label": [float(m) for m in margins]}
    return columns, [frozenset((f"t:{tr}",)) for tr in tracks]


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


def train_mnrl(pairs: Sequence[tuple[str, str]], tracks: Sequence[str], out_dir: str | os.PathLike,
               base: str | None = None, negatives: Sequence[str] | None = None, max_seq_length: int = 96,
               batch_size: int = 64, epochs: float = 1.0, max_steps: int = -1, lr: float = 5e-5,
               warmup_ratio: float = 0.1, seed: int = 0, save_steps: int = 100, callbacks: Sequence = (),
               bf16: bool = False) -> Path:
    """Plain in-batch-negatives training (MultipleNegativesRankingLoss) on (request, descriptor set) pairs,
    optionally with one hard negative per pair. No batch holds two pairs of one track or one text."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    columns = {"anchor": [p[0] for p in pairs], "positive": [p[1] for p in pairs]}
    if negatives is not None:
        columns["negative"] = list(negatives)
    keys = [frozenset((f"t:{tr}", f"d:{p[1]}") + ((f"d:{negatives[i]}",) if negatives is not None else ()))
            for i, (p, tr) in enumerate(zip(pairs, tracks))]
    return _train(columns, MultipleNegativesRankingLoss, Path(out_dir), base, max_seq_length, batch_size, epochs,
                  max_steps, lr, warmup_ratio, seed, save_steps, keys, callbacks, bf16)


def distil_mse(texts: Sequence[str], targets, out_dir: str | os.PathLike, base: str, batch_size: int = 64,
               epochs: float = 1.0, max_steps: int = -1, lr: float = 1e-4, warmup_ratio: float = 0.1, seed: int = 0,
               save_steps: int = 100, max_seq_length: int | None = None, callbacks: Sequence = (),
               bf16: bool = False) -> Path:
    """Embedding distillation (MSELoss): the model ``base`` learns to embed each of ``texts`` as the matching
    row of ``targets`` (a teacher's embeddings, same dimension). Returns ``out_dir/model``."""
    from sentence_transformers.sentence_transformer.losses import MSELoss

    if len(texts) != len(targets):
        raise ValueError(f"{len(texts)} texts and {len(targets)} target embeddings: lengths differ")
    columns = {"anchor": list(texts), "label": [list(map(float, t)) for t in targets]}
    keys = [frozenset((i,)) for i in range(len(texts))]  # no constraint on batches
    return _train(columns, MSELoss, Path(out_dir), base, max_seq_length or 0, batch_size, epochs, max_steps, lr,
                  warmup_ratio, seed, save_steps, keys, callbacks, bf16)
