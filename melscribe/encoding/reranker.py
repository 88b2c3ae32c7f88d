"""The music cross-encoder as a re-ranker: one class that scores (request, descriptor set) pairs with raw
logits, used by GPL's labelling stage (:func:`melscribe.train.teacher.margin_labels`), by evaluation
(:class:`melscribe.retrieval.scorers.RerankScorer`) and by serving (``recommend(..., rerank=N)``).

The cross-encoder runs in PyTorch with bfloat16 autocast where that is fast (a GPU, or a CPU with
AVX512-BF16 or AMX: about 2.8× faster than float32 here, same ranking); pairs are scored in order of length, so
batches carry little padding.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from melscribe.config import resolve_model
from melscribe.errors import ModelUnavailableError
from melscribe.encoding.models import cuda_available


def load_cross_encoder(name_or_path: str, max_length: int | None = None):
    """Load a sentence-transformers ``CrossEncoder`` (one logit), or raise :class:`ModelUnavailableError`."""
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(resolve_model(name_or_path), max_length=max_length, device=None if cuda_available() else "cpu")
    except Exception as e:
        raise ModelUnavailableError(f"cannot load cross-encoder {name_or_path!r}: {type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:160]}") from None


def bf16_is_fast() -> bool:
    """Whether bfloat16 autocast speeds up inference here: a GPU, or a CPU with AVX512-BF16 or AMX."""
    import torch

    if cuda_available():
        return True
    cpu = torch.cpu  # private probes, absent from some builds: then assume not
    return any(bool(getattr(cpu, probe, lambda: False)()) for probe in ("_is_avx512_bf16_supported",
                                                                         "_is_amx_tile_supported"))


class Reranker:
    """A cross-encoder (a name, a folder or a loaded ``CrossEncoder``) scoring (request, text) pairs with raw
    logits (no sigmoid: margins keep their size). Thread-safe. ``bf16``: autocast (default: where fast,
    :func:`bf16_is_fast`)."""

    def __init__(self, model, max_length: int | None = None, batch_size: int = 64, bf16: bool | None = None):
        loaded = hasattr(model, "predict")
        self.model = model if loaded else load_cross_encoder(str(model), max_length)
        self.source = type(model).__name__ if loaded else str(model)
        self.batch_size = batch_size
        self.bf16 = bf16_is_fast() if bf16 is None else bf16
        self._lock = threading.Lock()

    def score_pairs(self, pairs: Sequence[tuple[str, str]], show_progress_bar: bool = False) -> np.ndarray:
        """Raw logits of (request, text) ``pairs``, in the order given."""
        import torch

        if not len(pairs):
            return np.zeros(0, dtype=np.float32)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        device = "cuda" if cuda_available() else "cpu"
        with self._lock, torch.autocast(device, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model.predict([pairs[i] for i in order], batch_size=self.batch_size,
                                        activation_fn=torch.nn.Identity(), show_progress_bar=show_progress_bar)
        out = np.empty(len(pairs), dtype=np.float32)
        out[order] = np.asarray(logits, dtype=np.float32).reshape(-1)
        return out

    def score(self, request: str, texts: Sequence[str]) -> np.ndarray:
        """Raw logits of ``request`` against each of ``texts``."""
        return self.score_pairs([(request, t) for t in texts])
