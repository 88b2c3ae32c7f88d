"""Scorers: from requests and a descriptor-set corpus to a score matrix.

Every scorer has ``fit(corpus)`` (a list of document texts) and ``score(queries)`` returning a
``(len(queries), len(corpus))`` float32 array, higher is better. Baselines: TF-IDF (scikit-learn),
BM25 (bm25s: sparse-matrix BM25, the fastest pure-Python option), any sentence-transformers model,
a cross-encoder re-ranker, and fusions of several scorers.
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol, Sequence

import numpy as np

from .config import resolve_model
from .errors import MelscribeError


class ModelUnavailableError(MelscribeError):
    """A model named by the user cannot be loaded here (no hub, missing folder)."""


class Scorer(Protocol):
    """What the evaluation needs from a retriever."""

    name: str

    def fit(self, corpus: Sequence[str]) -> "Scorer": ...

    def score(self, queries: Sequence[str]) -> np.ndarray: ...


class TfidfScorer:
    """Cosine similarity of TF-IDF vectors (scikit-learn ``TfidfVectorizer`` fitted on the corpus)."""

    def __init__(self, name: str = "TF-IDF", **vectorizer_kwargs):
        self.name = name
        self.vectorizer_kwargs = vectorizer_kwargs

    def fit(self, corpus: Sequence[str]) -> "TfidfScorer":
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(**self.vectorizer_kwargs)
        self.doc_matrix = self.vectorizer.fit_transform(list(corpus))
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        q = self.vectorizer.transform(list(queries))
        return (q @ self.doc_matrix.T).toarray().astype(np.float32)


class BM25Scorer:
    """Okapi BM25 through ``bm25s`` (English stop words removed, ``k1``/``b`` configurable)."""

    def __init__(self, name: str = "BM25", k1: float = 1.5, b: float = 0.75, method: str = "robertson"):
        self.name, self.k1, self.b, self.method = name, k1, b, method

    def fit(self, corpus: Sequence[str]) -> "BM25Scorer":
        import bm25s

        self.retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        tokens = bm25s.tokenize(list(corpus), stopwords="en", show_progress=False, return_ids=False)
        self.retriever.index(tokens, show_progress=False)
        self.vocab = {t for doc in tokens for t in doc}
        self.n_docs = len(corpus)
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        import bm25s

        tokens = bm25s.tokenize(list(queries), stopwords="en", show_progress=False, return_ids=False)
        out = np.zeros((len(queries), self.n_docs), dtype=np.float32)
        for i, toks in enumerate(tokens):
            toks = [t for t in toks if t in self.vocab]
            if toks:
                out[i] = self.retriever.get_scores(toks)
        return out


def load_sentence_transformer(name_or_path: str | None, max_seq_length: int | None = None):
    """Load a SentenceTransformer by name or path (the packaged MiniLM for ``all-MiniLM-L6-v2``).

    Raises :class:`ModelUnavailableError` with a one-line reason when it cannot be loaded offline.
    """
    from sentence_transformers import SentenceTransformer

    path = resolve_model(name_or_path)
    try:
        model = SentenceTransformer(path, device="cpu" if not _cuda() else None)
    except Exception as e:  # OSError, HF hub errors, ValueError...
        raise ModelUnavailableError(f"cannot load {name_or_path!r}: {type(e).__name__}: {str(e).splitlines()[0][:160]}") from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


#: Models and text embeddings loaded by name, shared by every DenseScorer of the process (a fused row
#: reuses the embeddings of the dense row before it).
_SHARED: dict[str, tuple[object, dict[str, np.ndarray], threading.Lock]] = {}


class DenseScorer:
    """Cosine similarity of sentence-transformers embeddings. Embeddings are cached by text (per model
    name, shared in the process), so re-fitting on a corpus of another seed only encodes new documents."""

    def __init__(self, model, name: str | None = None, batch_size: int = 64, show_progress_bar: bool = False):
        if isinstance(model, str) or model is None:
            key = resolve_model(model)
            if key not in _SHARED:
                _SHARED[key] = (load_sentence_transformer(model), {}, threading.Lock())
            self.model, self._cache, self._lock = _SHARED[key]
        else:
            self.model, self._cache, self._lock = model, {}, threading.Lock()
        self.name = name or (model if isinstance(model, str) else "dense")
        self.batch_size, self.show_progress_bar = batch_size, show_progress_bar

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings of ``texts`` (cached)."""
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if todo:
                order = np.argsort([len(t) for t in todo])  # similar lengths batch together: less padding
                emb = self.model.encode([todo[i] for i in order], batch_size=self.batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=self.show_progress_bar)
                for j, i in enumerate(order):
                    self._cache[todo[i]] = emb[j].astype(np.float32)
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    def fit(self, corpus: Sequence[str]) -> "DenseScorer":
        self.doc_matrix = self.embed(list(corpus))
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        return self.embed(list(queries)) @ self.doc_matrix.T


def rank_matrix(scores: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of every document for every query row; ties broken by document position."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, scores.shape[1] + 1)
    return ranks


def reciprocal_rank_fusion(score_matrices: Sequence[np.ndarray], k: int = 60,
                           weights: Sequence[float] | None = None) -> np.ndarray:
    """Reciprocal-rank fusion (Cormack et al. 2009): ``Σ w_i / (k + rank_i)`` over the given scorers."""
    weights = weights or [1.0] * len(score_matrices)
    return sum(w / (k + rank_matrix(s)) for w, s in zip(weights, score_matrices)).astype(np.float32)


def weighted_fusion(score_matrices: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of per-query z-normalised scores."""
    out = 0
    for w, s in zip(weights, score_matrices):
        mu, sd = s.mean(axis=1, keepdims=True), s.std(axis=1, keepdims=True) + 1e-9
        out = out + w * (s - mu) / sd
    return np.asarray(out, dtype=np.float32)


class FusedScorer:
    """Fuses several scorers: ``method="rrf"`` (reciprocal rank, constant ``k``) or ``"weighted"``
    (weighted sum of z-normalised scores)."""

    def __init__(self, scorers: Sequence[Scorer], method: str = "rrf", weights: Sequence[float] | None = None,
                 k: int = 60, name: str | None = None):
        if method not in ("rrf", "weighted"):
            raise ValueError(f"unknown fusion method {method!r}; use 'rrf' or 'weighted'")
        self.scorers, self.method, self.k = list(scorers), method, k
        self.weights = list(weights) if weights is not None else [1.0] * len(self.scorers)
        self.name = name or " + ".join(s.name for s in self.scorers) + f" ({method})"

    def fit(self, corpus: Sequence[str]) -> "FusedScorer":
        for s in self.scorers:
            s.fit(corpus)
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        mats = [s.score(queries) for s in self.scorers]
        if self.method == "rrf":
            return reciprocal_rank_fusion(mats, k=self.k, weights=self.weights)
        return weighted_fusion(mats, self.weights)


class RerankScorer:
    """A first-stage scorer whose top ``depth`` documents per query are re-scored by a cross-encoder
    (raw logits); documents below the cut keep a score under every re-ranked one."""

    def __init__(self, first_stage: Scorer, cross_encoder, depth: int = 100, name: str | None = None,
                 batch_size: int = 64, bf16: bool = True):
        self.first_stage, self.cross_encoder, self.depth, self.batch_size = first_stage, cross_encoder, depth, batch_size
        self.bf16 = bf16
        self.name = name or f"{first_stage.name} → cross-encoder@{depth}"

    def fit(self, corpus: Sequence[str]) -> "RerankScorer":
        self.corpus = list(corpus)
        self.first_stage.fit(self.corpus)
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        import torch

        first = self.first_stage.score(queries)
        depth = min(self.depth, first.shape[1])
        top = np.argsort(-first, axis=1, kind="stable")[:, :depth]
        pairs = [(q, self.corpus[j]) for q, row in zip(queries, top) for j in row]
        device = "cuda" if _cuda() else "cpu"
        with torch.autocast(device, dtype=torch.bfloat16, enabled=self.bf16):  # ~2x faster on CPUs with BF16
            logits = self.cross_encoder.predict(pairs, batch_size=self.batch_size, activation_fn=torch.nn.Identity(),
                                                show_progress_bar=len(pairs) > 10_000)
        logits = np.asarray(logits, dtype=np.float32).reshape(len(queries), depth)
        out = np.full(first.shape, -1e9, dtype=np.float32)
        np.put_along_axis(out, top, logits, axis=1)
        return out


#: Named baselines for the table; each builds a fresh scorer.
BASELINES: dict[str, Callable[[], Scorer]] = {
    "tfidf": lambda: TfidfScorer(),
    "bm25": lambda: BM25Scorer(),
    "all-MiniLM-L6-v2": lambda: DenseScorer("all-MiniLM-L6-v2"),
    "all-MiniLM-L12-v2": lambda: DenseScorer("sentence-transformers/all-MiniLM-L12-v2", name="all-MiniLM-L12-v2"),
    "msmarco-bert-base-dot-v5": lambda: DenseScorer("sentence-transformers/msmarco-bert-base-dot-v5",
                                                    name="msmarco-bert-base-dot-v5"),
    "bert-large-cased": lambda: DenseScorer("bert-large-cased", name="bert-large-cased (mean)"),
    "mpnet-base": lambda: DenseScorer("microsoft/mpnet-base", name="mpnet-base (mean)"),
}


def make_scorer(spec: str) -> Scorer:
    """Build a scorer from a short spec, as used by the CLI and the table scripts.

    * a name of :data:`BASELINES` (``tfidf``, ``bm25``, ``all-MiniLM-L6-v2``, ...);
    * ``dense:<model name or folder>`` (or just an existing folder): a sentence-transformers model;
    * ``rrf:<spec>+<spec>[+...]``: reciprocal-rank fusion (k = 60);
    * ``weighted:<w>*<spec>+<w>*<spec>``: weighted fusion of z-normalised scores;
    * ``rerank:<cross-encoder folder>@<first-stage spec>``: cross-encoder over the top 100;
    * ``fused:<trained model folder>``: the bi-encoder fused with a lexical scorer as its ``fusion.json`` says.
    * ``clap:<name, folder or LAION .pt>`` / ``ttmr:<checkpoint>``: a joint audio–text model's text tower
      (:mod:`melscribe.text_towers`).
    """
    from pathlib import Path

    spec = spec.strip()
    if spec in BASELINES:
        return BASELINES[spec]()
    kind, _, rest = spec.partition(":")
    if kind == "dense" and rest:
        return DenseScorer(rest, name=spec)
    if kind == "rrf" and rest:
        return FusedScorer([make_scorer(s) for s in rest.split("+")], method="rrf", name=spec)
    if kind == "weighted" and rest:
        parts = [p.partition("*") for p in rest.split("+")]
        return FusedScorer([make_scorer(s) for _, _, s in parts], method="weighted",
                           weights=[float(w) for w, _, _ in parts], name=spec)
    if kind == "fused" and rest:
        from .train.fusion import fused_scorer

        try:
            return fused_scorer(rest, name=spec)
        except FileNotFoundError as e:
            raise ModelUnavailableError(str(e)) from None
    if kind == "rerank" and "@" in rest:
        ce_path, _, first = rest.partition("@")
        return RerankScorer(make_scorer(first), load_cross_encoder(ce_path), name=spec)
    if kind in ("clap", "ttmr"):  # text towers of joint audio–text models (CLAP_text, TTMR_text)
        from . import text_towers

        return (text_towers.clap_scorer if kind == "clap" else text_towers.ttmr_scorer)(rest, name=spec)
    if Path(spec).expanduser().is_dir():
        return DenseScorer(str(Path(spec).expanduser()), name=spec)
    raise ModelUnavailableError(
        f"unknown scorer {spec!r}: use one of {', '.join(BASELINES)}, a model folder, dense:NAME, "
        "rrf:A+B, weighted:W*A+W*B, rerank:CROSS_ENCODER@FIRST_STAGE, clap:NAME or ttmr:PATH")


def load_cross_encoder(name_or_path: str, max_length: int | None = None):
    """Load a sentence-transformers ``CrossEncoder`` (one logit), or raise :class:`ModelUnavailableError`."""
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(resolve_model(name_or_path), max_length=max_length, device="cpu" if not _cuda() else None)
    except Exception as e:
        raise ModelUnavailableError(f"cannot load cross-encoder {name_or_path!r}: {type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:160]}") from None
