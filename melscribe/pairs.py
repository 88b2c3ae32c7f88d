"""(request, descriptor-set) pairs, built as in Epure et al. (NLP4MusA 2024), and the BeIR file layout.

For each record the matching text is split into sentences on ``". "``. For each sentence the record's
descriptors are divided into those that occur in it verbatim ("ematch", case-insensitive substring)
and the others. Per sentence, ``docs_per_query`` times, with Python's :mod:`random` seeded once per
call: ``k1 ∈ [1, |ematch|]`` ematch descriptors and ``k2 ∈ [0, min(|ematch|, |others|)]`` others are
sampled, shuffled and joined with ``", "``. That string is a relevant document of the sentence.

A sentence with no verbatim descriptor gets, as in the paper, an *empty* relevant document, which is
never in the corpus and therefore always a miss; ``drop_empty=True`` drops such sentences instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from melscribe.data import Record
from melscribe.errors import DataError
from melscribe.fileio import write_text_atomic

SENTENCE_SEPARATOR = ". "
DESCRIPTOR_SEPARATOR = ", "
EMPTY_DOC_ID = "d-empty"


def content_id(prefix: str, *parts: object) -> str:
    """A short deterministic id: ``prefix`` + the first 16 hex digits of the SHA-1 of ``parts``."""
    h = hashlib.sha1("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:16]
    return f"{prefix}-{h}"


def doc_id(text: str) -> str:
    """The id of a descriptor-set document: derived from its text only, so equal sets share an id."""
    return EMPTY_DOC_ID if not text else content_id("d", text)


def split_sentences(text: str) -> list[str]:
    """Split a caption on ``". "`` (the paper's rule), dropping empty pieces."""
    return [s.strip() for s in text.split(SENTENCE_SEPARATOR) if s.strip()]


def verbatim_descriptors(sentence: str, descriptors: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``descriptors`` into those occurring verbatim (case-insensitively) in ``sentence`` and the rest."""
    low = sentence.lower()
    ematch = [d for d in descriptors if d.lower() in low]
    others = [d for d in descriptors if d.lower() not in low]
    return ematch, others


def sample_descriptor_set(rng: random.Random, ematch: Sequence[str], others: Sequence[str]) -> str:
    """One relevant document: ``k1`` verbatim and ``k2 ≤ k1`` other descriptors, shuffled, joined by ``", "``.

    Returns ``""`` (the empty document) when nothing matches verbatim.
    """
    if not ematch:
        return ""
    k1 = rng.randint(1, len(ematch))
    k2 = rng.randint(0, min(len(ematch), len(others)))
    chosen = rng.sample(list(ematch), k1) + rng.sample(list(others), k2)
    rng.shuffle(chosen)
    return DESCRIPTOR_SEPARATOR.join(chosen)


@dataclass
class PairDataset:
    """Requests, descriptor-set corpus and relevance judgements, BeIR-style.

    ``queries`` and ``corpus`` map ids to text (dict order is creation order); ``qrels`` maps a query id
    to its relevant doc ids (``d-empty`` for the paper's empty document, absent from the corpus);
    ``query_tracks`` maps a query id to the track it came from.
    """

    queries: dict[str, str] = field(default_factory=dict)
    corpus: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    query_tracks: dict[str, str] = field(default_factory=dict)

    def pairs(self) -> list[tuple[str, str, str]]:
        """All (query id, doc id, track id) positive pairs whose document is in the corpus."""
        return [(q, d, self.query_tracks.get(q, "")) for q, rel in self.qrels.items()
                for d in rel if d in self.corpus]

    def __len__(self) -> int:
        return len(self.queries)


def build_pairs(records: Iterable[Record], seed: int = 0, docs_per_query: int = 1,
                drop_empty: bool = False) -> PairDataset:
    """Build the pairs of the paper from ``records`` (see the module docstring). Deterministic in ``seed``."""
    if docs_per_query < 1:
        raise DataError(f"docs_per_query must be ≥ 1, got {docs_per_query}")
    rng = random.Random(seed)
    ds = PairDataset()
    for rec in records:
        if not rec.descriptors:
            continue
        for i, request in enumerate(split_sentences(rec.text)):
            ematch, others = verbatim_descriptors(request, rec.descriptors)
            docs = [sample_descriptor_set(rng, ematch, others) for _ in range(docs_per_query)]
            if drop_empty and not ematch:
                continue
            qid = content_id("q", rec.source, rec.track_id, i, request, seed)
            ds.queries[qid] = request
            ds.query_tracks[qid] = rec.track_id
            rel = ds.qrels.setdefault(qid, {})
            for doc in docs:
                did = doc_id(doc)
                rel[did] = 1
                if doc:
                    ds.corpus.setdefault(did, doc)
    return ds


def track_level_pairs(queries: Iterable[Record], catalog: Iterable[Record]) -> PairDataset:
    """The track-level protocol (what ``recommend()`` meets): every catalog clip's *full* descriptor list,
    joined by ", ", is one document (identical lists are one document); each query record is one request,
    whole, whose relevant document is its own clip's list."""
    ds = PairDataset()
    for rec in catalog:
        if rec.descriptors:
            text = ", ".join(rec.descriptors)
            ds.corpus.setdefault(doc_id(text), text)
    for i, rec in enumerate(queries):
        qid = content_id("q", rec.source, rec.track_id, i, rec.text)
        ds.queries[qid] = rec.text
        ds.query_tracks[qid] = rec.track_id
        ds.qrels[qid] = {doc_id(", ".join(rec.descriptors)): 1}
    return ds


def write_beir(ds: PairDataset, folder: str | os.PathLike, split: str = "test") -> Path:
    """Write ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (each file atomically)."""
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "corpus.jsonl", "".join(
        json.dumps({"_id": d, "title": "", "text": t}, ensure_ascii=False) + "\n" for d, t in ds.corpus.items()))
    write_text_atomic(folder / "queries.jsonl", "".join(
        json.dumps({"_id": q, "text": t, "track_id": ds.query_tracks.get(q, "")}, ensure_ascii=False) + "\n"
        for q, t in ds.queries.items()))
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, rel in ds.qrels.items() for d, s in rel.items()]
    write_text_atomic(folder / "qrels" / f"{split}.tsv", "\n".join(rows) + "\n")
    return folder


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"missing BeIR file {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    return out


def read_beir(folder: str | os.PathLike, split: str = "test") -> PairDataset:
    """Read a BeIR folder written by :func:`write_beir` (or by other BeIR tools)."""
    folder = Path(folder)
    ds = PairDataset()
    for row in _read_jsonl(folder / "corpus.jsonl"):
        title = row.get("title") or ""
        ds.corpus[str(row["_id"])] = f"{title} {row['text']}".strip() if title else row["text"]
    for row in _read_jsonl(folder / "queries.jsonl"):
        ds.queries[str(row["_id"])] = row["text"]
        if row.get("track_id"):
            ds.query_tracks[str(row["_id"])] = row["track_id"]
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise DataError(f"missing BeIR file {qrels_path}")
    lines = qrels_path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            raise DataError(f"{qrels_path}:{n}: expected 3 tab-separated columns, got {len(cols)}")
        ds.qrels.setdefault(cols[0], {})[cols[1]] = int(cols[2])
    return ds
