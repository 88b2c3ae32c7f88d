"""One text encoder for training, evaluation and serving.

:class:`TextEncoder` turns texts into L2-normalised float32 embeddings (so inner product is cosine
similarity) with one of several backends:

* ``torch``: the sentence-transformers model itself (PyTorch);
* ``onnx``: the same transformer exported once with ``torch.onnx``, graph-optimised and run with
  onnxruntime, with melscribe's own tokenisation, pooling and normalisation (:mod:`melscribe.encoding.onnx_backend`);
  embeddings equal to torch's within 1e-4 cosine, so both share an index;
* ``onnx-int8``: that graph with int8 weights (dynamic quantisation): faster, embeddings a little off, each
  text encoded in a run of its own (activations are quantised per run);
* ``static``: the static-embedding student (sentence-transformers ``StaticEmbedding``) published by
  ``melscribe train`` inside the bi-encoder's folder, in :data:`STUDENT_DIR` (stage ``fast``), or a static
  model folder itself; run with numpy (:mod:`melscribe.encoding.static_backend`);
* ``student``: whatever fast student is published in :data:`STUDENT_DIR`: a static one as ``static``, a
  smaller transformer (``fast.student="layers-N"``) on the ``onnx`` backend.

Every evaluation scorer (:class:`melscribe.retrieval.scorers.DenseScorer`), the index and the recommender go through
this class, so a backend chosen once applies everywhere. Only the ``torch`` backend (and the one-time ONNX
export) imports PyTorch.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from functools import cached_property
from typing import Any, Callable, Sequence

import numpy as np

from melscribe.config import PACKAGED_MINILM, resolve_model, trained_model_path
from melscribe.errors import InvalidRequestError, ModelUnavailableError
from melscribe.encoding.long_text import DEFAULT_POLICY, RELEVANCE_POOLINGS, LongTextPolicy, Window, pool, windows
from melscribe.encoding.models import load_sentence_transformer

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8", "static", "student")
#: The backend of evaluation and training when none is named (``DenseScorer``, ``TextEncoder``).
DEFAULT_BACKEND = "torch"
#: The backend of serving when none is named (``Recommender``, ``melscribe recommend|serve|index``): the
#: fastest that loses at most 0.3 point of Recall@10 against torch on MC, MC_reco and the track-level
#: splits, fused rankings included (``experiments/results/backends.md``: onnx-int8 loses at most 0.25 point
#: and encodes a request in about 60 % of onnx's time; onnx loses nothing; the 3-layer and static students
#: 1.6–4 points).
SERVING_BACKEND = "onnx-int8"
#: Backends whose embeddings equal the torch backend's (within 1e-4 cosine): they share indexes.
SAME_EMBEDDINGS = ("torch", "onnx")
#: The text whose embedding identifies a model's weights (compared with a tolerance by ``same_model``).
PROBE_TEXT = "melscribe probe: upbeat tropical music with steel drums"
#: Texts no working encoder embeds alike, checked when an encoder is made: if every pair is at least
#: :data:`DEGENERATE_COSINE` close, the weights are damaged (the packaged MiniLM keeps every pair below 0.4; 4 KB
#: of its weights overwritten make them all alike: both in ``tests/encoding/test_encoder.py``).
DEGENERATE_PROBES = ("calm solo piano", "aggressive heavy metal with distorted guitars", "a choir singing in Latin",
                     "the stock market fell sharply on Tuesday")
DEGENERATE_COSINE = 0.9
#: Batches up to this size are encoded on a single thread (see :meth:`TextEncoder.encode`).
SMALL_BATCH = 8


def default_model() -> str:
    """The model used when none is named: the trained bi-encoder at ``config.trained_model_path()`` if it
    exists, else the packaged all-MiniLM-L6-v2."""
    trained = trained_model_path()
    return str(trained) if trained.exists() else PACKAGED_MINILM


def display_name(model: str | os.PathLike) -> str:
    """The name under which a model is reported and indexes are cached (``all-MiniLM-L6-v2`` for the
    packaged copy, else the name or path as given)."""
    return PACKAGED_MINILM if resolve_model(model) == resolve_model(None) else str(model)


def encoder_name(model: str | os.PathLike, backend: str = DEFAULT_BACKEND) -> str:
    """The name under which an encoder is reported and its indexes are cached: :func:`display_name`, with
    ``@backend`` appended for backends whose embeddings differ from torch's (``static``, ``student``,
    ``onnx-int8``)."""
    name = display_name(model)
    return name if backend in SAME_EMBEDDINGS else f"{name}@{backend}"


class TextEncoder:
    """Texts to L2-normalised float32 embeddings, safe to share between threads.

    ``model``: a model name or folder, a loaded ``SentenceTransformer``, or ``None`` (:func:`default_model`).
    ``backend``: one of :data:`BACKENDS` (see the module docstring); ``"static"`` and ``"student"`` read the
    student published inside ``model``'s folder (``"static"`` also accepts a static model folder itself).
    ``max_seq_length``: the window, in tokens, to read instead of the model's own (at most its position
    embeddings; for experiments such as ``experiments/long_requests.py``: it is not part of :attr:`name`, so
    indexes are not told apart by it).
    """

    def __init__(self, model: Any = None, *, backend: str = DEFAULT_BACKEND, max_seq_length: int | None = None):
        if backend not in BACKENDS:
            raise InvalidRequestError(f"unknown encoder backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        st = sys.modules.get("sentence_transformers")  # not imported: model cannot be one (and torch stays unloaded)
        if st is not None and isinstance(model, st.SentenceTransformer):
            if backend != "torch":
                raise InvalidRequestError(f"a loaded SentenceTransformer runs on the torch backend, not {backend!r}")
            self.model, self.source = model, model.tokenizer.name_or_path
        else:
            # a path is expanded here, where it enters: everything found beside the model (its tuned fusion,
            # its student, its teacher) is then looked up at the same place
            self.source = os.path.expanduser(str(default_model() if model is None else model))
            self.model = None
        self.backend = backend
        self.name = encoder_name(self.source, backend)
        self._lock = threading.Lock()
        self._impl = self._load_backend()
        if max_seq_length is not None:
            self._set_window(int(max_seq_length))
        self._check_not_degenerate()
        log.info("text encoder: %s (%s)", self.name, backend)

    def _check_not_degenerate(self) -> None:
        """Refuse a model that embeds different texts alike (:data:`DEGENERATE_PROBES`): damaged weights, not a
        request, would be to blame for every result it gave."""
        emb = self.encode(list(DEGENERATE_PROBES))
        if not np.isfinite(emb).all() or float((emb @ emb.T).min()) >= DEGENERATE_COSINE:
            raise ModelUnavailableError(f"{self.name} embeds different texts alike (or as NaN): its weights are "
                                        "damaged; re-publish or re-train the model")

    def _load_backend(self):
        if self.backend == "torch":
            if self.model is None:
                self.model = load_sentence_transformer(self.source)
                self._own_model = True
            return _TorchBackend(self.model)
        if self.backend in ("onnx", "onnx-int8"):
            from melscribe.encoding.onnx_backend import OnnxBackend

            return OnnxBackend.for_model(self.source, quantized=self.backend == "onnx-int8")
        from melscribe.encoding.static_backend import StaticBackend, find_student, is_static_model

        if self.backend == "static":
            return StaticBackend.for_model(self.source)
        student = find_student(self.source)
        if is_static_model(student):
            return StaticBackend(student)
        from melscribe.encoding.onnx_backend import OnnxBackend

        return OnnxBackend.for_model(student)

    def _set_window(self, tokens: int) -> None:
        """Read ``tokens`` tokens at most (the ``max_seq_length`` argument)."""
        if not hasattr(self._impl, "set_max_seq_length"):
            raise InvalidRequestError(f"the {self.backend} backend has no window to set")
        limit = _max_positions(self.source)
        if not 2 < tokens <= limit:
            raise InvalidRequestError(f"max_seq_length must be between 3 and {limit} (the model's positions), not {tokens}")
        if self.backend == "torch" and not getattr(self, "_own_model", False) and tokens != self.max_seq_length:
            raise InvalidRequestError("max_seq_length cannot change the window of a SentenceTransformer passed in")
        self._impl.set_max_seq_length(tokens)

    def __repr__(self) -> str:
        return f"TextEncoder({self.name!r}, backend={self.backend!r})"

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self._impl.dim

    @property
    def max_seq_length(self) -> int:
        """Longest input, in tokens, the model reads; longer texts are truncated."""
        return self._impl.max_seq_length

    def token_count(self, text: str) -> int:
        """Number of tokens the model's tokenizer makes of ``text``, special tokens included."""
        return self._impl.token_count(text)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 embeddings, shape ``(len(texts), dim)``. Up to :data:`SMALL_BATCH` texts
        (a request) are encoded on one thread: a little slower on an idle machine, but immune to the stalls
        of threads waiting for each other on a busy one (15 ms instead of 500 ms measured with torch)."""
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            emb = self._impl.encode(list(texts), batch_size=batch_size, progress=progress,
                                    single_thread=len(texts) <= SMALL_BATCH)
        return np.ascontiguousarray(emb, dtype=np.float32)

    def windows(self, text: str, policy: LongTextPolicy = DEFAULT_POLICY) -> list[Window] | None:
        """The windows :meth:`encode_whole` reads ``text`` in (substrings of :meth:`prepared_text`), or ``None``
        if the text fits in :attr:`max_seq_length` tokens (or the backend has no tokenizer to cut it with)."""
        tokenizer = getattr(self._impl, "window_tokenizer", None)
        limit = self.max_seq_length
        if tokenizer is None or len(text.encode("utf-8", "surrogatepass")) + self._specials <= limit:
            return None  # a token covers a byte at least: a text of fewer bytes cannot be too long
        enc = tokenizer.encode(self.prepared_text(text), add_special_tokens=False)
        if len(enc.ids) + self._specials <= limit:
            return None
        return windows(self.prepared_text(text), enc.offsets, enc.word_ids, limit - self._specials, policy)

    def prepared_text(self, text: str) -> str:
        """``text`` as the model's tokenizer is given it (lower-cased for a model that says so)."""
        prepare = getattr(self._impl, "prepare", None)
        return prepare(text) if prepare is not None else text

    @cached_property
    def _specials(self) -> int:
        return self._impl.token_count("")

    def encode_whole(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False,
                     policy: LongTextPolicy = DEFAULT_POLICY,
                     relevance: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """:meth:`encode`, except that a text longer than :attr:`max_seq_length` tokens is read whole instead of
        truncated: cut into pieces that fit (:meth:`windows`), all encoded in the same batch as the other texts,
        and their embeddings pooled as ``policy`` says (:mod:`melscribe.encoding.long_text`). ``relevance``
        maps the embeddings of a text's pieces ``(pieces, dim)`` to one score each, for ``"relevance"`` pooling
        (the recommender gives each piece's best score on its index). When no text is that long, the result is
        :meth:`encode`'s, bit for bit."""
        texts = list(texts)
        plans = [self.windows(t, policy) for t in texts]
        if all(p is None for p in plans):
            return self.encode(texts, batch_size=batch_size, progress=progress)
        pieces: list[str] = []
        for text, plan in zip(texts, plans):
            if plan is None:
                pieces.append(text)
            else:
                prepared = self.prepared_text(text)
                pieces.extend(prepared[w.start:w.end] for w in plan)
        emb = self.encode(pieces, batch_size=batch_size, progress=progress)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        row = 0
        for i, plan in enumerate(plans):
            if plan is None:
                out[i] = emb[row]
                row += 1
            else:
                part = emb[row:row + len(plan)]
                scores = relevance(part) if relevance is not None and policy.pooling in RELEVANCE_POOLINGS else None
                out[i] = pool(part, plan, policy.pooling, scores, policy.temperature)
                row += len(plan)
        return out

    @property
    def encodes_each_text_alone(self) -> bool:
        """Whether every text gets a run of its own, so its embedding does not depend on the texts encoded with it
        (``onnx-int8``: its activations are quantised with one scale per run)."""
        return bool(getattr(self._impl, "text_per_run", False))

    @cached_property
    def probe(self) -> np.ndarray:
        """Embedding of :data:`PROBE_TEXT`: identifies the weights whatever the model's name or path."""
        return self.encode([PROBE_TEXT])[0]


class _TorchBackend:
    """The sentence-transformers model on PyTorch."""

    def __init__(self, model):
        self.model = model
        self.dim = int(model.get_embedding_dimension())
        self.max_seq_length = int(model.max_seq_length)

    def token_count(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    @cached_property
    def window_tokenizer(self):
        """The model's fast tokenizer without truncation or padding (``None`` for a slow one): where
        :meth:`TextEncoder.windows` cuts a long text."""
        from tokenizers import Tokenizer

        backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        tokenizer = Tokenizer.from_str(backend.to_str())
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def prepare(self, text: str) -> str:
        return text.lower() if getattr(self.model[0], "do_lower_case", False) else text

    def set_max_seq_length(self, tokens: int) -> None:
        self.model.max_seq_length = self.max_seq_length = tokens

    def encode(self, texts: list[str], *, batch_size: int, progress: bool, single_thread: bool) -> np.ndarray:
        import torch

        threads = torch.get_num_threads()
        if single_thread:
            torch.set_num_threads(1)
        try:
            return self.model.encode(texts, batch_size=batch_size, show_progress_bar=progress,
                                     normalize_embeddings=True, convert_to_numpy=True)
        finally:
            torch.set_num_threads(threads)


def _max_positions(source: str) -> int:
    """The most tokens a model's position embeddings allow (its ``config.json``; 512 if it says nothing)."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(resolve_model(source)) / "config.json").read_text())
        return int(config.get("max_position_embeddings", 512))
    except (OSError, ValueError, TypeError):
        return 512
