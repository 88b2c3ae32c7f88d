"""Descriptor sets in Milvus (:class:`MilvusStore`): the store of a service whose catalog or traffic outgrows
one process.

The same ``pymilvus`` ``MilvusClient`` code talks to **Milvus Lite** (embedded, a local ``*.db`` file, no
server: ``--store milvus:PATH.db``) and to a Milvus server or cluster (``--store milvus://HOST:PORT``). A build
of prefix ``P`` (default ``melscribe``) is three collections:

- ``P_sets``: one row per unique descriptor-set text (``id`` = the row of the set in the catalog's
  ``descriptor_sets``): its dense embedding (``vector``, the same float32 embedding the faiss index holds,
  from :mod:`melscribe.serve.embedding_cache`), a **sparse vector of melscribe's own TF-IDF** (``sparse``: the
  lexical scorer the model's fusion uses, fitted in the process on the sets; Milvus' built-in BM25 computes
  its statistics per segment, so its scores would differ between Lite and a cluster), the set's
  ``descriptors`` and its tracks' descriptors (``track_descriptors``: every descriptor of every track
  carrying the set) as ARRAY fields, the ``text`` and how many leading descriptors the encoder ``read``;
- ``P_vocabulary``: each descriptor of the vocabulary and its embedding (to explain a match);
- ``P_meta``: one row, the JSON identity of the build (format version, model name and probe embedding,
  catalog fingerprint, dimension, row count, the sparse vectors' scorer): checked against the encoder and the
  catalog on open, as the faiss index's ``meta.json`` is.

Filters run inside the engine (:class:`~melscribe.serve.store.SetFilter`, :func:`filter_expression`). On a
server, a request's excluded descriptors are ``not array_contains_any(descriptors, …)`` and its required ones
``array_contains_all(track_descriptors, …)``, on ``INVERTED`` indexes of those ARRAY fields. Milvus Lite (3.x, pure
Python) evaluates ``array_contains*`` row by row in Python (4.3 s a search at 100k sets) and indexes no ARRAY
field, but runs ``like`` vectorised (pyarrow): there the same filters are ``not (tags like "%, metal, %" or …)`` and
``track_tags like "%, rap, %" and …`` on two VARCHAR fields holding the same descriptors, each between ``", "``
(which no descriptor holds: a set's text is its descriptors joined by ``", "``) — the same rows, ~30 times faster
for one descriptor. Each excluded descriptor still costs Lite a pass over every row, so a long exclusion (a request
rejecting "vocals" excludes 1,336 descriptors) goes past :data:`LITE_FILTER_BUDGET`: then Lite searches without it
for more rows and the store drops those carrying an excluded descriptor (a server keeps every filter in the engine).
Up to :data:`FLAT_MAX` sets the dense index is exact (``FLAT``); above, ``HNSW``.

Milvus Lite builds a segment's vector index and compacts segments in a background thread of the same process after
each flush, and its sparse index on the first sparse search: :meth:`MilvusStore.build` waits for that background
work and :meth:`MilvusStore.open` makes the first sparse search, so no request pays for either.

A build writes collections named ``…__building`` and renames them into place, the identity last, after
dropping the old identity first: a build killed midway leaves no identity, and the next open rebuilds (or,
without ``auto_rebuild``, refuses). Collections under the prefix that melscribe did not make are never
dropped: the open is refused, naming them.

For a cluster, ingest at scale with ``pymilvus.bulk_writer.RemoteBulkWriter`` (Parquet files written to the
cluster's object store, the fields :meth:`MilvusStore._create_sets` makes) and ``bulk_import``, then write the identity row
as :meth:`MilvusStore.build` does; batched inserts (:data:`INSERT_BATCH` rows) suit Milvus Lite and a
standalone server.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from melscribe.errors import IndexCorruptError, InvalidRequestError, ModelUnavailableError, StaleIndexError
from melscribe.serve.index import check_build, vocabulary_scores
from melscribe.serve.store import SetFilter

log = logging.getLogger(__name__)

FORMAT = "melscribe-milvus"
STORE_VERSION = 2
FLAT_MAX = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
HNSW_EF_SEARCH = 512
INSERT_BATCH = 2_000
#: On Milvus Lite, each excluded descriptor costs the engine a ``like`` pass over every row (~0.5 µs a row: 55 ms
#: at 100k sets): an exclusion is filtered by the engine while (excluded descriptors × rows) stays within this
#: budget (~250 ms), else applied here to an unfiltered search of :data:`OVERFETCH` times more rows
#: (:meth:`MilvusStore._search_excluding_here`). A server filters every exclusion (on its ARRAY index).
LITE_FILTER_BUDGET = 500_000
OVERFETCH = 4
#: Milvus refuses an empty sparse vector: a set without any lexical term gets this dimension, which no
#: request's vector has, so its lexical score stays 0.
EMPTY_TERM = 2**32 - 2
#: Milvus' limit on one search's ``limit``.
MAX_LIMIT = 16_384
BUILDING = "__building"
_SETS_FIELDS = {"id", "vector", "sparse", "descriptors", "track_descriptors", "tags", "track_tags", "text", "read"}
#: Between descriptors in the ``tags`` fields, and around them: a set's text joins its descriptors by it, so no
#: descriptor holds it.
SEPARATOR = ", "
#: Milvus' longest VARCHAR.
MAX_VARCHAR = 65_535


def connect(address: str):
    """A ``MilvusClient`` for ``address``: a Milvus Lite ``*.db`` file (its folder made if missing) or an
    ``http://HOST:PORT`` server. :class:`ModelUnavailableError` says when ``pymilvus`` is missing."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise ModelUnavailableError("the Milvus store needs pymilvus and milvus-lite: pip install "
                                    "'melscribe[milvus]'") from None
    if address.startswith(("http://", "https://")):
        return MilvusClient(uri=address)
    path = Path(address).expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    return MilvusClient(str(path))


def is_lite(address: str) -> bool:
    """Whether ``address`` is a Milvus Lite database (a local file) rather than a server."""
    return not address.startswith(("http://", "https://"))


def tags(descriptors: Sequence[str]) -> str:
    """``descriptors`` as one ``tags`` string: each between :data:`SEPARATOR` (``", a, b, "``)."""
    return SEPARATOR + SEPARATOR.join(descriptors) + SEPARATOR if descriptors else ""


def _like_pattern(descriptor: str) -> str:
    """A ``like`` pattern matching a ``tags`` string that holds ``descriptor`` (``\\``, ``%``, ``_`` escaped)."""
    escaped = descriptor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{SEPARATOR}{escaped}{SEPARATOR}%"


def _literal(values: Sequence[str]) -> str:
    """A list of strings as a Milvus expression literal (JSON string escapes)."""
    return json.dumps(sorted(values), ensure_ascii=False)


def filter_expression(where: SetFilter | None, lite: bool = False) -> str:
    """The Milvus boolean expression of ``where`` (``""`` for none): on the ARRAY fields (a server, which indexes
    them), or with ``lite`` as ``like`` on the ``tags`` fields (Milvus Lite, which evaluates ``array_contains*``
    row by row in Python; module doc). Both keep the same rows."""
    if not where:
        return ""
    parts = []
    if lite:
        if where.exclude:
            parts.append("not (" + " or ".join(f"tags like {json.dumps(_like_pattern(d), ensure_ascii=False)}"
                                               for d in sorted(where.exclude)) + ")")
        parts += [f"track_tags like {json.dumps(_like_pattern(d), ensure_ascii=False)}" for d in sorted(where.require)]
        return " and ".join(parts)
    if where.exclude:
        parts.append(f"not array_contains_any(descriptors, {_literal(where.exclude)})")
    if where.require:
        parts.append(f"array_contains_all(track_descriptors, {_literal(where.require)})")
    return " and ".join(parts)


class MilvusStore:
    """The descriptor sets of one catalog under one model in Milvus collections (module doc). Made by
    :meth:`build` or :meth:`open`; serves :class:`~melscribe.serve.recommend.Recommender` through the
    :class:`~melscribe.serve.store.DescriptorStore` interface. Thread-safe for readers."""

    kind = "milvus"
    #: it evaluates :class:`~melscribe.serve.store.SetFilter` in the engine, and one search returns at most this
    #: many rows: the recommender searches on rather than scanning the passing tracks' sets itself
    prunes = True
    max_search = MAX_LIMIT

    def __init__(self, client, address: str, prefix: str, meta: dict[str, Any], texts: list[str], read: dict[int, int],
                 vocabulary: list[str], vocabulary_embeddings: np.ndarray):
        self.client, self.address, self.prefix, self.meta = client, address, prefix, meta
        self.texts, self.read = texts, read
        self.vocabulary, self.vocabulary_embeddings = vocabulary, vocabulary_embeddings
        self.model_name, self.fingerprint = meta["model"], meta["fingerprint"]
        self.model_probe = np.asarray(meta["probe"], dtype=np.float32)
        self.encoded_alone = bool(meta["encoded_alone"])
        self.sparse = meta.get("sparse")  # the lexical scorer of the sparse vectors, or None
        self._vocab_rows = {d: i for i, d in enumerate(vocabulary)}
        self.path = address
        self.lite = is_lite(address)

    # ---- names ------------------------------------------------------------------------------------------
    @staticmethod
    def collections(prefix: str, suffix: str = "") -> tuple[str, str, str]:
        """The sets, vocabulary and identity collections of ``prefix``."""
        return f"{prefix}_sets{suffix}", f"{prefix}_vocabulary{suffix}", f"{prefix}_meta{suffix}"

    # ---- build ------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, address: str, texts: Sequence[str], encoder, *, fingerprint: str, vocabulary: Sequence[str],
              track_descriptors: Sequence[Sequence[str]], lexical=None, lexical_name: str | None = None,
              prefix: str = "melscribe", client=None, embeddings: np.ndarray | None = None,
              vocabulary_embeddings: np.ndarray | None = None) -> "MilvusStore":
        """Embed ``texts`` (unique descriptor-set texts, row = id) and ``vocabulary`` with ``encoder`` exactly
        as the faiss index does, and write them as the collections of ``prefix`` (replacing a melscribe build
        there; refusing collections melscribe did not make). ``track_descriptors[i]``: the descriptors of all
        tracks carrying set ``i``. ``lexical``: a fitted TF-IDF scorer (``doc_matrix``) over ``texts`` whose
        rows become the sparse vectors, named ``lexical_name``; ``None``: no sparse field. ``embeddings`` and
        ``vocabulary_embeddings``: precomputed L2-normalised embeddings by ``encoder`` (benchmarks), else
        computed here."""
        from melscribe.serve import embedding_cache
        from melscribe.serve.index import descriptors_read

        if not len(texts):
            raise InvalidRequestError("nothing to store: no descriptor sets")
        if len(track_descriptors) != len(texts):
            raise InvalidRequestError(f"{len(track_descriptors)} track-descriptor lists for {len(texts)} sets")
        client = client or connect(address)
        cls._refuse_foreign(client, prefix)
        chunks = None
        if embeddings is None:
            embeddings, chunks = embedding_cache.embed(encoder, list(texts))
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(texts), encoder.dim):
            raise InvalidRequestError(f"embeddings have shape {embeddings.shape}; expected ({len(texts)}, {encoder.dim})")
        vocab_emb = vocabulary_embeddings
        if vocab_emb is None:
            vocab_emb = encoder.encode(list(vocabulary), progress=True) if len(vocabulary) else \
                np.zeros((0, encoder.dim), np.float32)
        # as the faiss index: which sets the encoder read only in part (not known for precomputed embeddings)
        read = descriptors_read(list(texts), encoder) if chunks is not None else {}
        meta = {"format": FORMAT, "version": STORE_VERSION, "model": encoder.name, "probe": encoder.probe.tolist(),
                "fingerprint": fingerprint, "dim": int(encoder.dim), "count": len(texts),
                "encoded_alone": bool(encoder.encodes_each_text_alone),
                "sparse": lexical_name if lexical is not None else None,
                "index": "FLAT" if len(texts) <= FLAT_MAX else "HNSW"}
        sets, vocab, ident = cls.collections(prefix, BUILDING)
        for name in (sets, vocab, ident):
            if client.has_collection(name):
                client.drop_collection(name)
        cls._create_sets(client, sets, texts, track_descriptors, meta, lexical is not None, lite=is_lite(address))
        doc_matrix = lexical.doc_matrix.tocsr() if lexical is not None else None
        with tqdm(total=len(texts), desc="milvus: inserting descriptor sets", unit="set",
                  disable=len(texts) < 10 * INSERT_BATCH) as bar:
            for start in range(0, len(texts), INSERT_BATCH):
                stop = min(start + INSERT_BATCH, len(texts))
                rows = []
                for i in range(start, stop):
                    descriptors, tracks = texts[i].split(SEPARATOR), sorted(set(track_descriptors[i]))
                    row = {"id": i, "vector": embeddings[i].tolist(), "text": texts[i],
                           "descriptors": descriptors, "track_descriptors": tracks,
                           "tags": tags(descriptors), "track_tags": tags(tracks), "read": int(read.get(i, 0))}
                    if doc_matrix is not None:
                        lo, hi = doc_matrix.indptr[i], doc_matrix.indptr[i + 1]
                        terms = dict(zip(doc_matrix.indices[lo:hi].tolist(), doc_matrix.data[lo:hi].tolist()))
                        row["sparse"] = terms or {EMPTY_TERM: 1.0}
                    rows.append(row)
                client.insert(sets, rows)
                bar.update(stop - start)
        cls._create_simple(client, vocab, int(encoder.dim), "descriptor",
                           [{"id": i, "descriptor": d, "vector": vocab_emb[i].tolist()} for i, d in enumerate(vocabulary)])
        cls._create_simple(client, ident, 2, "json", [{"id": 0, "json": json.dumps(meta), "vector": [0.0, 0.0]}])
        for name in (sets, vocab, ident):
            client.flush(name)
        if is_lite(address):
            _wait_for_lite_maintenance(address, (sets, vocab, ident))
        cls._publish(client, prefix)
        if chunks is not None:
            embedding_cache.clear(chunks)
        log.info("stored %d descriptor sets in Milvus at %s (prefix %s)", len(texts), address, prefix)
        return cls.open(address, prefix=prefix, client=client)

    @staticmethod
    def _create_sets(client, name: str, texts: Sequence[str], track_descriptors, meta: dict, sparse: bool,
                     lite: bool) -> None:
        from pymilvus import DataType

        longest_set = max(len(t.split(", ")) for t in texts)
        longest_tracks = max((len(set(d)) for d in track_descriptors), default=1)
        longest_descriptor = max(len(d.encode()) for t in texts for d in t.split(", "))
        longest_descriptor = max([longest_descriptor] + [len(d.encode()) for ds in track_descriptors for d in ds])
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=meta["dim"])
        if sparse:
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("text", DataType.VARCHAR, max_length=max(1, max(len(t.encode()) for t in texts)))
        for field, capacity in (("descriptors", longest_set), ("track_descriptors", max(1, longest_tracks))):
            schema.add_field(field, DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=min(4096, capacity),
                             max_length=max(1, longest_descriptor))
        longest_tags = max(len(tags(sorted(set(ds))).encode()) for ds in track_descriptors)
        longest_tags = max([longest_tags] + [len(tags(t.split(SEPARATOR)).encode()) for t in texts])
        if longest_tags > MAX_VARCHAR:
            raise InvalidRequestError(f"a descriptor set's tracks carry {longest_tags} bytes of descriptors: more than "
                                      f"Milvus' {MAX_VARCHAR} a field holds")
        for field in ("tags", "track_tags"):
            schema.add_field(field, DataType.VARCHAR, max_length=max(1, longest_tags))
        schema.add_field("read", DataType.INT32)
        index = client.prepare_index_params()
        if not lite:  # a server indexes ARRAY fields for array_contains*; Milvus Lite indexes no ARRAY field
            for field in ("descriptors", "track_descriptors"):
                index.add_index(field, index_type="INVERTED")
        if meta["index"] == "FLAT":
            index.add_index("vector", index_type="FLAT", metric_type="IP")
        else:
            index.add_index("vector", index_type="HNSW", metric_type="IP",
                            params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})
        if sparse:
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        client.create_collection(name, schema=schema, index_params=index)

    @staticmethod
    def _create_simple(client, name: str, dim: int, text_field: str, rows: list[dict]) -> None:
        from pymilvus import DataType

        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(text_field, DataType.VARCHAR, max_length=65_535)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")
        client.create_collection(name, schema=schema, index_params=index)
        for start in range(0, len(rows), INSERT_BATCH):
            client.insert(name, rows[start:start + INSERT_BATCH])

    @classmethod
    def _publish(cls, client, prefix: str) -> None:
        """Put a finished build in place: the old identity dropped first, the new one renamed last."""
        final, building = cls.collections(prefix), cls.collections(prefix, BUILDING)
        if client.has_collection(final[2]):
            client.drop_collection(final[2])
        for old in final[:2]:
            if client.has_collection(old):
                client.drop_collection(old)
        for new, old in zip(building, final):
            client.rename_collection(new, old)

    @classmethod
    def _refuse_foreign(cls, client, prefix: str) -> None:
        """Refuse collections of ``prefix`` that melscribe did not make (never dropped)."""
        sets, vocab, ident = cls.collections(prefix)
        foreign = []
        if client.has_collection(sets):
            fields = {f["name"] for f in client.describe_collection(sets)["fields"]}
            if not fields <= _SETS_FIELDS or "text" not in fields:
                foreign.append(sets)
        if client.has_collection(ident):
            try:
                cls._read_meta(client, ident)
            except IndexCorruptError:
                foreign.append(ident)
        if foreign:
            raise InvalidRequestError(f"the Milvus collection(s) {', '.join(foreign)} were not made by melscribe: "
                                      "they are left untouched; choose another collection prefix or database")

    # ---- open -------------------------------------------------------------------------------------------
    @staticmethod
    def _read_meta(client, name: str) -> dict[str, Any]:
        client.load_collection(name)
        rows = client.query(name, filter="id == 0", output_fields=["json"])
        try:
            meta = json.loads(rows[0]["json"])
        except (IndexError, KeyError, TypeError, ValueError):
            raise IndexCorruptError(f"the Milvus collection {name} holds no melscribe identity") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexCorruptError(f"the Milvus collection {name} holds no melscribe identity")
        return meta

    @classmethod
    def exists(cls, address: str, *, prefix: str = "melscribe", client=None) -> bool:
        """Whether any collection of ``prefix`` is at ``address`` (a build, finished or not, or a foreign one)."""
        client = client or connect(address)
        return any(client.has_collection(name) for name in cls.collections(prefix))

    @classmethod
    def open(cls, address: str, *, prefix: str = "melscribe", client=None) -> "MilvusStore":
        """Open the build of ``prefix`` at ``address``. :class:`IndexCorruptError` when there is none, it is
        incomplete (a build killed midway) or its rows disagree with its identity; :class:`StaleIndexError`
        when its format is older."""
        client = client or connect(address)
        sets, vocab, ident = cls.collections(prefix)
        cls._refuse_foreign(client, prefix)
        if not client.has_collection(ident):
            what = "an incomplete build (killed midway?)" if client.has_collection(sets) else "no descriptor sets"
            raise IndexCorruptError(f"the Milvus store {address} (prefix {prefix}) holds {what}")
        meta = cls._read_meta(client, ident)
        if meta.get("version") != STORE_VERSION:
            raise StaleIndexError(f"the Milvus store {address} (prefix {prefix}) has format version "
                                  f"{meta.get('version')}, not {STORE_VERSION}: rebuild it")
        for name in (sets, vocab):
            if not client.has_collection(name):
                raise IndexCorruptError(f"the Milvus store {address} lacks the collection {name}: rebuild it")
            client.load_collection(name)
        n = meta["count"]
        texts: list[str | None] = [None] * n
        read: dict[int, int] = {}
        for row in _scan(client, sets, ["id", "text", "read"]):
            i = int(row["id"])
            if not 0 <= i < n:
                raise IndexCorruptError(f"the Milvus collection {sets} holds row {i} outside its {n} rows: rebuild it")
            texts[i] = row["text"]
            if row["read"]:
                read[i] = int(row["read"])
        missing = sum(t is None for t in texts)
        if missing:
            raise IndexCorruptError(f"the Milvus collection {sets} lacks {missing} of its {n} descriptor sets: rebuild it")
        if meta.get("sparse") is not None:
            # Milvus Lite builds a segment's sparse index on the first sparse search: made here, not by a request
            client.search(sets, data=[{EMPTY_TERM: 1.0}], anns_field="sparse", limit=1,
                          search_params={"metric_type": "IP", "params": {}})
        vocab_rows = sorted(_scan(client, vocab, ["id", "descriptor", "vector"]), key=lambda r: r["id"])
        vocabulary = [r["descriptor"] for r in vocab_rows]
        vectors = np.asarray([r["vector"] for r in vocab_rows], dtype=np.float32).reshape(len(vocab_rows), meta["dim"])
        return cls(client, address, prefix, meta, texts, read, vocabulary, vectors)

    # ---- the store interface ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return f"MilvusStore({self.address!r}, prefix={self.prefix!r}, {len(self)} sets)"

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.meta["dim"])

    def _hits(self, data: list, field: str, k: int, where: SetFilter | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows of ``field`` for each of ``data`` among those ``where`` leaves (module doc: on Milvus
        Lite, a long exclusion is applied here to an unfiltered search of more rows)."""
        k = min(int(k), len(self), MAX_LIMIT)
        scores = np.full((len(data), k), -np.inf, dtype=np.float32)
        rows = np.full((len(data), k), -1, dtype=np.int64)
        if k <= 0 or not data:
            return scores, rows
        if self.lite and where and len(where.exclude) * len(self) > LITE_FILTER_BUDGET:
            results = self._search_excluding_here(data, field, k, where)
        else:
            results = self._engine_search(data, field, k, where)
        for q, hits in enumerate(results):
            for j, (score, row) in enumerate(hits[:k]):
                scores[q, j], rows[q, j] = score, row
        return scores, rows

    def _engine_search(self, data: list, field: str, k: int, where: SetFilter | None) -> list[list[tuple[float, int]]]:
        """One Milvus search: ``(score, row)`` best first for each of ``data``, ``where`` evaluated by the engine."""
        params = {} if field != "vector" or self.meta["index"] == "FLAT" else {"ef": max(HNSW_EF_SEARCH, 2 * k)}
        results = self.client.search(self.collections(self.prefix)[0], data=data, anns_field=field, limit=k,
                                     filter=filter_expression(where, self.lite),
                                     search_params={"metric_type": "IP", "params": params})
        return [[(hit["distance"], hit["id"]) for hit in hits] for hits in results]

    def _search_excluding_here(self, data: list, field: str, k: int, where: SetFilter) -> list[list[tuple[float, int]]]:
        """Milvus Lite with an exclusion over :data:`LITE_FILTER_BUDGET` (a request that rejects "vocals" excludes
        1,336 descriptors: 46 s a search at 100k sets): the engine searches without the exclusion (``require``
        still in it) for :data:`OVERFETCH` times more rows, as often as needed, and the rows carrying an excluded
        descriptor are dropped here, from the sets' texts. Past :data:`MAX_LIMIT` rows the engine filters after
        all."""
        engine_where = SetFilter(require=where.require) if where.require else None
        exclude = where.exclude
        fetch = k
        while True:
            fetch = min(len(self), MAX_LIMIT, OVERFETCH * fetch)
            results = self._engine_search(data, field, fetch, engine_where)
            kept = [[(score, row) for score, row in hits if exclude.isdisjoint(self.texts[row].split(SEPARATOR))]
                    for hits in results]
            if all(len(hits) >= k or len(raw) < fetch for hits, raw in zip(kept, results)) or fetch >= len(self):
                return kept
            if fetch >= MAX_LIMIT:
                return self._engine_search(data, field, k, where)

    def search(self, queries: np.ndarray, k: int, *, where: SetFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for each query by inner product ``(scores, rows)``, among the sets ``where``
        leaves (evaluated by Milvus); rows ``-1`` past the last hit."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InvalidRequestError(f"query vectors of shape {queries.shape}: expected dimension {self.dim}")
        if not np.isfinite(queries).all():
            raise InvalidRequestError("query vectors must be finite: they hold NaN or infinite values")
        return self._hits(queries.tolist(), "vector", k, where)

    def lexical_search(self, terms: np.ndarray, weights: np.ndarray, k: int, *,
                       where: SetFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for one request's sparse TF-IDF vector (``terms``, ``weights``: the scorer's
        :meth:`~melscribe.retrieval.scorers.TfidfScorer.query_vector`), by Milvus' sparse index; rows with a
        score of 0 are left out."""
        if self.sparse is None:
            raise InvalidRequestError(f"{self!r} was built without sparse vectors")
        if not len(terms):
            return np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64)
        scores, rows = self._hits([dict(zip(terms.tolist(), weights.tolist()))], "sparse", k, where)
        keep = (rows[0] >= 0) & (scores[0] > 0)
        return scores[:, keep], rows[:, keep]

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored float32 embeddings of ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        if not len(rows):
            return out
        sets = self.collections(self.prefix)[0]
        unique = np.unique(rows)
        found: dict[int, list[float]] = {}
        for start in range(0, len(unique), MAX_LIMIT):
            ids = unique[start:start + MAX_LIMIT].tolist()
            for r in self.client.get(sets, ids=ids, output_fields=["vector"]):
                found[int(r["id"])] = r["vector"]
        missing = [int(r) for r in unique if int(r) not in found]
        if missing:
            raise IndexCorruptError(f"the Milvus collection {sets} lacks rows {missing[:5]}: rebuild it")
        for i, r in enumerate(rows.tolist()):
            out[i] = found[r]
        return out

    def descriptor_scores(self, query: np.ndarray, descriptors: Sequence[str]) -> list[float | None]:
        """Cosine similarity of ``query`` to each descriptor; ``None`` for one outside the vocabulary."""
        return vocabulary_scores(self._vocab_rows, self.vocabulary_embeddings, query, descriptors)

    def descriptors_read(self, row: int, descriptors: Sequence[str]) -> Sequence[str]:
        """The leading ``descriptors`` of row ``row``'s set that the encoder read."""
        return descriptors[: self.read.get(row, len(descriptors))]

    def check(self, encoder=None, fingerprint: str | None = None) -> None:
        """Raise :class:`StaleIndexError` if the build is of another model or catalog (the faiss index's checks,
        :func:`~melscribe.serve.index.check_build`)."""
        check_build(self, encoder, fingerprint, f"the Milvus store {self.address} (prefix {self.prefix})",
                    "`melscribe index build --store ...`")

    def info(self) -> dict[str, Any]:
        """What the store holds and how it was built, as JSON values."""
        return {"path": self.address, "kind": self.kind, "prefix": self.prefix, "index": self.meta["index"],
                "descriptor_sets": len(self), "vocabulary": len(self.vocabulary), "dim": self.dim,
                "model": self.model_name, "catalog_fingerprint": self.fingerprint, "sparse": self.sparse,
                "encoded_alone": self.encoded_alone, "version": self.meta["version"]}


def _wait_for_lite_maintenance(address: str, names: Sequence[str]) -> None:
    """Wait until Milvus Lite has built the vector indexes of the segments that flushing ``names`` made and
    compacted them: it does so in a background thread of this process, and a request arriving meanwhile searches
    unindexed segments by brute force, competing for the interpreter with the index build, or waits on the
    compaction's lock. Milvus Lite 3.x answers no request for this (its index state always says finished):
    its collections' own drain is called, and nothing is waited for where that is missing."""
    try:
        from milvus_lite.server_manager import server_manager_instance

        db = server_manager_instance._servers[os.path.abspath(Path(address).expanduser())][1]
        for name in names:
            db.get_collection(name)._wait_for_bg()
    except (ImportError, AttributeError, KeyError, TypeError, IndexError) as e:  # another Milvus Lite
        log.debug("could not wait for Milvus Lite's background index build: %r", e)


def _scan(client, name: str, fields: list[str], batch: int = 8_192):
    """Every row of collection ``name`` (its ``fields``), in batches."""
    quiet = logging.getLogger("pymilvus")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # Milvus Lite has no server timestamp: the iterator warns, harmlessly
    try:
        iterator = client.query_iterator(name, batch_size=batch, output_fields=fields)
    finally:
        quiet.setLevel(level)
    try:
        while True:
            rows = iterator.next()
            if not rows:
                return
            yield from rows
    finally:
        iterator.close()
