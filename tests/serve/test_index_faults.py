"""Fault injection: damaged index files, bad catalogs and requests, concurrent and killed writers, killed
training. Each fault must end in a named error (``melscribe.errors``) or a correct answer, and must not
lose what was already saved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from melscribe.errors import DataError, IndexCorruptError, InvalidRequestError
from melscribe.serve.catalog import Catalog
from melscribe.serve import index as index_module
from melscribe.serve.index import FAISS_FILE, META_FILE, VOCAB_FILE, DescriptorIndex

from tiny_fixtures import STUB_DIM as DIM
from tiny_fixtures import check_stub_index, stub_index, unit_vectors

TESTS = Path(__file__).parent


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
    from tiny_fixtures import check_stub_index, stub_index
    from melscribe.serve.index import DescriptorIndex

    role, folder, seed, go, seconds = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
    index = stub_index(seed=seed) if role == "save" else None
    done, errors = 0, []
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    end = time.time() + seconds
    while time.time() < end:
        try:
            if role == "save":
                index.save(folder)
            else:
                check_stub_index(DescriptorIndex.load(folder))
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
        done += 1
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


def python(script: str, *args: object) -> subprocess.Popen:
    """``script`` in a child Python, the test helpers (``tests/``) importable there through ``PYTHONPATH``."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": path})


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


def test_two_writers_and_a_reader_at_once(tmp_path: Path) -> None:
    folder = stub_index(seed=1).save(tmp_path / "idx")
    go = tmp_path / "go"
    procs = [python(WORKER, TESTS, role, folder, seed, go, 2.0) for role, seed in
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


def test_saves_killed_midway_lose_nothing_and_their_leftovers_are_removed(tmp_path: Path) -> None:
    folder = stub_index(n=20_000, seed=1).save(tmp_path / "idx")
    rng = np.random.default_rng(0)
    left = 0
    for attempt in range(6):
        proc = python(SAVER, TESTS, folder, 2 + attempt % 2)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        left += bool(leftovers(folder))
        assert check_stub_index(DescriptorIndex.load(folder)) in (1, 2, 3)  # a complete version, old or new
        assert leftovers(folder) == []  # the load removed what the killed save left
    assert left, "no kill landed inside a save"


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


# --- 2, 5. bad catalogs: a named error with file, row and reason, or a documented rule with a warning -------


def write_rows(path: Path, rows: list[dict]) -> Path:
    """``rows`` as a catalog file in the format of ``path``'s suffix."""
    df = pd.DataFrame(rows)
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    return path


GOOD = {"track_id": "a", "descriptors": ["rock", "loud"], "title": "A", "artist": "X"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_an_empty_track_id_is_refused_with_its_row(tmp_path: Path, suffix: str) -> None:
    rows = [GOOD, {"track_id": None, "descriptors": ["pop"], "title": "B", "artist": "Y"}]
    path = write_rows(tmp_path / f"cat{suffix}", [dict(r, descriptors=", ".join(r["descriptors"])) for r in rows]
                      if suffix == ".csv" else rows)
    with pytest.raises(DataError, match=rf"{path}, row 2: empty track_id"):
        Catalog.from_file(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("values, what", [([3, 7], "int"), ([{"rock": 1}, {"rock": 2}], "dict"),
                                          ([[["rock"]], [["pop"]]], "strings")])
def test_descriptors_of_the_wrong_type_are_refused_with_their_row(tmp_path: Path, suffix: str, values: list,
                                                                  what: str) -> None:
    path = write_rows(tmp_path / f"cat{suffix}", [{"track_id": t, "descriptors": v} for t, v in zip("ab", values)])
    with pytest.raises(DataError, match=rf"{path}, row 1: descriptors must be .*{what}"):
        Catalog.from_file(path)


def test_rows_of_one_track_merge_only_when_their_metadata_agree(tmp_path: Path) -> None:
    agree = write_rows(tmp_path / "agree.jsonl", [GOOD, {"track_id": "a", "descriptors": ["calm"], "title": "A"},
                                                  {"track_id": "b", "descriptors": ["pop"], "title": "B"}])
    track = Catalog.from_file(agree).track("a")
    assert track.descriptor_sets == (("rock", "loud"), ("calm",))
    assert track.metadata == {"title": "A", "artist": "X"}
    clash = write_rows(tmp_path / "clash.jsonl", [
        {"track_id": "clair", "descriptors": ["piano", "calm"], "title": "Clair de Lune", "artist": "Debussy"},
        {"track_id": "other", "descriptors": ["pop"], "title": "B", "artist": "Y"},
        {"track_id": "clair", "descriptors": ["steel drums"], "title": "Island Breeze", "artist": "Steelers"}])
    with pytest.raises(DataError, match=rf"{clash}, row 3: track_id 'clair' repeats row 1 with another title "
                                        r"\('Clair de Lune' there, 'Island Breeze' here\)"):
        Catalog.from_file(clash)


def test_tracks_without_descriptor_sets_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "cat.jsonl", [GOOD, {"track_id": "b", "descriptors": [], "title": "B"},
                                               {"track_id": "c", "descriptors": None, "audio_path": "c.wav"}])
    with pytest.warns(UserWarning, match=r"dropped 2 of 3 tracks .*no descriptor set.* \(1 with an audio_path"):
        catalog = Catalog.from_file(path)
    assert [t.id for t in catalog] == ["a"] and "b" not in catalog


def test_a_directory_as_catalog_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=rf"catalog {tmp_path} is a directory, expected a CSV/JSONL/Parquet file"):
        Catalog.from_file(tmp_path)


@pytest.mark.parametrize("command", [["index", "build"], ["recommend", "calm piano"], ["serve"]])
def test_the_command_line_reports_a_bad_catalog_in_one_line(tmp_path: Path, command: list[str],
                                                            capsys: pytest.CaptureFixture) -> None:
    from melscribe.cli import main

    bad = write_rows(tmp_path / "cat.jsonl", [GOOD, {"track_id": "b", "descriptors": 7}])
    assert main([*command, "--catalog", str(bad), "--index-dir", str(tmp_path / "idx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"melscribe: error: catalog {bad}, row 2: descriptors") and "Traceback" not in err
    assert main([*command, "--catalog", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


# --- 4, 8. requests that are not text, too long, too large, or ask too much --------------------------------


@pytest.fixture(scope="module")
def rec(minilm, tmp_path_factory: pytest.TempPathFactory):
    from serve_support import recommender_in, small_catalog, text_encoder

    folder = tmp_path_factory.mktemp("rec")
    return recommender_in(folder / "home", text_encoder(minilm), small_catalog(folder))


class Untouchable:
    """Stands for the encoder where a request must be refused before reaching it."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the encoder was reached ({name})")


@pytest.mark.parametrize("request_, match", [
    ("calm \ud800 piano", "not valid Unicode"),
    ("\udfff", "not valid Unicode"),
    ("calm piano " * 100_000, "has 1,100,000 characters; at most 10,000"),
])
def test_requests_that_are_not_text_or_too_long_are_refused_before_the_encoder(
        rec, monkeypatch: pytest.MonkeyPatch, request_: str, match: str) -> None:
    monkeypatch.setattr(rec, "encoder", Untouchable())
    with pytest.raises(InvalidRequestError, match=match):
        rec.recommend(request_)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_recommender_search_refuses_non_finite_vectors(rec, bad: float) -> None:
    query = rec.encoder.encode(["calm piano"])[0]
    query[7] = bad
    with pytest.raises(InvalidRequestError, match="finite"):
        rec.search(query, k=3)


def test_check_request_text() -> None:
    from melscribe.serve.recommend import check_request_text

    assert check_request_text("  calm piano \n", 100) == "calm piano"
    with pytest.raises(InvalidRequestError, match="at most 10"):
        check_request_text("calm piano!", 10)
    with pytest.raises(InvalidRequestError, match="must be a string"):
        check_request_text(b"calm piano", 100)


@pytest.fixture(scope="module")
def client(rec):
    from fastapi.testclient import TestClient

    from melscribe.serve.api import create_app

    with TestClient(create_app(rec, max_body_bytes=4096, max_k=50)) as c:
        yield c


def post_raw(client, body: str | bytes, **kwargs):
    return client.post("/recommend", content=body, headers={"content-type": "application/json"}, **kwargs)


def test_a_lone_surrogate_is_a_400_not_a_500(client) -> None:
    r = post_raw(client, '{"request": "calm \\ud800 piano"}')
    assert r.status_code == 400 and "not valid Unicode" in r.json()["detail"]
    r = post_raw(client, '{"request": ["\\ud800"]}')
    assert r.status_code == 422


def test_bodies_over_the_limit_are_413(client) -> None:
    big = json.dumps({"request": "calm piano " * 1000})
    r = post_raw(client, big)
    assert r.status_code == 413 and "4096 bytes" in r.json()["detail"]
    chunks = (big[i:i + 1000].encode() for i in range(0, len(big), 1000))  # no Content-Length: counted as read
    r = post_raw(client, chunks)
    assert r.status_code == 413
    assert client.post("/recommend", json={"request": "calm piano"}).status_code == 200


def test_k_is_bounded(client) -> None:
    for k in (51, 2**70):
        r = client.post("/recommend", json={"request": "calm piano", "k": k})
        assert r.status_code == 400 and "at most 50" in r.json()["detail"], r.text
    assert len(client.post("/recommend", json={"request": "calm piano", "k": 50}).json()["results"]) == 12


def test_long_inputs_are_not_echoed(client) -> None:
    long = "calm piano " * 300  # 3,300 characters, under the body limit
    with pytest.warns(UserWarning, match="reads the first 256"):
        r = client.post("/recommend", json={"request": long, "k": 1})
    assert r.status_code == 200 and len(r.text) < 2000 and r.json()["request"].startswith("calm piano")
    r = client.post("/recommend", json={"request": "calm piano", "junk": long})
    assert r.status_code == 422 and long not in r.text and len(r.text) < 1000
    assert r.json()["detail"][0]["loc"] == ["body", "junk"]
    r = client.post("/recommend", json={"request": "calm piano", "filters": {"exclude_tracks": [long]}})
    assert r.status_code == 400 and long not in r.text and "unknown track id" in r.json()["detail"]


def test_serve_takes_the_limits_from_the_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from melscribe.cli import main
    from melscribe.serve import commands

    seen = {}
    monkeypatch.setattr(commands, "_catalog_and_encoder", lambda args: (None, None))
    monkeypatch.setattr("melscribe.serve.api.create_app", lambda rec, **limits: seen.update(limits) or "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **options: seen.update(app=app))
    assert main(["serve", "--max-body-bytes", "1000", "--max-k", "20", "--max-queue", "7"]) == 0
    assert seen == {"max_body_bytes": 1000, "max_k": 20, "max_batch": 32, "max_wait_ms": 2.0, "max_queue": 7,
                    "app": "app"}


# --- training killed with SIGKILL resumes from its last checkpoint; finished stages are not redone ----------

TRAIN_CONFIG = dict(recipe="mnrl", synthetic_per_track=1, miners=("bm25",), mine_depth=8, negatives_per_query=2,
                    mnrl_hard_negatives=True, mnrl_batch_size=8, mnrl_max_steps=3, save_steps=1, heldout_tracks=8, fast_student="none",
                    bf16=False)

TRAINER = textwrap.dedent("""
    import json, os, sys
    os.environ["HF_HUB_OFFLINE"] = "1"
    from tiny_fixtures import tiny_records
    from melscribe.train.pipeline import train
    from melscribe.train.presets import get_preset

    train(get_preset("offline", **json.loads(sys.argv[3])), sys.argv[2], records=tiny_records(24))
""")


def test_training_killed_after_a_checkpoint_resumes_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import TrainerCallback

    from melscribe.train.checkpoints import last_checkpoint
    from melscribe.train.pipeline import TrainingRun, train
    from melscribe.train.presets import get_preset

    from tiny_fixtures import tiny_records

    run, checkpoints = tmp_path / "run", tmp_path / "run" / "mnrl" / "checkpoints"
    proc = python(TRAINER, TESTS, run, json.dumps(TRAIN_CONFIG))
    deadline = time.monotonic() + 180
    while not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint in 180 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    resume_from = last_checkpoint(checkpoints)
    assert resume_from is not None and not (run / "mnrl" / "model").exists(), "the kill came too late"
    step = int(resume_from.rsplit("-", 1)[1])
    assert step < TRAIN_CONFIG["mnrl_max_steps"]
    finished = {f: (run / f).stat().st_mtime_ns for f in ("pairs/qrels/train.tsv", "negatives.jsonl")}

    def not_again(self):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(TrainingRun, "_stage_pairs", not_again)
    monkeypatch.setattr(TrainingRun, "_stage_mine", not_again)
    seen = {"steps": []}

    class FirstSteps(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            seen["steps"].append(state.global_step)

    original = SentenceTransformerTrainer.train

    def recording_train(self, *args, **kwargs):
        seen["resume_from"] = kwargs.get("resume_from_checkpoint")
        self.add_callback(FirstSteps())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerTrainer, "train", recording_train)
    final = train(get_preset("offline", **TRAIN_CONFIG), run, records=tiny_records(24))
    assert seen["resume_from"] == resume_from
    assert seen["steps"] == list(range(step, TRAIN_CONFIG["mnrl_max_steps"]))  # only the steps not yet done
    assert {f: (run / f).stat().st_mtime_ns for f in finished} == finished
    assert (final / "modules.json").is_file() and (final / "fusion.json").is_file()


def test_a_checkpoint_whose_state_was_cut_short_is_not_resumed_from(tmp_path: Path) -> None:
    from melscribe.train.checkpoints import last_checkpoint

    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_st')):  # a kill while writing checkpoint-4
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")


# --- 9. requests that resemble nothing in the catalog are flagged low-confidence ----------------------------

MUSIC_REQUESTS = ["I'd love upbeat tropical music with steel drums", "something sad with piano for a rainy day",
                  "aggressive metal with distorted guitars", "smooth jazz for a lounge", "old school rap",
                  "dark techno for the warehouse", "an epic orchestral piece with violins", "country banjo"]
NOT_MUSIC_REQUESTS = ["xkqjv bnwe plorf", "🎶🎶🎶", "😂", "asdfgh jkl", "眠るための静かな音楽", "the invoice is overdue"]


def test_requests_that_resemble_nothing_are_flagged_low_confidence(rec) -> None:
    from melscribe.serve.recommend import RecommendationList

    for request in MUSIC_REQUESTS:
        results = rec.recommend(request, k=3)
        assert isinstance(results, RecommendationList) and not results.low_confidence, request
    for request in NOT_MUSIC_REQUESTS:
        results = rec.recommend(request, k=3)
        assert results.low_confidence and len(results) == 3, request  # still answered, but flagged
    query = rec.encoder.encode([NOT_MUSIC_REQUESTS[0]])[0]
    assert rec.search(query, k=3).low_confidence
    filtered = rec.recommend(MUSIC_REQUESTS[0], k=3, exclude_tracks=["calypso-1", "calypso-2", "reggae"])
    assert not filtered.low_confidence  # about the request, not about what the filters leave
    assert filtered == list(filtered) and "low_confidence=False" in repr(filtered)


def test_low_confidence_over_http_and_on_the_command_line(rec, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    from melscribe.cli import main
    from melscribe.serve import commands

    assert client.post("/recommend", json={"request": "xkqjv bnwe plorf"}).json()["low_confidence"] is True
    assert client.post("/recommend", json={"request": MUSIC_REQUESTS[1]}).json()["low_confidence"] is False
    monkeypatch.setattr(commands, "_recommender", lambda args: rec)
    for request, flagged in ((NOT_MUSIC_REQUESTS[0], True), (MUSIC_REQUESTS[1], False)):
        for output in ([], ["--json"]):
            assert main(["recommend", request, "-k", "2", *output]) == 0
            out, err = capsys.readouterr()
            assert ("warning: low confidence" in err) == flagged
            assert "low confidence" not in out


# --- a home that cannot be written: what and where, and an index that cannot be saved serves from memory ----


def test_an_unusable_home_is_named_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from melscribe.cli import main
    from melscribe.config import home_dir

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    monkeypatch.setenv("MELSCRIBE_HOME", str(blocker / "home"))
    with pytest.raises(DataError, match=r"not-a-folder/home as melscribe's home .*a part of the path is a file"):
        home_dir()
    assert main(["index", "info", "--catalog", str(tmp_path / "none.csv")]) == 2
    assert "melscribe: error:" in capsys.readouterr().err


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
