"""The Ray engine of an index build (:mod:`melscribe.serve.ray_embedding`) on a real local Ray started once for
the module (``num_cpus=2``): its embeddings equal the local engine's, a killed build resumes, the CLI runs it."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import ray

from melscribe.encoding.encoder import TextEncoder
from melscribe.errors import InvalidRequestError, ModelUnavailableError
from melscribe.serve import embedding_cache, ray_embedding
from melscribe.serve.catalog import Catalog
from melscribe.serve.index import DescriptorIndex
from melscribe.serve.ray_embedding import embed_with_ray
from melscribe.serve.store_setup import build_index
from serve_support import write_catalog
from subprocess_support import python, wait_for_pause

#: Texts per chunk in these tests: 300 texts make 8 chunks, the last of 20.
CHUNK = 40
WORDS = ["piano", "drums", "ambient", "jazz", "slow", "fast", "female vocal", "guitar", "synth", "calm", "epic",
         "lo-fi", "strings", "bass", "upbeat", "sad", "reggae", "choir", "violin", "electronic"]


def texts(n: int = 300) -> list[str]:
    """``n`` unique descriptor-set texts."""
    rng, out = random.Random(0), {}
    while len(out) < n:
        out.setdefault(", ".join(rng.sample(WORDS, rng.randint(2, 6))), None)
    return list(out)


@pytest.fixture(scope="module")
def int8(home: Path) -> TextEncoder:
    """The packaged MiniLM on onnx-int8 (the serving backend), exported once into this module's home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        return TextEncoder("all-MiniLM-L6-v2", backend="onnx-int8")


@pytest.fixture(scope="module")
def ray_address(home: Path, int8) -> str:
    """A local Ray of two CPUs for the module (its workers' MELSCRIBE_HOME is the module's); its address."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        context = ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
                           log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding_cache, "CHUNK", CHUNK)


def cached(encoder: TextEncoder, sets: list[str]) -> np.ndarray:
    """The embeddings of ``sets`` read from the cache (every chunk must be there)."""
    folder = embedding_cache.cache_dir(encoder, sets)
    parts = [embedding_cache.read_chunk(embedding_cache.chunk_path(folder, i), len(embedding_cache.chunk_texts(sets, i)),
                                        encoder.dim) for i in range(embedding_cache.chunk_count(len(sets)))]
    assert all(p is not None for p in parts)
    return np.concatenate(parts)


def local_engine(encoder: TextEncoder, sets: list[str]) -> np.ndarray:
    """The local engine's embeddings of ``sets``, on an empty cache (cleared again afterwards)."""
    embedding_cache.clear(embedding_cache.cache_dir(encoder, sets))
    emb, folder = embedding_cache.embed(encoder, sets)
    embedding_cache.clear(folder)
    return emb


def test_ray_embeddings_equal_the_local_engines(int8, ray_address, small_chunks, monkeypatch):
    sets = texts()
    expected = local_engine(int8, sets)
    folder = embed_with_ray(int8, sets, workers=2, progress=False)
    assert folder == embedding_cache.cache_dir(int8, sets)
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:06d}.npy" for i in range(8)]
    # each text embedded alone on a single-threaded session, whichever process: bit for bit the same
    np.testing.assert_array_equal(cached(int8, sets), expected)
    assert ray.is_initialized()  # a Ray this call did not start is left alone

    def no_ray():
        raise AssertionError("Ray was imported though nothing is missing")

    monkeypatch.setattr(ray_embedding, "_import_ray", no_ray)
    assert embed_with_ray(int8, sets) == folder  # every chunk is there: Ray is not touched
    embedding_cache.clear(folder)


def test_an_actor_with_other_weights_is_refused(int8, ray_address, small_chunks):
    # the driver's encoder as another model would be: same name, another probe embedding
    probe = np.roll(int8.probe, 1)
    other = SimpleNamespace(name=int8.name, source=int8.source, backend=int8.backend, dim=int8.dim, probe=probe)
    with pytest.raises(ModelUnavailableError, match="embeds with other weights than the driver's"):
        embed_with_ray(other, texts(50), progress=False)
    assert not embedding_cache.cache_dir(other, texts(50)).exists()


RAY_BUILD = """
import json, sys
from melscribe.encoding.encoder import TextEncoder
from melscribe.serve import embedding_cache
from melscribe.serve.ray_embedding import embed_with_ray
from melscribe.serve.store_setup import build_index

embedding_cache.CHUNK = int(sys.argv[3])
sets = json.loads(open(sys.argv[1]).read())
embed_with_ray(TextEncoder("all-MiniLM-L6-v2", backend="onnx-int8"), sets, address=sys.argv[2], workers=1,
               progress=False)
"""


@pytest.mark.subprocess
def test_killed_ray_build_resumes(int8, ray_address, small_chunks, tmp_path, caplog):
    sets = texts()
    expected = local_engine(int8, sets)
    (tmp_path / "sets.json").write_text(json.dumps(sets))
    pause = tmp_path / "paused"
    # a driver joining the module's Ray, killed once it wrote its first chunk (its actor goes on, unheard)
    child = python(RAY_BUILD, tmp_path / "sets.json", ray_address, CHUNK, pause_at="ray-chunk-written",
                   pause_file=pause)
    try:
        wait_for_pause(child, pause)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    missing = embedding_cache.missing_chunks(int8, sets)
    assert len(missing) == 7  # one of 8 chunks kept
    folder = embedding_cache.cache_dir(int8, sets)
    (kept,) = set(range(8)) - set(missing)
    inode = embedding_cache.chunk_path(folder, kept).stat().st_ino

    with caplog.at_level(logging.INFO, logger="melscribe.serve.ray_embedding"):
        embed_with_ray(int8, sets, progress=False)
    assert "embedding 7 of 8 chunks on Ray" in caplog.text  # only the missing ones
    assert embedding_cache.chunk_path(folder, kept).stat().st_ino == inode  # the kept chunk is not written again
    np.testing.assert_array_equal(cached(int8, sets), expected)  # the same as a clean build
    embedding_cache.clear(folder)


def melscribe(*args: object, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "melscribe.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


@pytest.mark.subprocess
def test_cli_builds_an_index_on_a_ray_it_starts(int8, ray_address, tmp_path, home):
    catalog_file = write_catalog(tmp_path / "catalog.csv")
    index_dir = tmp_path / "index"
    done = melscribe("index", "build", "--engine", "ray", "--catalog", catalog_file, "--index-dir", index_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    catalog = Catalog.from_file(catalog_file)
    assert f"index of {len(catalog.set_texts())} descriptor sets" in done.stdout
    assert not list((home / "embedding-cache").glob("*/*.npy"))  # the saved index cleared its chunks
    index = DescriptorIndex.load(index_dir)
    index.check(int8, catalog.fingerprint())
    local = build_index(catalog, int8, tmp_path / "local", engine="local")
    np.testing.assert_array_equal(index.index.reconstruct_n(0, len(index)), local.index.reconstruct_n(0, len(local)))


@pytest.mark.subprocess
def test_cli_refuses_ray_options_without_the_ray_engine_and_names_an_unreachable_cluster(tmp_path):
    catalog_file = write_catalog(tmp_path / "catalog.csv")
    done = melscribe("index", "build", "--catalog", catalog_file, "--ray-workers", "2")
    assert done.returncode == 2 and "--ray-address and --ray-workers go with --engine ray" in done.stderr
    done = melscribe("index", "build", "--engine", "ray", "--ray-address", "127.0.0.1:1", "--catalog", catalog_file,
                     "--index-dir", tmp_path / "index")
    assert done.returncode == 2 and "cannot join the Ray cluster at 127.0.0.1:1" in done.stderr


def test_build_index_refuses_an_unknown_engine(int8, catalog, tmp_path):
    with pytest.raises(InvalidRequestError, match="unknown embedding engine 'spark'"):
        build_index(catalog, int8, tmp_path / "index", engine="spark")
