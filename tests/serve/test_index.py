"""Tests of melscribe.serve.index: exact and HNSW search, save/load, corrupt and stale indexes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch

from melscribe.errors import IndexCorruptError, InvalidRequestError, MelscribeError, StaleIndexError
from melscribe.serve import index as index_mod
from melscribe.encoding.encoder import TextEncoder, default_model
from melscribe.serve.index import (CHECKSUM, FAISS_FILE, META_FILE, VOCAB_FILE, DescriptorIndex, default_nprobe,
                                   file_checksum, ivf_lists, read_meta, write_meta)

from serve_support import small_catalog, text_encoder


@pytest.fixture(scope="module")
def built(encoder: TextEncoder, tmp_path_factory: pytest.TempPathFactory) -> DescriptorIndex:
    catalog = small_catalog(tmp_path_factory.mktemp("catalog"))
    return DescriptorIndex.build(list(catalog.descriptor_sets), encoder, fingerprint=catalog.fingerprint(),
                                 vocabulary=catalog.vocabulary())


@pytest.fixture(scope="module")
def other_encoder(encoder: TextEncoder, tmp_path_factory: pytest.TempPathFactory) -> TextEncoder:
    """Another model: MiniLM with perturbed weights, saved to a folder (like a retrained bi-encoder)."""
    folder = tmp_path_factory.mktemp("other-model")
    encoder.model.save(str(folder))
    other = TextEncoder(str(folder))
    with torch.no_grad():
        for p in other.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    return other


def test_flat_search_is_exact_cosine(built: DescriptorIndex, encoder: TextEncoder) -> None:
    assert built.kind == "flat" and len(built) == 12 and built.dim == 384
    queries = encoder.encode(["upbeat tropical music with steel drums", "a sad piano song"])
    vectors = encoder.encode(built.texts)
    scores, rows = built.search(queries, 5)
    expected = queries @ vectors.T
    np.testing.assert_array_equal(rows, np.argsort(-expected, axis=1)[:, :5])
    np.testing.assert_allclose(scores, np.sort(expected, axis=1)[:, ::-1][:, :5], atol=1e-5)
    assert built.texts[rows[0, 0]] == "steel drums, tropical, upbeat, calypso"
    assert built.search(queries[0], 100)[1].shape == (1, 12)  # k is capped at the index size


def _unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _recall(exact: np.ndarray, approx: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(exact, approx)]))


def test_auto_kind_is_flat_then_hnsw_then_ivf(monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> None:
    vectors = _unit_vectors(2000, encoder.dim)
    texts = [f"set {i}" for i in range(2000)]
    monkeypatch.setattr(index_mod, "FLAT_MAX", 1000)
    monkeypatch.setattr(index_mod, "HNSW_MAX", 1999)
    assert DescriptorIndex.from_embeddings(vectors[:1000], texts[:1000], encoder, fingerprint="x").kind == "flat"
    assert DescriptorIndex.from_embeddings(vectors[:1999], texts[:1999], encoder, fingerprint="x").kind == "hnsw"
    ivf = DescriptorIndex.from_embeddings(vectors, texts, encoder, fingerprint="x")
    assert ivf.kind == "ivf" and ivf.nlist == ivf_lists(2000) == 32
    coarse = faiss.downcast_index(faiss.downcast_index(ivf.index).quantizer)
    assert isinstance(coarse, faiss.IndexScalarQuantizer) and coarse.ntotal == 32  # centroids as 8-bit codes
    forced = DescriptorIndex.from_embeddings(vectors, texts, encoder, fingerprint="x", kind="flat")
    assert forced.kind == "flat" and forced.nlist is None
    queries = vectors[:50] + 0.5 * _unit_vectors(50, encoder.dim, seed=1)
    _, exact = forced.search(queries, 10)
    assert _recall(exact, ivf.search(queries, 10, nprobe=ivf.nlist)[1]) == 1.0  # every list scanned: exact
    assert _recall(exact, ivf.search(queries, 10, nprobe=1)[1]) < 0.9  # one list of 32 misses neighbours
    _, own = ivf.search(vectors[:20], 10)
    assert (own[:, 0] == np.arange(20)).all()  # re-scored exactly: each vector finds itself first
    with pytest.raises(InvalidRequestError, match="unknown index kind 'lsh'"):
        DescriptorIndex.from_embeddings(vectors, texts, encoder, fingerprint="x", kind="lsh")
    with pytest.raises(InvalidRequestError, match="expected"):
        DescriptorIndex.from_embeddings(vectors[:, :10], texts, encoder, fingerprint="x")


def test_ivf_lists_and_probes_scale_with_the_catalog() -> None:
    assert [ivf_lists(n) for n in (10, 300, 20_001, 100_000, 1_000_000)] == [1, 4, 512, 2048, 8192]
    assert [default_nprobe(n) for n in (1, 4, 512, 1024, 4096)] == [1, 4, 160, 160, 160]


def test_hnsw_kind_finds_the_exact_neighbours(encoder: TextEncoder) -> None:
    vectors = _unit_vectors(300, encoder.dim)
    hnsw = DescriptorIndex.from_embeddings(vectors, [f"set {i}" for i in range(300)], encoder, fingerprint="x",
                                           kind="hnsw")
    exact = np.argsort(-(vectors[:20] @ vectors.T), axis=1)[:, :10]
    assert hnsw.kind == "hnsw" and _recall(exact, hnsw.search(vectors[:20], 10)[1]) >= 0.98


def test_save_load_round_trip_is_atomic(built: DescriptorIndex, encoder: TextEncoder, tmp_path: Path) -> None:
    folder = built.save(tmp_path / "idx")
    built.save(folder)  # replacing an existing index
    assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", "idx"]  # no temporary or old folders left
    assert sorted(p.name for p in folder.iterdir()) == sorted([FAISS_FILE, META_FILE, VOCAB_FILE])
    loaded = DescriptorIndex.load(folder)
    assert loaded.texts == built.texts and loaded.vocabulary == built.vocabulary
    assert (loaded.kind, loaded.model_name, loaded.fingerprint) == ("flat", "all-MiniLM-L6-v2", built.fingerprint)
    q = encoder.encode(["jazz with saxophone"])
    np.testing.assert_array_equal(loaded.search(q, 4)[1], built.search(q, 4)[1])
    assert loaded.descriptor_scores(q[0], ["saxophone", "not a descriptor"])[1] is None
    loaded.check(encoder, built.fingerprint)
    assert loaded.info()["descriptor_sets"] == 12 and loaded.info()["path"] == str(folder)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_saves_and_loads(encoder: TextEncoder, tmp_path: Path, kind: str) -> None:
    vectors = encoder.encode([f"song number {i}" for i in range(200)])
    index = DescriptorIndex.from_embeddings(vectors, [f"t{i}" for i in range(200)], encoder, fingerprint="f", kind=kind)
    loaded = DescriptorIndex.load(index.save(tmp_path / kind))
    assert loaded.kind == kind and loaded.nlist == index.nlist
    np.testing.assert_array_equal(loaded.search(vectors[:5], 3)[1], index.search(vectors[:5], 3)[1])


def _truncate(path: Path, keep: int = 40) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("damage, file, message", [
    (lambda f: _truncate(f / FAISS_FILE), FAISS_FILE, "truncated"),
    (lambda f: (f / VOCAB_FILE).unlink(), VOCAB_FILE, "missing"),
    (lambda f: _truncate(f / META_FILE), META_FILE, "unreadable"),
    (lambda f: (f / META_FILE).unlink(), META_FILE, "missing"),
])
def test_damaged_index_names_the_file(built: DescriptorIndex, tmp_path: Path, damage, file: str, message: str) -> None:
    folder = built.save(tmp_path / "idx")
    damage(folder)
    with pytest.raises(IndexCorruptError, match=message) as err:
        DescriptorIndex.load(folder)
    assert str(folder / file) in str(err.value)


def test_unreadable_faiss_file_of_the_recorded_size(built: DescriptorIndex, tmp_path: Path) -> None:
    folder = built.save(tmp_path / "idx")
    (folder / FAISS_FILE).write_bytes(b"\0" * (folder / FAISS_FILE).stat().st_size)
    with pytest.raises(IndexCorruptError, match=f"{FAISS_FILE} fails its checksum"):
        DescriptorIndex.load(folder)
    meta = read_meta(folder / META_FILE)  # a checksum forged to match: faiss itself refuses the file
    meta["files"][FAISS_FILE][CHECKSUM] = file_checksum(folder / FAISS_FILE)
    write_meta(folder / META_FILE, meta)
    with pytest.raises(IndexCorruptError, match=f"{FAISS_FILE} is unreadable"):
        DescriptorIndex.load(folder)


def test_inconsistent_files_and_other_versions(built: DescriptorIndex, tmp_path: Path) -> None:
    folder = built.save(tmp_path / "idx")
    meta = read_meta(folder / META_FILE)
    write_meta(folder / META_FILE, dict(meta, texts=meta["texts"][:-1]))  # consistent checksum, wrong content
    with pytest.raises(IndexCorruptError, match="disagree"):
        DescriptorIndex.load(folder)
    write_meta(folder / META_FILE, dict(meta, version=99))
    with pytest.raises(StaleIndexError, match="format version 99"):
        DescriptorIndex.load(folder)
    (folder / META_FILE).write_text(json.dumps(dict(meta, version=1)))  # the format before checksums
    with pytest.raises(StaleIndexError, match="format version 1"):
        DescriptorIndex.load(folder)


def test_index_of_another_model_or_catalog_is_stale(built: DescriptorIndex, encoder: TextEncoder,
                                                   other_encoder: TextEncoder) -> None:
    built.check(encoder, built.fingerprint)
    with pytest.raises(StaleIndexError, match=r"built with model 'all-MiniLM-L6-v2', which differs from '.*other-model"):
        built.check(other_encoder)
    with pytest.raises(StaleIndexError, match="another catalog"):
        built.check(encoder, "0" * 64)


def test_an_index_saved_before_encoded_alone_existed_loads_as_batch_encoded(built: DescriptorIndex,
                                                                           encoder: TextEncoder, tmp_path: Path) -> None:
    assert not encoder.encodes_each_text_alone and not built.encoded_alone  # torch: batches change nothing
    folder = dataclasses.replace(built, encoded_alone=True).save(tmp_path / "alone")
    loaded = DescriptorIndex.load(folder)
    assert loaded.encoded_alone and loaded.info()["encoded_alone"]
    meta = index_mod.read_meta(folder / META_FILE)
    del meta["encoded_alone"]  # as melscribe wrote it before
    index_mod.write_meta(folder / META_FILE, meta)
    old = DescriptorIndex.load(folder)
    assert not old.encoded_alone
    old.check(encoder, built.fingerprint)  # an encoder whose batches change nothing takes it


def test_default_model_prefers_the_trained_bi_encoder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MELSCRIBE_HOME", str(tmp_path))
    assert default_model() == "all-MiniLM-L6-v2"
    (tmp_path / "models" / "bi-encoder").mkdir(parents=True)
    assert default_model() == str(tmp_path / "models" / "bi-encoder")


def test_sets_longer_than_the_encoder_reads_are_warned_about_and_explain_only_what_was_read(
        minilm, tmp_path: Path) -> None:
    from melscribe.serve.catalog import Catalog, Track
    from melscribe.serve.recommend import Recommender

    encoder = text_encoder(minilm)
    filler = [f"texture {i}" for i in range(150)]  # about 300 tokens: the encoder reads 256
    long_set = ("calm piano", *filler, "heavy metal")
    catalog = Catalog([Track("long", (long_set,)), Track("rock", (("rock", "electric guitar"),))])
    with pytest.warns(UserWarning, match=r"1 of 2 descriptor sets are longer than .* reads \(256 tokens\)"):
        rec = Recommender(encoder, catalog, index_dir=tmp_path / "idx")
    read = rec.index.read
    assert list(read) == [rec.index.texts.index(", ".join(long_set))] and 1 < next(iter(read.values())) < 150
    top = rec.recommend("heavy metal", k=2)
    long = next(r for r in top if r.track_id == "long")
    assert long.descriptor_set == long_set and "heavy metal" not in long.matched_descriptors  # never read
    assert Recommender(encoder, catalog, index_dir=tmp_path / "idx").index.read == read  # saved with the index


def test_an_ivf_built_in_pieces_equals_the_one_shot_index(tmp_path: Path, encoder: TextEncoder) -> None:
    vectors = _unit_vectors(6000, encoder.dim)
    texts = [f"set {i}" for i in range(len(vectors))]
    ivf, exact = index_mod.build_ivf_in_pieces((vectors[i:i + 1000] for i in range(0, 6000, 1000)), 6000,
                                               encoder.dim, tmp_path / "v.npy")
    assert isinstance(exact, np.memmap) and np.array_equal(exact, vectors)
    one_shot = DescriptorIndex.from_embeddings(vectors, texts, encoder, fingerprint="x", kind="ivf")
    # the same sample, lists and codes: the same faiss index, byte for byte
    assert faiss.serialize_index(ivf).tobytes() == faiss.serialize_index(one_shot.index).tobytes()
    pieces = dataclasses.replace(one_shot, index=ivf, exact_vectors=exact)
    queries = vectors[:40] + 0.5 * _unit_vectors(40, encoder.dim, seed=1)
    scores, rows = pieces.search(queries, 10)
    want_scores, want_rows = one_shot.search(queries, 10)
    assert np.array_equal(rows, want_rows) and np.array_equal(scores, want_scores)
    # as faiss' own re-scoring of the same inverted file would rank them
    refine = faiss.IndexRefineFlat(index_mod._trained_ivf(vectors))
    refine.add(vectors)
    index_mod._compress_coarse_quantizer(faiss.downcast_index(refine.base_index))
    params = faiss.IndexRefineSearchParameters(k_factor=index_mod.REFINE_K_FACTOR, base_index_params=faiss.SearchParametersIVF(
        nprobe=default_nprobe(ivf.nlist)))
    assert _recall(refine.search(queries, 10, params=params)[1], rows) == 1.0
    assert np.array_equal(pieces.vectors(np.array([5, 0, 4999])), vectors[[5, 0, 4999]])
    with pytest.raises(InvalidRequestError, match="the pieces hold 5000 embeddings, expected 6000"):
        index_mod.build_ivf_in_pieces((vectors[i:i + 1000] for i in range(0, 5000, 1000)), 6000, encoder.dim,
                                      tmp_path / "short.npy")
    assert not (tmp_path / "short.npy").exists()


def test_the_lists_scanned_per_query_can_be_set_for_a_process(monkeypatch: pytest.MonkeyPatch,
                                                                encoder: TextEncoder) -> None:
    vectors = _unit_vectors(6000, encoder.dim)
    texts = [f"set {i}" for i in range(6000)]
    index = DescriptorIndex.from_embeddings(vectors, texts, encoder, fingerprint="x", kind="ivf")
    queries = vectors[:30] + 0.5 * _unit_vectors(30, encoder.dim, seed=2)
    everything = index.search(queries, 10)[1]  # 128 lists: the default scans all of them
    assert index.nlist == 128 and default_nprobe(index.nlist) == 128
    monkeypatch.setenv(index_mod.NPROBE_ENV, "2")
    assert default_nprobe(index.nlist) == 2
    two = index.search(queries, 10)[1]
    assert np.array_equal(two, index.search(queries, 10, nprobe=2)[1]) and not np.array_equal(two, everything)
    assert _recall(everything, two) < 1.0
    for bad in ("0", "-3", "many", "1.5"):
        monkeypatch.setenv(index_mod.NPROBE_ENV, bad)
        with pytest.raises(MelscribeError, match=f"MELSCRIBE_IVF_NPROBE='{bad}': expected a positive integer"):
            DescriptorIndex.from_embeddings(vectors, texts, encoder, fingerprint="x", kind="ivf")


def test_an_ivf_index_is_built_from_cached_chunks_and_maps_its_vectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      encoder: TextEncoder) -> None:
    from melscribe.serve import embedding_cache

    monkeypatch.setattr(index_mod, "FLAT_MAX", 10)
    monkeypatch.setattr(index_mod, "HNSW_MAX", 10)
    monkeypatch.setattr(embedding_cache, "CHUNK", 64)
    texts = [f"{g}, {m}, {i}" for g in ("rock", "jazz", "pop", "folk") for m in ("sad", "happy", "calm") for i in "abcdefghijkl"]
    built = DescriptorIndex.build(texts, encoder, fingerprint="x", vocabulary=["rock", "jazz"])
    assert built.kind == "ivf" and isinstance(built.exact_vectors, np.memmap) and embedding_cache.missing_chunks(encoder, texts) == []
    direct = encoder.encode(texts)
    np.testing.assert_allclose(built.vectors(np.arange(len(texts))), direct, atol=1e-6)
    folder = built.save(tmp_path / "idx")
    assert not built.embedding_chunks.exists()  # the chunks are cleared once saved; the vectors live on
    loaded = DescriptorIndex.load(folder)
    assert isinstance(loaded.exact_vectors, np.memmap) and loaded.kind == "ivf"
    query = encoder.encode(["sad jazz"])
    assert np.array_equal(loaded.search(query, 5)[1], built.search(query, 5)[1])
    assert texts[loaded.search(query, 1)[1][0, 0]].startswith("jazz, sad")
    vectors_file = folder / index_mod.VECTORS_FILE
    data = bytearray(vectors_file.read_bytes())
    data[-5] ^= 0xFF
    vectors_file.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=f"{vectors_file} fails its checksum"):
        DescriptorIndex.load(folder)
    vectors_file.unlink()
    with pytest.raises(IndexCorruptError, match=f"{vectors_file} is missing"):
        DescriptorIndex.load(folder)
