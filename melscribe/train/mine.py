"""GPL step 2, stage ``mine``: hard negatives. Retrievers rank the descriptor-set corpus for every request;
their lists are merged (round-robin, best ranks first) and every positive of the request is excluded.

A miner is ``"bm25"`` (bm25s) or a sentence-transformers model name/path (dense, searched exactly with
faiss). The paper used msmarco-distilbert-base-v3 and msmarco-MiniLM-L-6-v3; the offline preset mines with
the run's MNRL bi-encoder (``"mnrl"``, the retriever the teacher re-ranks) and BM25.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from melscribe.pairs import PairDataset


def dense_top_k(model_name: str, queries: Sequence[str], corpus: Sequence[str], depth: int,
                batch_size: int = 64) -> np.ndarray:
    """Indices of the ``depth`` nearest documents per query by cosine similarity (faiss, exact)."""
    import faiss

    from melscribe.retrieval.scorers import DenseScorer

    scorer = DenseScorer(model_name, batch_size=batch_size, show_progress_bar=True)
    docs = scorer.embed(list(corpus))
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs)
    _, ids = index.search(scorer.embed(list(queries)), depth)
    return ids


def bm25_top_k(queries: Sequence[str], corpus: Sequence[str], depth: int, chunk: int = 512) -> np.ndarray:
    """Indices of the ``depth`` best BM25 documents per query (-1 where a document scores 0)."""
    from melscribe.retrieval.scorers import BM25Scorer

    scorer = BM25Scorer().fit(corpus)
    out = np.full((len(queries), depth), -1, dtype=np.int64)
    for start in tqdm(range(0, len(queries), chunk), desc="BM25 mining", leave=False):
        scores = scorer.score(queries[start:start + chunk])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        out[start:start + chunk] = np.where(np.take_along_axis(scores, top, axis=1) > 0, top, -1)
    return out


def mine_negatives(ds: PairDataset, miners: Sequence[str], depth: int = 50, negatives_per_query: int = 10,
                   query_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Hard negatives per query id (all queries, or ``query_ids``): the merged top ``depth`` of each miner,
    positives excluded, the first ``negatives_per_query`` kept. Deterministic for fixed models and data."""
    qids, doc_ids = list(query_ids if query_ids is not None else ds.queries), list(ds.corpus)
    queries, corpus = [ds.queries[q] for q in qids], [ds.corpus[d] for d in doc_ids]
    depth = min(depth, len(doc_ids))
    rankings = []
    for miner in miners:
        tqdm.write(f"mining with {miner}")
        rankings.append(bm25_top_k(queries, corpus, depth) if miner == "bm25"
                        else dense_top_k(miner, queries, corpus, depth))
    negatives: dict[str, list[str]] = {}
    for i, q in enumerate(qids):
        positives = ds.qrels.get(q, {})
        merged: dict[str, None] = {}
        for rank in range(depth):
            for ranking in rankings:
                j = ranking[i, rank]
                if j >= 0 and doc_ids[j] not in positives:
                    merged.setdefault(doc_ids[j], None)
            if len(merged) >= negatives_per_query:
                break
        negatives[q] = list(merged)[:negatives_per_query]
    return negatives
