"""Stage ``fast``: a fast student of the trained bi-encoder, for the ``static`` and ``student`` backends of
:class:`~melscribe.encoding.encoder.TextEncoder`.

:func:`train_fast_student` takes plain data (texts, or request/descriptor-set pairs) and writes a
sentence-transformers folder ``out_dir/model`` with :data:`~melscribe.encoding.static_backend.STUDENT_INFO`. Kinds:

* ``static-distill``: a ``StaticEmbedding`` (one vector per token of the bi-encoder's tokenizer, averaged)
  initialised from the bi-encoder (below) and trained with ``MSELoss`` to reproduce the bi-encoder's
  embeddings of the training texts (requests, descriptor sets and single descriptors);
* ``static-mnrl``: the same initial model trained on the (request, descriptor set) pairs with
  ``MultipleNegativesRankingLoss``, large batches and a high learning rate, as in sentence-transformers'
  static-embedding training recipe;
* ``layers-N``: the bi-encoder cut to N of its transformer layers (evenly spaced, first and last kept),
  trained with ``MSELoss`` on the bi-encoder's embeddings; served by the ``onnx`` runtime.

Initial static model (no ``model2vec`` needed): the vector of each token of the vocabulary is the bi-encoder's
embedding of that token alone (``[CLS] token [SEP]``, pooled and normalised, as model2vec distils), scaled by
a smooth inverse frequency weight ``a / (a + p(token))`` with ``p`` counted on the training texts, so that
frequent words ("with", "and", "the") weigh little in the mean.

Intermediate files sit beside the model, so a killed stage resumes: ``targets.npy`` (the bi-encoder's
embeddings of the texts, with ``targets.json``), ``init/`` (the initial model) and the trainer's
``checkpoints/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from melscribe.fileio import temp_sibling, write_text_atomic
from melscribe.train.schedule import Schedule
from melscribe.train.settings import FastSettings, TrainerSettings

log = logging.getLogger(__name__)

STATIC_KINDS = ("static-distill", "static-mnrl")
#: Hyper-parameters of each kind when the configuration leaves them ``None``.
DEFAULTS = {
    "static-distill": {"epochs": 4.0, "lr": 0.02, "batch_size": 256},
    "static-mnrl": {"epochs": 4.0, "lr": 0.05, "batch_size": 512},
    "layers": {"epochs": 1.0, "lr": 1e-4, "batch_size": 64},
}
#: Smooth-inverse-frequency constant of the initial token weights.
SIF_A = 1e-3
#: From this many distillation texts, the teacher encodes them on the onnx backend.
ONNX_MIN_TEXTS = 5000


def parse_kind(kind: str) -> tuple[str, int | None]:
    """``("static-distill" | "static-mnrl", None)``, ``("layers", N)`` or ``("none", None)``;
    ``ValueError`` for anything else."""
    if kind in STATIC_KINDS or kind == "none":
        return kind, None
    m = re.fullmatch(r"layers-(\d+)", kind)
    if m and int(m.group(1)) >= 1:
        return "layers", int(m.group(1))
    raise ValueError(f"unknown fast student {kind!r}; use static-distill, static-mnrl, layers-N or none")


def distillation_texts(queries: Sequence[str], documents: Sequence[str], limit: int | None = None,
                       seed: int = 0) -> list[str]:
    """The texts a student learns the bi-encoder's embeddings of: requests, descriptor-set texts and each
    single descriptor (split on ", "), deduplicated; a seeded sample of ``limit`` of them if more."""
    descriptors = (d for doc in documents for d in doc.split(", "))
    texts = list(dict.fromkeys(t for t in (*queries, *documents, *descriptors) if t.strip()))
    if limit is not None and len(texts) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(texts), size=limit, replace=False))
        texts = [texts[i] for i in keep]
    return texts


def train_fast_student(teacher: str | os.PathLike, out_dir: str | os.PathLike,
                       settings: FastSettings = FastSettings(), trainer: TrainerSettings = TrainerSettings(), *,
                       texts: Sequence[str] = (), pairs: Sequence[tuple[str, str]] = (), tracks: Sequence[str] = (),
                       seed: int = 0, callbacks: Sequence = ()) -> Path:
    """Train a fast student of the bi-encoder ``teacher`` (a folder) of the kind ``settings.student`` (see the
    module doc) and write it to ``out_dir/model``. ``texts``: what the bi-encoder's embeddings are learnt on
    (every kind; the initial static model also counts its token frequencies there); ``pairs`` and ``tracks``
    (their source tracks: no batch holds two pairs of one track): the ``static-mnrl`` training data.
    ``settings.epochs``, ``lr`` and ``batch_size`` default to :data:`DEFAULTS`; the static kinds keep their
    own sequence length and train in float32. Returns ``out_dir/model``."""
    from melscribe.encoding.models import load_sentence_transformer, model_fingerprint
    from melscribe.encoding.static_backend import STUDENT_INFO
    from melscribe.train.checkpoints import publish_model
    from melscribe.train.mnrl import train_mnrl
    from melscribe.train.settings import MNRLSettings

    kind = settings.student
    family, layers = parse_kind(kind)
    if family == "none":
        raise ValueError("fast student 'none': nothing to train")
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to learn the bi-encoder's embeddings of")
    if family == "static-mnrl" and (not pairs or len(pairs) != len(tracks)):
        raise ValueError(f"static-mnrl needs pairs and their tracks ({len(pairs)} pairs, {len(tracks)} tracks)")
    hp = dict(DEFAULTS[family])
    hp.update({k: v for k, v in (("epochs", settings.epochs), ("lr", settings.lr), ("batch_size", settings.batch_size))
               if v is not None})
    schedule = Schedule(hp["batch_size"], hp["epochs"], settings.max_steps, hp["lr"])
    if family != "layers":
        trainer = dataclasses.replace(trainer, max_seq_length=None, bf16=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    teacher_model = load_sentence_transformer(teacher)
    targets = None if family == "static-mnrl" else teacher_targets(teacher, texts, out, teacher_model)
    init = out / "init"
    if not (init / "modules.json").is_file():
        if family == "layers":
            publish_model(_cut_layers(teacher_model, layers), init)  # cuts teacher_model itself: used last
        else:
            publish_model(_static_init(teacher_model, texts), init)
    del teacher_model
    if family == "static-mnrl":
        mnrl = MNRLSettings(batch_size=schedule.batch_size, epochs=schedule.epochs, max_steps=schedule.max_steps,
                            lr=schedule.lr)
        model_dir = train_mnrl(list(pairs), list(tracks), out, mnrl, trainer, base=str(init), seed=seed,
                               callbacks=callbacks)
    else:
        model_dir = distil_mse(texts, targets, out, schedule, trainer, base=str(init), seed=seed, callbacks=callbacks)
    info = {"kind": kind, "teacher": str(teacher), "teacher_fingerprint": model_fingerprint(teacher),
            "texts": len(texts), "pairs": len(pairs) if family == "static-mnrl" else 0, "seed": seed, **hp,
            "max_steps": settings.max_steps, "seconds": round(time.perf_counter() - t0, 1)}
    write_text_atomic(model_dir / STUDENT_INFO, json.dumps(info, indent=2))
    log.info("fast student %s written to %s", kind, model_dir)
    return model_dir


def teacher_targets(teacher: str | os.PathLike, texts: Sequence[str], out: Path, loaded=None) -> np.ndarray:
    """The bi-encoder's embeddings of ``texts``, cached in ``out/targets.npy`` (reused while the texts and
    the teacher are the same). From :data:`ONNX_MIN_TEXTS` texts on, encoded with the onnx backend (same
    embeddings, faster, after a one-time export of about 20 s) when it can export the model; else with
    ``loaded`` (the teacher's ``SentenceTransformer``) on torch."""
    from melscribe.encoding.encoder import TextEncoder
    from melscribe.encoding.models import model_fingerprint
    from melscribe.errors import ModelUnavailableError

    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16] + "-" + model_fingerprint(teacher)
    path, info = out / "targets.npy", out / "targets.json"
    if path.is_file() and info.is_file() and json.loads(info.read_text()).get("key") == key:
        targets = np.load(path)
        if targets.shape[0] == len(texts):
            return targets
    encoder = None
    if len(texts) >= ONNX_MIN_TEXTS:
        try:
            encoder = TextEncoder(str(teacher), backend="onnx")
        except ModelUnavailableError as e:
            log.warning("encoding the distillation texts on torch: %s", e)
    encoder = encoder or TextEncoder(loaded if loaded is not None else str(teacher))
    order = np.argsort([len(t) for t in texts], kind="stable")
    emb = encoder.encode([texts[i] for i in order], batch_size=128, progress=True)
    targets = np.empty_like(emb)
    targets[order] = emb
    tmp = temp_sibling(path).with_suffix(".npy")
    np.save(tmp, targets)
    os.replace(tmp, path)
    write_text_atomic(info, json.dumps({"key": key, "texts": len(texts)}))
    return targets


def token_vectors(model, ids: Sequence[int] | None = None, batch_size: int = 512) -> np.ndarray:
    """The bi-encoder's normalised embedding of each token id of ``ids`` (default: the whole vocabulary) on
    its own (``[CLS] token [SEP]`` through the model, pooled as the model pools), shape ``(len(ids), dim)``."""
    import torch
    from tqdm.auto import tqdm

    tokenizer = model[0].tokenizer
    all_ids = torch.arange(len(tokenizer)) if ids is None else torch.as_tensor(list(ids), dtype=torch.long)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = np.empty((len(all_ids), model.get_embedding_dimension()), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(all_ids), batch_size), desc="token vectors", unit="batch",
                          disable=len(all_ids) <= batch_size):
            ids = all_ids[start:start + batch_size, None]
            parts = [ids] if cls_id is None else [torch.full_like(ids, cls_id), ids]
            parts += [] if sep_id is None else [torch.full_like(ids, sep_id)]
            input_ids = torch.cat(parts, dim=1).to(model.device)
            features = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
            if "token_type_ids" in tokenizer.model_input_names:
                features["token_type_ids"] = torch.zeros_like(input_ids)
            emb = model(features)["sentence_embedding"]
            out[start:start + len(ids)] = torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()
    return out


def _static_init(teacher, texts: Sequence[str]):
    """A ``StaticEmbedding`` (→ ``Normalize``) model over the teacher's tokenizer, its token vectors from
    :func:`token_vectors` weighted by smooth inverse frequency on ``texts``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(teacher[0].tokenizer.backend_tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    vectors = token_vectors(teacher)
    ids = [i for e in tokenizer.encode_batch(list(texts), add_special_tokens=False) for i in e.ids]
    counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=len(vectors))[:len(vectors)]
    weights = SIF_A / (SIF_A + counts / max(1, counts.sum()))
    static = StaticEmbedding(tokenizer, embedding_weights=(vectors * weights[:, None]).astype(np.float32))
    return SentenceTransformer(modules=[static, Normalize()], device="cpu")


def _cut_layers(teacher, n: int):
    """The teacher with ``n`` of its transformer layers (evenly spaced, first and last kept)."""
    import torch

    auto_model = teacher[0].auto_model
    encoder = getattr(auto_model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(f"layers-{n}: cannot find the layers of a {type(auto_model).__name__} (BERT-like models only)")
    if n >= len(layers):
        raise ValueError(f"layers-{n}: the bi-encoder has only {len(layers)} layers")
    keep = sorted({int(round(x)) for x in np.linspace(0, len(layers) - 1, n)})
    encoder.layer = torch.nn.ModuleList([layers[i] for i in keep])
    auto_model.config.num_hidden_layers = len(keep)
    log.info("layers-%d: keeping layers %s of %d", n, keep, len(layers))
    return teacher


def distil_mse(texts: Sequence[str], targets, out_dir: str | os.PathLike, schedule: Schedule,
               trainer: TrainerSettings = TrainerSettings(), *, base: str, seed: int = 0,
               callbacks: Sequence = ()) -> Path:
    """Embedding distillation (MSELoss): the model ``base`` learns to embed each of ``texts`` as the matching
    row of ``targets`` (a teacher's embeddings, same dimension). Returns ``out_dir/model``."""
    from sentence_transformers.sentence_transformer.losses import MSELoss

    from melscribe.train.trainer import train_sentence_transformer

    if len(texts) != len(targets):
        raise ValueError(f"{len(texts)} texts and {len(targets)} target embeddings: lengths differ")
    columns = {"anchor": list(texts), "label": [list(map(float, t)) for t in targets]}
    keys = [frozenset((i,)) for i in range(len(texts))]  # no constraint on batches
    return train_sentence_transformer(columns, MSELoss, Path(out_dir), base=base, schedule=schedule, trainer=trainer,
                                      seed=seed, keys=keys, callbacks=callbacks)
