"""Finding, building and opening the store a :class:`~melscribe.serve.recommend.Recommender` reads
(:mod:`melscribe.serve.store`): the faiss index cached per model and catalog under ``$MELSCRIBE_HOME/indexes``,
or a Milvus store; either built when absent and rebuilt when stale or corrupt (unless told not to)."""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

from melscribe.config import home_dir
from melscribe.encoding.encoder import TextEncoder
from melscribe.errors import IndexCorruptError, InvalidRequestError, StaleIndexError
from melscribe.fileio import check_replaceable, os_error_reason
from melscribe.retrieval.scorers import BASELINES
from melscribe.serve.catalog import Catalog
from melscribe.serve.columnar_catalog import ColumnarCatalog, open_catalog
from melscribe.serve.index import META_FILE as INDEX_META_FILE, DescriptorIndex
from melscribe.serve.ray_embedding import ENGINES, embed_with_ray

log = logging.getLogger(__name__)

#: The lexical scorers whose document vectors a Milvus store keeps as sparse vectors (TF-IDF: a dot product of
#: fixed vectors; BM25's query side is not), and the one it keeps when no fusion names one.
SPARSE_LEXICAL = ("tfidf", "tfidf-bigrams")
DEFAULT_SPARSE = "tfidf-bigrams"


def index_cache_dir(model_name: str, fingerprint: str, kind: str = "auto") -> Path:
    """Where the index of a catalog (by fingerprint) under a model is cached: ``<home>/indexes/<hash>``.
    ``model_name``: the encoder's name (:func:`melscribe.encoding.encoder.encoder_name`, which tells apart the
    backends whose embeddings differ)."""
    key = hashlib.sha256(f"{model_name}\0{fingerprint}\0{kind}".encode()).hexdigest()[:16]
    return home_dir() / "indexes" / key


def load_catalog(catalog: Catalog | ColumnarCatalog | str | os.PathLike | None,
                 data_dir: str | os.PathLike | None = None) -> Catalog | ColumnarCatalog:
    """``catalog`` itself, a catalog file (:func:`~melscribe.serve.columnar_catalog.open_catalog`: columnar when
    large), or (``None``) all of MusicCaps from the data directory."""
    if isinstance(catalog, (Catalog, ColumnarCatalog)):
        return catalog
    return Catalog.from_musiccaps(data_dir) if catalog is None else open_catalog(catalog)


def track_descriptors(catalog: Catalog, texts: Sequence[str]) -> list[list[str]]:
    """For each descriptor-set text, every descriptor of every track carrying it (what a store prunes
    ``require_descriptors`` on, :class:`~melscribe.serve.store.SetFilter`)."""
    ids = catalog.descriptor_sets
    return [sorted(set().union(*(catalog.track(t).descriptors for t in ids[text]))) for text in texts]


def build_milvus_store(catalog: Catalog, encoder: TextEncoder, address: str, *, lexical_name: str | None = None,
                       prefix: str = "melscribe", client=None):
    """Embed the descriptor sets and vocabulary of ``catalog`` with ``encoder`` and write them to the Milvus
    store at ``address`` (:class:`~melscribe.serve.milvus_store.MilvusStore`), with sparse vectors of the
    lexical scorer ``lexical_name`` when it is a TF-IDF one."""
    from melscribe.serve.milvus_store import MilvusStore

    texts = catalog.set_texts()
    lexical = BASELINES[lexical_name]().fit(texts) if lexical_name in SPARSE_LEXICAL else None
    return MilvusStore.build(address, texts, encoder, fingerprint=catalog.fingerprint(),
                             vocabulary=catalog.vocabulary(), track_descriptors=track_descriptors(catalog, texts),
                             lexical=lexical, lexical_name=lexical_name if lexical is not None else None, prefix=prefix,
                             client=client)


def build_index(catalog: Catalog, encoder: TextEncoder, folder: str | os.PathLike, kind: str = "auto", *,
                engine: str = "local", ray_address: str | None = None, ray_workers: int | None = None) -> DescriptorIndex:
    """Embed the descriptor sets and vocabulary of ``catalog`` with ``encoder``, index them, save to ``folder``
    (which must be absent, empty or an index: checked before any encoding, :func:`melscribe.fileio.check_replaceable`).
    ``engine``: ``local`` embeds in this process; ``ray`` first embeds the descriptor sets on Ray Data into the
    embedding cache, which the build then reads (:func:`melscribe.serve.ray_embedding.embed_with_ray`: a local
    Ray, or the cluster at ``ray_address``, with ``ray_workers`` actors)."""
    if engine not in ENGINES:
        raise InvalidRequestError(f"unknown embedding engine {engine!r}; choose one of {', '.join(ENGINES)}")
    check_replaceable(Path(folder).expanduser(), INDEX_META_FILE, "index")
    texts = catalog.set_texts()
    if engine == "ray":
        embed_with_ray(encoder, texts, address=ray_address, workers=ray_workers)
    index = DescriptorIndex.build(texts, encoder, fingerprint=catalog.fingerprint(),
                                  vocabulary=catalog.vocabulary(), kind=kind)
    try:
        index.save(folder)
    except OSError as e:  # the work is not lost: the index serves from memory
        warnings.warn(f"could not save the index to {folder}: {os_error_reason(e)}; serving it from memory (the "
                      "next start builds it again: free space, or set MELSCRIBE_HOME / --index-dir to a writable "
                      "folder)", stacklevel=2)
        return index
    log.info("saved the %s index of %d descriptor sets to %s", index.kind, len(index), folder)
    return index


def open_index(catalog: Catalog, encoder: TextEncoder, index_dir: str | os.PathLike | None, kind: str = "auto",
               auto_rebuild: bool = True) -> DescriptorIndex:
    """The faiss index of ``catalog`` under ``encoder``: loaded from ``index_dir`` (default
    :func:`index_cache_dir`), or built and saved there when absent; one that is corrupt, stale or of another
    ``kind`` is rebuilt when ``auto_rebuild``, else refused (:class:`IndexCorruptError`,
    :class:`StaleIndexError`)."""
    fingerprint = catalog.fingerprint()
    folder = Path(index_dir) if index_dir is not None else index_cache_dir(encoder.name, fingerprint, kind)
    check_replaceable(folder, INDEX_META_FILE, "index")  # a user's folder is refused before anything is read
    if folder.exists():
        try:
            index = DescriptorIndex.load(folder)
            index.check(encoder, fingerprint)
            if kind in ("auto", index.kind):
                return index
            raise StaleIndexError(f"the index at {folder} is {index.kind}, not {kind}")
        except (IndexCorruptError, StaleIndexError) as e:
            if not auto_rebuild:
                raise
            warnings.warn(f"{e}; rebuilding it", stacklevel=3)
    return build_index(catalog, encoder, folder, kind)


def open_milvus(catalog: Catalog, encoder: TextEncoder, address: str, auto_rebuild: bool = True,
                lexical_name: str | None = DEFAULT_SPARSE):
    """The Milvus store of ``catalog`` under ``encoder`` at ``address``, built if absent (with the sparse
    vectors of ``lexical_name``) and rebuilt when incomplete or stale (unless ``auto_rebuild`` is false: then
    refused)."""
    from melscribe.serve.milvus_store import MilvusStore, connect

    client = connect(address)
    try:
        if not MilvusStore.exists(address, client=client):
            raise FileNotFoundError(address)
        store = MilvusStore.open(address, client=client)
        store.check(encoder, catalog.fingerprint())
        return store
    except (IndexCorruptError, StaleIndexError) as e:
        if not auto_rebuild:
            raise
        warnings.warn(f"{e}; building it", stacklevel=3)
    except FileNotFoundError:
        log.info("no Milvus store at %s yet: building it", address)
    return build_milvus_store(catalog, encoder, address, lexical_name=lexical_name, client=client)
