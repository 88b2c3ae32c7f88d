"""The ``static`` backend of :class:`~melscribe.encoding.encoder.TextEncoder`: a static-embedding model run with numpy.

A static model (sentence-transformers ``StaticEmbedding``, trained by :mod:`melscribe.train.fast`) embeds
a text as the mean of one learned vector per token: no attention, no layers. Here the ``tokenizers``
library tokenises (no special tokens, as ``StaticEmbedding`` does), the token vectors are read from the
model's ``model.safetensors`` and averaged with numpy, and the mean is L2-normalised: the same embeddings as
sentence-transformers (within float rounding) without PyTorch, in well under a millisecond per request.

The student of a trained bi-encoder lives in its folder, in :data:`~melscribe.encoding.models.STUDENT_DIR`
(``melscribe train`` publishes it there); :func:`find_student` finds it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from melscribe.config import resolve_model
from melscribe.errors import ModelUnavailableError

#: ``max_seq_length`` reported for a static model whose tokenizer does not truncate.
UNLIMITED = sys.maxsize
STUDENT_INFO = "fast_student.json"


def _modules(folder: Path) -> list[dict]:
    try:
        return json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return []


def is_static_model(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a sentence-transformers model whose first module is a ``StaticEmbedding``."""
    mods = _modules(Path(folder))
    return bool(mods) and str(mods[0].get("type", "")).endswith("StaticEmbedding")


def find_student(model: str | os.PathLike) -> Path:
    """The fast student published inside the folder of the bi-encoder ``model``;
    :class:`ModelUnavailableError` (saying how to make one) if there is none."""
    from melscribe.encoding.models import STUDENT_DIR

    folder = Path(resolve_model(model)) / STUDENT_DIR
    if not (folder / "modules.json").is_file():
        raise ModelUnavailableError(
            f"{model!r} has no fast student ({folder} is missing): train one with `melscribe train --stage fast` "
            "(or a whole `melscribe train`, which publishes it in the model's folder), or pick another backend")
    return folder


class StaticBackend:
    """A static-embedding model folder (sentence-transformers layout), run with numpy."""

    def __init__(self, folder: str | os.PathLike):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        mods = _modules(self.folder)
        if not is_static_model(self.folder):
            raise ModelUnavailableError(f"{self.folder} is not a static-embedding model (its first module is not "
                                        "a StaticEmbedding)")
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in mods]
        if any(k not in ("StaticEmbedding", "Normalize") for k in kinds):
            raise ModelUnavailableError(f"the static backend runs StaticEmbedding (→ Normalize) models; {self.folder} "
                                        f"is {' → '.join(kinds)}")
        module = self.folder / mods[0].get("path", "")
        try:
            weights = load_file(str(module / "model.safetensors"))
            self.embeddings = np.ascontiguousarray(weights["embedding.weight"], dtype=np.float32)
            self.tokenizer = Tokenizer.from_file(str(module / "tokenizer.json"))
        except Exception as e:  # missing files, a weight file without embedding.weight, a bad tokenizer...
            raise ModelUnavailableError(f"cannot load the static model at {self.folder}: {type(e).__name__}: "
                                        f"{str(e).splitlines()[0][:160] if str(e) else ''}") from None
        self.tokenizer.no_padding()
        truncation = self.tokenizer.truncation
        self.max_seq_length = int(truncation["max_length"]) if truncation else UNLIMITED
        self.dim = int(self.embeddings.shape[1])

    @classmethod
    def for_model(cls, model: str | os.PathLike) -> "StaticBackend":
        """``model`` itself if it is a static model folder, else the static student published in its folder."""
        path = Path(resolve_model(model))
        if is_static_model(path):
            return cls(path)
        student = find_student(model)
        if not is_static_model(student):
            raise ModelUnavailableError(f"the fast student at {student} is a transformer, not a static model: use "
                                        "--backend student (or --model it with --backend onnx)")
        return cls(student)

    def token_count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, texts: Sequence[str], *, batch_size: int, progress: bool, single_thread: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = 4096  # bounds the memory of the gathered token vectors
        for start in range(0, len(texts), step):
            ids = [e.ids for e in self.tokenizer.encode_batch(list(texts[start:start + step]), add_special_tokens=False)]
            lengths = np.array([len(i) for i in ids])
            rows = np.flatnonzero(lengths)  # a text without tokens keeps a zero vector, as in sentence-transformers
            if not len(rows):
                continue
            flat = np.fromiter((t for r in rows for t in ids[r]), dtype=np.int64, count=int(lengths[rows].sum()))
            offsets = np.concatenate([[0], np.cumsum(lengths[rows])[:-1]])
            sums = np.add.reduceat(self.embeddings[flat], offsets, axis=0)
            out[start + rows] = sums / lengths[rows, None]
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norm, 1e-12)
