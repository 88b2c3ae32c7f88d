"""Fault injection: damaged index files, bad catalogs and requests, concurrent and killed writers, killed
training. Each fault must end in a named error (``melscribe.errors``) or a correct answer, and must not
lose what was already saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melscribe.errors import IndexCorruptError, InvalidRequestError
from melscribe.serve.index import FAISS_FILE, META_FILE, VOCAB_FILE, DescriptorIndex

DIM = 32


class StubEncoder:
    """What ``DescriptorIndex.from_embeddings`` needs of an encoder, without a model."""

    name = "stub-model"
    dim = DIM
    probe = np.eye(DIM, dtype=np.float32)[0]


def unit_vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def stub_index(n: int = 300, seed: int = 0, kind: str = "flat") -> DescriptorIndex:
    """An index of ``n`` random unit vectors, ``texts[i] = f"set {i:04d}"``, and a 20-descriptor vocabulary."""
    vocabulary = [f"descriptor {i:02d}" for i in range(20)]
    return DescriptorIndex.from_embeddings(unit_vectors(n, seed), [f"set {i:04d}" for i in range(n)], StubEncoder(),
                                           fingerprint=f"fingerprint-{seed}", vocabulary=vocabulary,
                                           vocabulary_embeddings=unit_vectors(20, seed + 100), kind=kind)


# --- 1. bytes overwritten in place (same length) are detected ------------------------------------------


def _overwrite_middle(path: Path, length: int = 16) -> None:
    """Overwrite ``length`` bytes in the middle of ``path`` with bytes that differ, keeping its size."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + length] = bytes(b ^ 0x5A for b in data[mid:mid + length])
    path.write_bytes(bytes(data))


def _swap_two_texts(path: Path) -> None:
    """Edit ``meta.json`` so that two descriptor-set texts trade places: valid JSON, same size, every
    result mapped to the wrong text."""
    raw = path.read_text()
    assert raw.count('"set 0001"') == 1 and raw.count('"set 0002"') == 1
    path.write_text(raw.replace('"set 0001"', '"@@@"').replace('"set 0002"', '"set 0001"').replace('"@@@"', '"set 0002"'))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("file, damage", [(FAISS_FILE, _overwrite_middle), (VOCAB_FILE, _overwrite_middle),
                                          (META_FILE, _swap_two_texts)])
def test_bytes_overwritten_in_any_index_file_are_detected(tmp_path: Path, kind: str, file: str, damage) -> None:
    index = stub_index(kind=kind)
    folder = index.save(tmp_path / "idx")
    size = (folder / file).stat().st_size
    damage(folder / file)
    assert (folder / file).stat().st_size == size
    with pytest.raises(IndexCorruptError, match="checksum") as err:
        DescriptorIndex.load(folder)
    assert str(folder / file) in str(err.value)


def test_an_intact_index_loads_and_answers_as_saved(tmp_path: Path) -> None:
    index = stub_index()
    loaded = DescriptorIndex.load(index.save(tmp_path / "idx"))
    queries = unit_vectors(5, seed=9)
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], index.search(queries, 5)[1])
    np.testing.assert_array_equal(loaded.vocabulary_embeddings, index.vocabulary_embeddings)
    assert loaded.texts == index.texts


def test_a_corrupt_index_is_rebuilt_by_the_recommender_or_refused(minilm, tmp_path: Path) -> None:
    from melscribe.serve.recommend import Recommender

    from serve_support import small_catalog, text_encoder

    encoder, catalog = text_encoder(minilm), small_catalog(tmp_path)
    folder = tmp_path / "idx"
    good = Recommender(encoder, catalog, index_dir=folder)
    expected = good.recommend("upbeat tropical music with steel drums", k=3)
    _overwrite_middle(folder / FAISS_FILE)
    with pytest.raises(IndexCorruptError, match=FAISS_FILE):
        Recommender(encoder, catalog, index_dir=folder, auto_rebuild=False)
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = Recommender(encoder, catalog, index_dir=folder)
    assert rebuilt.recommend("upbeat tropical music with steel drums", k=3) == expected
    DescriptorIndex.load(folder)  # the rebuilt index is intact


# --- 3. non-finite query vectors are refused --------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_search_refuses_non_finite_vectors(bad: float) -> None:
    index = stub_index(50)
    query = unit_vectors(1, seed=3)
    query[0, 5] = bad
    with pytest.raises(InvalidRequestError, match="finite"):
        index.search(query, 3)
    with pytest.raises(InvalidRequestError, match="dimension"):
        index.search(unit_vectors(1, dim=DIM + 1), 3)
