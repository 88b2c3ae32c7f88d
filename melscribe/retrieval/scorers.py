"""Scorers: from requests and a descriptor-set corpus to a score matrix.

Every scorer has ``fit(corpus)`` (a list of document texts) and ``score(queries)`` returning a
``(len(queries), len(corpus))`` float32 array, higher is better. Baselines: TF-IDF (scikit-learn),
BM25 (bm25s: sparse-matrix BM25, the fastest pure-Python option), any sentence-transformers model,
a cross-encoder re-ranker, and fusions of several scorers.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from melscribe.config import resolve_model
from melscribe.encoding.encoder import BACKENDS, DEFAULT_BACKEND, TextEncoder
from melscribe.errors import InvalidRequestError, ModelUnavailableError
from melscribe.retrieval.fusion import FUSION_FILE, METHODS, fuse, load_fusion
from melscribe.encoding.reranker import Reranker


class Scorer(Protocol):
    """What the evaluation needs from a retriever."""

    name: str

    def fit(self, corpus: Sequence[str]) -> "Scorer": ...

    def score(self, queries: Sequence[str]) -> np.ndarray: ...


class TfidfScorer:
    """Cosine similarity of TF-IDF vectors (scikit-learn ``TfidfVectorizer`` fitted on the corpus).

    Batches of requests go through the vectorizer's ``transform``; one request (what ``recommend()`` sends)
    is weighted here with the vectorizer's own analyzer, vocabulary and idf, the same vector without
    scikit-learn's input validation (which cost ~1 ms of a ~6 ms request)."""

    def __init__(self, name: str = "TF-IDF", **vectorizer_kwargs):
        self.name = name
        self.vectorizer_kwargs = vectorizer_kwargs

    def fit(self, corpus: Sequence[str]) -> "TfidfScorer":
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(**self.vectorizer_kwargs)
        self.doc_matrix = self.vectorizer.fit_transform(list(corpus))
        self._term_matrix = self.doc_matrix.T.tocsr()  # terms × documents, once: a query reads its terms' rows
        self._analyze = self.vectorizer.build_analyzer()
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        if len(queries) == 1:
            terms, weights = self.query_vector(queries[0])
            return (weights @ self._term_matrix[terms]).astype(np.float32).reshape(1, -1)
        q = self.vectorizer.transform(list(queries))
        return (q @ self._term_matrix).toarray().astype(np.float32)

    def score_rows(self, query: str, rows: np.ndarray) -> np.ndarray:
        """The scores of ``query`` for the documents ``rows`` only: the cost grows with those documents' terms,
        not with the corpus or its vocabulary (selecting the query's columns of a CSR matrix walks the whole
        vocabulary, which cost 0.9 ms a request over the word pairs of 1M sets: experiments/results/bench_lexical_rows.md)."""
        terms, weights = self.query_vector(query)
        docs = self.doc_matrix[rows]
        if not len(terms) or not docs.nnz:
            return np.zeros(len(rows), dtype=np.float32)
        order = np.argsort(terms)
        terms, weights = terms[order], weights[order]
        at = np.minimum(np.searchsorted(terms, docs.indices), len(terms) - 1)
        products = np.where(terms[at] == docs.indices, docs.data * weights[at], 0.0)
        doc_of_entry = np.repeat(np.arange(len(rows)), np.diff(docs.indptr))
        return np.bincount(doc_of_entry, weights=products, minlength=len(rows)).astype(np.float32)

    def query_vector(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The non-zero entries of ``query``'s TF-IDF vector, as the fitted vectorizer's ``transform`` would
        give them: (term ids, weights)."""
        v, vocabulary = self.vectorizer, self.vectorizer.vocabulary_
        counts: dict[int, int] = {}
        for token in self._analyze(query):
            j = vocabulary.get(token)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        terms = np.fromiter(counts, dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if v.binary:
            tf[:] = 1.0
        elif v.sublinear_tf:
            tf = np.log(tf) + 1.0
        if v.use_idf:
            tf = tf * v.idf_[terms]
        if v.norm == "l2" and len(tf):
            tf = tf / np.sqrt(np.dot(tf, tf))
        elif v.norm == "l1" and len(tf):
            tf = tf / np.abs(tf).sum()
        return terms, tf


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

    def score_rows(self, query: str, rows: np.ndarray) -> np.ndarray:
        """The scores of ``query`` for the documents ``rows`` (bm25s scores the whole corpus first)."""
        return self.score([query])[0][rows]


#: Encoders and text embeddings loaded by name, shared by every DenseScorer of the process (a fused row
#: reuses the embeddings of the dense row before it).
_SHARED: dict[tuple[str, str], tuple[TextEncoder, dict[str, np.ndarray]]] = {}


class DenseScorer:
    """Cosine similarity of :class:`~melscribe.encoding.encoder.TextEncoder` embeddings. Embeddings are cached by
    text (per model name and backend, shared in the process), so re-fitting on a corpus of another seed only
    encodes new documents. ``model``: a name or folder, a loaded ``SentenceTransformer`` or a ``TextEncoder``."""

    def __init__(self, model, name: str | None = None, batch_size: int = 64, show_progress_bar: bool = False,
                 backend: str = DEFAULT_BACKEND):
        if isinstance(model, TextEncoder):
            self.encoder, self._cache = model, {}
        elif isinstance(model, str) or model is None:
            key = (resolve_model(model), backend)
            if key not in _SHARED:
                _SHARED[key] = (TextEncoder(model, backend=backend), {})
            self.encoder, self._cache = _SHARED[key]
        else:
            self.encoder, self._cache = TextEncoder(model, backend=backend), {}
        self._lock = threading.Lock()
        self.name = name or (model if isinstance(model, str) else "dense")
        self.batch_size, self.show_progress_bar = batch_size, show_progress_bar

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings of ``texts`` (cached)."""
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if todo:
                order = np.argsort([len(t) for t in todo])  # similar lengths batch together: less padding
                emb = self.encoder.encode([todo[i] for i in order], batch_size=self.batch_size,
                                          progress=self.show_progress_bar)
                for j, i in enumerate(order):
                    self._cache[todo[i]] = emb[j]
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    def fit(self, corpus: Sequence[str]) -> "DenseScorer":
        self.doc_matrix = self.embed(list(corpus))
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        return self.embed(list(queries)) @ self.doc_matrix.T


class FusedScorer:
    """Fuses several scorers with :func:`melscribe.retrieval.fusion.fuse`: ``method="rrf"`` (reciprocal rank, constant
    ``k``) or ``"weighted"`` (weighted sum of z-normalised scores)."""

    def __init__(self, scorers: Sequence[Scorer], method: str = "rrf", weights: Sequence[float] | None = None,
                 k: int = 60, name: str | None = None):
        if method not in METHODS:
            raise ValueError(f"unknown fusion method {method!r}; use one of {', '.join(METHODS)}")
        self.scorers, self.method, self.k = list(scorers), method, k
        self.weights = list(weights) if weights is not None else [1.0] * len(self.scorers)
        self.name = name or " + ".join(s.name for s in self.scorers) + f" ({method})"

    def fit(self, corpus: Sequence[str]) -> "FusedScorer":
        for s in self.scorers:
            s.fit(corpus)
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        return fuse([s.score(queries) for s in self.scorers], self.method, self.weights, self.k)


def fused_scorer(model_dir: str | os.PathLike, name: str | None = None, backend: str = "torch") -> FusedScorer:
    """The bi-encoder of ``model_dir`` fused with a lexical scorer as its ``fusion.json`` says."""
    cfg = load_fusion(model_dir)
    if cfg is None:
        raise ModelUnavailableError(f"{Path(model_dir) / FUSION_FILE} not found: train with `melscribe train` "
                                    "or run its fusion stage")
    return FusedScorer([DenseScorer(str(model_dir), backend=backend), BASELINES[cfg.lexical]()], method=cfg.method,
                       weights=cfg.weights, k=cfg.k, name=name or f"fused:{model_dir}")


class RerankScorer:
    """A first-stage scorer whose top ``depth`` documents per query are re-scored by a cross-encoder
    (raw logits); documents below the cut keep a score under every re-ranked one. Scores of (query, document)
    pairs are kept, so evaluating several seeds of one split scores each distinct pair once."""

    def __init__(self, first_stage: Scorer, cross_encoder: Reranker, depth: int = 100, name: str | None = None):
        self.first_stage, self.cross_encoder, self.depth = first_stage, cross_encoder, depth
        self.name = name or f"{first_stage.name} → cross-encoder@{depth}"
        self._seen: dict[tuple[str, str], float] = {}

    def fit(self, corpus: Sequence[str]) -> "RerankScorer":
        self.corpus = list(corpus)
        self.first_stage.fit(self.corpus)
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        first = self.first_stage.score(queries)
        depth = min(self.depth, first.shape[1])
        top = np.argsort(-first, axis=1, kind="stable")[:, :depth]
        pairs = [(q, self.corpus[j]) for q, row in zip(queries, top) for j in row]
        new = list(dict.fromkeys(p for p in pairs if p not in self._seen))
        self._seen.update(zip(new, self.cross_encoder.score_pairs(new, show_progress_bar=len(new) > 10_000).tolist()))
        logits = np.array([self._seen[p] for p in pairs], dtype=np.float32).reshape(len(queries), depth)
        out = np.full(first.shape, -1e9, dtype=np.float32)
        np.put_along_axis(out, top, logits, axis=1)
        return out


#: Named baselines for the table; each builds a fresh scorer.
BASELINES: dict[str, Callable[[], Scorer]] = {
    "tfidf": lambda: TfidfScorer(),
    # descriptors are phrases ("mellow piano melody"): word pairs tell "piano melody" from "piano" and "melody"
    "tfidf-bigrams": lambda: TfidfScorer(name="TF-IDF, words and word pairs", ngram_range=(1, 2)),
    "bm25": lambda: BM25Scorer(),
    "all-MiniLM-L6-v2": lambda: DenseScorer("all-MiniLM-L6-v2"),
    "all-MiniLM-L12-v2": lambda: DenseScorer("sentence-transformers/all-MiniLM-L12-v2", name="all-MiniLM-L12-v2"),
    "msmarco-bert-base-dot-v5": lambda: DenseScorer("sentence-transformers/msmarco-bert-base-dot-v5",
                                                    name="msmarco-bert-base-dot-v5"),
    "bert-large-cased": lambda: DenseScorer("bert-large-cased", name="bert-large-cased (mean)"),
    "mpnet-base": lambda: DenseScorer("microsoft/mpnet-base", name="mpnet-base (mean)"),
}

#: The lexical baselines: what the fusion may fuse with a bi-encoder (``fusion.lexical`` of the training settings).
LEXICAL_BASELINES = ("tfidf", "tfidf-bigrams", "bm25")


def make_scorer(spec: str) -> Scorer:
    """Build a scorer from a short spec, as used by the CLI and the table scripts.

    * a name of :data:`BASELINES` (``tfidf``, ``bm25``, ``all-MiniLM-L6-v2``, ...);
    * ``dense:<model name or folder>`` (or just an existing folder): a sentence-transformers model; a suffix
      ``@<backend>`` (``dense:PATH@onnx``, ``PATH@static``, ``fused:PATH@student``) picks the encoder backend
      (:data:`melscribe.encoding.encoder.BACKENDS`, default :data:`~melscribe.encoding.encoder.DEFAULT_BACKEND`);
    * ``rrf:<spec>+<spec>[+...]``: reciprocal-rank fusion (k = 60);
    * ``weighted:<w>*<spec>+<w>*<spec>``: weighted fusion of z-normalised scores;
    * ``rerank:[N:]<cross-encoder folder>@<first-stage spec>``: cross-encoder over the top N (default 100);
    * ``fused:<trained model folder>``: the bi-encoder fused with a lexical scorer as its ``fusion.json`` says.
    * ``clap:<name, folder or LAION .pt>`` / ``ttmr:<checkpoint>``: a joint audio–text model's text tower
      (:mod:`melscribe.audio.text_towers`).
    """
    spec = spec.strip()
    if spec in BASELINES:
        return BASELINES[spec]()
    kind, _, rest = spec.partition(":")
    if kind == "dense" and rest:
        model, backend = split_backend(rest)
        return DenseScorer(model, name=spec, backend=backend)
    if kind == "rrf" and rest:
        return FusedScorer([make_scorer(s) for s in rest.split("+")], method="rrf", name=spec)
    if kind == "weighted" and rest:
        parts = [p.partition("*") for p in rest.split("+")]
        return FusedScorer([make_scorer(s) for _, _, s in parts], method="weighted",
                           weights=[float(w) for w, _, _ in parts], name=spec)
    if kind == "fused" and rest:
        model, backend = split_backend(rest)
        return fused_scorer(model, name=spec, backend=backend)
    if kind == "rerank" and "@" in rest:
        depth, colon, tail = rest.partition(":")
        if not (colon and depth.isdigit()):
            depth, tail = "100", rest
        ce_path, _, first = tail.partition("@")
        return RerankScorer(make_scorer(first), Reranker(ce_path), depth=int(depth), name=spec)
    if kind in ("clap", "ttmr"):  # text towers of joint audio–text models (CLAP_text, TTMR_text)
        from melscribe.audio import text_towers

        return (text_towers.clap_scorer if kind == "clap" else text_towers.ttmr_scorer)(rest, name=spec)
    model, backend = split_backend(spec)
    if Path(model).expanduser().is_dir():
        return DenseScorer(str(Path(model).expanduser()), name=spec, backend=backend)
    raise InvalidRequestError(
        f"unknown scorer {spec!r}: use one of {', '.join(BASELINES)}, a model folder, dense:NAME, "
        "rrf:A+B, weighted:W*A+W*B, rerank:CROSS_ENCODER@FIRST_STAGE, clap:NAME or ttmr:PATH (dense specs take a "
        "suffix @BACKEND)")


def split_backend(spec: str) -> tuple[str, str]:
    """``"PATH@onnx"`` → ``("PATH", "onnx")``; without a known backend suffix, ``(spec, DEFAULT_BACKEND)``."""
    model, sep, backend = spec.rpartition("@")
    return (model, backend) if sep and model and backend in BACKENDS else (spec, DEFAULT_BACKEND)
