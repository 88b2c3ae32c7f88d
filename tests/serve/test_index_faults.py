"""Fault injection into the descriptor index: damaged index files, non-finite queries, concurrent and killed
writers, a disk too full to save. Each fault must end in a named error (``melscribe.errors``) or a correct
answer, and must not lose what was already saved."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path

import numpy as np
import pytest

from melscribe.errors import IndexCorruptError, InvalidRequestError
from melscribe.serve import index as index_module
from melscribe.serve.index import FAISS_FILE, META_FILE, VOCAB_FILE, DescriptorIndex

from subprocess_support import TESTS, python, wait_for_pause
from tiny_fixtures import STUB_DIM as DIM
from tiny_fixtures import check_stub_index, stub_index, unit_vectors


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


# --- 6, 7. concurrent writers and readers; writers killed midway -------------------------------------------

WORKER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from tiny_fixtures import check_stub_index, stub_index
    from melscribe.serve.index import DescriptorIndex

    role, folder, seed, go, least, workers = (sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]),
                                              int(sys.argv[6]), int(sys.argv[7]))
    index = stub_index(seed=seed) if role == "save" else None
    done, errors = 0, []
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    # each worker does `least` operations, then goes on until every worker has done as many: however the
    # machine schedules them, each one's first `least` operations run while all the others are still working
    reached = go.parent / f"reached-{role}-{seed}"
    deadline = time.time() + 300
    while done < least or len(list(go.parent.glob("reached-*"))) < workers:
        try:
            if role == "save":
                index.save(folder)
            else:
                check_stub_index(DescriptorIndex.load(folder))
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
        done += 1
        if done == least:
            reached.touch()
        if time.time() > deadline:
            errors.append("the other workers never reached their count")
            break
    print(json.dumps({"done": done, "failed": len(errors), "errors": errors[:3]}))
""")

SAVER = textwrap.dedent("""
    import sys
    from tiny_fixtures import stub_index

    index = stub_index(n=20_000, seed=int(sys.argv[3]))
    print("ready", flush=True)
    while True:
        index.save(sys.argv[2])
""")

LOCK_HOLDER = textwrap.dedent("""
    import sys, time
    from melscribe.serve.index import writer_lock

    with writer_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
""")


def leftovers(folder: Path) -> list[str]:
    """What is beside the index folder, apart from its lock file."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")
                  and p.name != f".{folder.name}.lock")


def test_a_load_between_two_saves_waits_for_the_new_version(tmp_path: Path, monkeypatch) -> None:
    # The interleaving CI once hit: the reader finds meta.json gone, then looks while no version is moved aside
    # (one writer done, the next not started): it must look again rather than call the file missing.
    folder = stub_index(seed=1).save(tmp_path / "idx")
    hidden = tmp_path / "hidden"
    os.replace(folder, hidden)  # as if the next writer's first rename came just before the reader's look
    looks = []

    def writer_finishes(seconds: float) -> None:
        looks.append(seconds)
        if hidden.exists():
            os.replace(hidden, folder)

    monkeypatch.setattr(index_module.time, "sleep", writer_finishes)
    assert index_module._replaced(folder, None) is True
    assert len(looks) == 1
    monkeypatch.undo()
    (folder / VOCAB_FILE).unlink()  # really missing: said so after a few looks, not retried for ever
    with pytest.raises(IndexCorruptError, match="vocabulary.npy is missing"):
        DescriptorIndex.load(folder)


@pytest.mark.subprocess
def test_two_writers_and_a_reader_at_once(tmp_path: Path) -> None:
    folder = stub_index(seed=1).save(tmp_path / "idx")
    go = tmp_path / "sync" / "go"
    go.parent.mkdir()
    procs = [python(WORKER, TESTS, role, folder, seed, go, 10, 3) for role, seed in
             [("save", 1), ("save", 2), ("load", 0)]]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()  # all start together
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.splitlines()[-1]))
    writer_1, writer_2, reader = results
    assert writer_1["failed"] == writer_2["failed"] == 0, (writer_1, writer_2)
    assert reader["failed"] == 0, reader  # every load saw one complete version
    assert min(writer_1["done"], writer_2["done"], reader["done"]) >= 10, results
    assert check_stub_index(DescriptorIndex.load(folder)) in (1, 2)
    assert leftovers(folder) == []


@pytest.mark.subprocess
def test_saves_killed_midway_lose_nothing_and_their_leftovers_are_removed(tmp_path: Path) -> None:
    folder = stub_index(n=20_000, seed=1).save(tmp_path / "idx")
    for attempt, point in enumerate(["index-written", "index-moved-aside"] * 2):  # killed at a known point each time
        pause = tmp_path / f"paused-{attempt}"
        proc = python(SAVER, TESTS, folder, 2 + attempt % 2, pause_at=point, pause_file=pause)
        wait_for_pause(proc, pause)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert leftovers(folder), f"a save killed at {point} leaves its temporary or old folder"
        assert check_stub_index(DescriptorIndex.load(folder)) in (1, 2, 3)  # a complete version, old or new
        assert leftovers(folder) == []  # the load removed what the killed save left


def test_a_save_killed_between_its_two_renames_is_put_back(tmp_path: Path) -> None:
    folder = stub_index(seed=1).save(tmp_path / "idx")
    os.replace(folder, tmp_path / ".idx.old-0123abcd")  # the previous version, moved aside
    staged = stub_index(seed=2).save(tmp_path / "staging")
    os.replace(staged, tmp_path / ".idx.abcd_123.tmp")  # the new version, complete but not yet renamed
    partial = tmp_path / ".idx.zzzzzzzz.tmp"
    partial.mkdir()
    (partial / FAISS_FILE).write_bytes(b"half of a faiss file")
    assert check_stub_index(DescriptorIndex.load(folder)) == 2
    assert leftovers(folder) == []
    stub_index(seed=3).save(folder)  # a later save also finds nothing to trip on
    assert check_stub_index(DescriptorIndex.load(folder)) == 3


@pytest.mark.subprocess
def test_leftovers_of_a_live_writer_are_left_alone(tmp_path: Path) -> None:
    folder = stub_index().save(tmp_path / "idx")
    live = tmp_path / ".idx.live_123.tmp"
    live.mkdir()
    (live / FAISS_FILE).write_bytes(b"being written")
    holder = python(LOCK_HOLDER, folder)
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        check_stub_index(DescriptorIndex.load(folder))
        assert live.is_dir()  # the writer holding the lock may still be writing it
    finally:
        holder.kill()
        holder.communicate()
    check_stub_index(DescriptorIndex.load(folder))
    assert not live.exists()  # its writer is gone: stale


# --- an index that cannot be saved (a full disk) serves from memory and keeps its embeddings ---------------


def test_an_index_that_cannot_be_saved_is_served_from_memory(minilm, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from melscribe.serve import index as index_mod
    from melscribe.serve.recommend import Recommender

    from serve_support import small_catalog, text_encoder

    encoder = text_encoder(minilm)
    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index_mod.faiss, "write_index", full)
    with pytest.warns(UserWarning, match=r"could not save the index to .*the disk is full; serving it from memory"):
        rec = Recommender(encoder, small_catalog(tmp_path), index_dir=tmp_path / "idx")
    assert rec.recommend("a sad piano ballad", k=1)[0].track_id == "ballad"
    assert not (tmp_path / "idx").exists() and not list(tmp_path.glob(".idx.*tmp*"))  # nothing half-written left


def test_a_rebuild_after_an_unsaved_index_reuses_the_embeddings_already_made(minilm, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from melscribe.encoding.encoder import TextEncoder
    from melscribe.serve import index as index_mod
    from melscribe.serve.recommend import Recommender

    from serve_support import small_catalog, text_encoder

    encoder, catalog = text_encoder(minilm), small_catalog(tmp_path)
    write_index = index_mod.faiss.write_index

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index_mod.faiss, "write_index", full)
    with pytest.warns(UserWarning, match="the disk is full; serving it from memory"):
        first = Recommender(encoder, catalog, index_dir=tmp_path / "idx")
    monkeypatch.setattr(index_mod.faiss, "write_index", write_index)
    encoded: list[str] = []
    real_encode = TextEncoder.encode
    monkeypatch.setattr(TextEncoder, "encode", lambda self, texts, **kw: encoded.extend(texts) or real_encode(self, texts, **kw))
    again = Recommender(encoder, catalog, index_dir=tmp_path / "idx")
    assert not set(first.index.texts) & set(encoded)  # the sets were not encoded again, only read back
    assert again.recommend("a sad piano ballad", k=1)[0].track_id == "ballad" and (tmp_path / "idx").is_dir()
    assert not list((Path(os.environ["MELSCRIBE_HOME"]) / "embedding-cache").glob("*/*.npy"))  # saved: cleared
