"""Tests of the HTTP API (a real uvicorn server on 127.0.0.1, queried with httpx) and of the sub-commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import uvicorn

from melscribe.errors import InvalidRequestError
from melscribe.serve import commands
from melscribe.serve.api import create_app
from melscribe.encoding.encoder import TextEncoder
from melscribe.serve.recommend import Recommender

from serve_support import running_server


@pytest.fixture(scope="module")
def server(rec: Recommender) -> Iterator[str]:
    """A uvicorn server of ``create_app(rec)`` on a free port of 127.0.0.1; yields its URL."""
    with running_server(create_app(rec)) as url:
        yield url


def test_health(server: str) -> None:
    r = httpx.get(f"{server}/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model": "all-MiniLM-L6-v2", "catalog": r.json()["catalog"], "tracks": 12,
                        "descriptor_sets": 12, "index": "flat", "fusion": None}
    assert r.json()["catalog"] == "catalog.csv"  # a name: no server path reaches a client


def test_recommend_matches_the_recommender(server: str, rec: Recommender) -> None:
    body = {"request": "I'd love upbeat tropical music with steel drums", "k": 3,
            "filters": {"exclude_tracks": ["calypso-2"], "exclude_descriptors": ["reggae"]}}
    r = httpx.post(f"{server}/recommend", json=body)
    assert r.status_code == 200
    assert list(r.json()) == ["request", "k", "model", "intent", "low_confidence", "results"]  # as --json
    assert r.json()["model"] == rec.encoder.name
    results = r.json()["results"]
    expected = rec.recommend(body["request"], 3, exclude_tracks=["calypso-2"], exclude_descriptors=["reggae"])
    assert results == [e.to_dict() for e in expected]
    assert results[0]["track_id"] == "calypso-1" and "steel drums" in results[0]["matched_descriptors"]
    assert results[0]["metadata"] == {"title": "Island Morning", "artist": "The Pans"}
    assert len(httpx.post(f"{server}/recommend", json={"request": "sad piano"}).json()["results"]) == 10


def test_requests_are_checked_off_the_event_loop(server: str, rec: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking a request counts its tokens and parsing its intent may encode phrases: never on the loop."""
    on_loop = []

    def running_loop() -> bool:
        try:
            asyncio.get_running_loop()
            return True
        except RuntimeError:
            return False

    for name in ("prepare", "parse_intent"):
        def spy(*args, _original=getattr(rec, name), **kwargs):
            on_loop.append(running_loop())
            return _original(*args, **kwargs)

        monkeypatch.setattr(rec, name, spy)
    r = httpx.post(f"{server}/recommend", json={"request": "calm acoustic music but no drums", "k": 2})
    assert r.status_code == 200 and r.json()["intent"]["avoided"]
    assert on_loop and not any(on_loop)
    on_loop.clear()  # excluded descriptors are matched with the encoder too
    r = httpx.post(f"{server}/recommend", json={"request": "calm acoustic music", "filters": {"exclude_descriptors": ["drums"]}})
    assert r.status_code == 200 and on_loop and not any(on_loop)
    on_loop.clear()  # string work only: checked on the loop, without a thread hop
    assert httpx.post(f"{server}/recommend", json={"request": "calm acoustic music", "k": 2}).status_code == 200
    assert on_loop and all(on_loop)


def test_concurrent_http_requests(server: str, rec: Recommender) -> None:
    requests = ["dark techno", "sad piano", "smooth jazz", "steel drums", "rap"] * 4
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda q: client.post(f"{server}/recommend", json={"request": q, "k": 2}).json(), requests))
    assert [g["results"][0]["track_id"] for g in got] == [rec.recommend(q, 1)[0].track_id for q in requests]


@pytest.mark.parametrize("body, status, message", [
    ({"request": "   "}, 400, "empty"),
    ({"request": "steel drums", "k": 0}, 400, "positive"),
    ({"request": "steel drums", "filters": {"exclude_tracks": ["nope"]}}, 400, "unknown track id 'nope'"),
    ({"request": "steel drums", "filters": {"require_descriptors": ["kazoo"]}}, 400, "kazoo"),
    ({"request": "steel drums", "k": "3"}, 422, "valid integer"),
    ({"request": "steel drums", "k": True}, 422, "valid integer"),
    ({"request": 42}, 422, "valid string"),
    ({"k": 3}, 422, "request"),
    ({"request": "steel drums", "filter": {}}, 422, "filter"),
    ({"request": "steel drums", "rerank": 5}, 400, "rerank needs a music cross-encoder"),
    ({"request": "steel drums", "rerank": -1}, 400, "between 0 and"),
    ({"request": "steel drums", "rerank": "5"}, 422, "valid integer"),
])
def test_bad_bodies(server: str, body: dict, status: int, message: str) -> None:
    r = httpx.post(f"{server}/recommend", json=body)
    assert r.status_code == status
    assert message in json.dumps(r.json()["detail"])


def test_not_json(server: str) -> None:
    r = httpx.post(f"{server}/recommend", content=b"steel drums", headers={"content-type": "application/json"})
    assert r.status_code == 422


def run_cli(*argv: str) -> None:
    """Parse ``argv`` with a parser holding only the serving sub-commands, then run the handler."""
    parser = argparse.ArgumentParser(prog="melscribe")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    args.func(args)


@pytest.fixture
def shared_model(monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> None:
    """Let the sub-commands use the session's MiniLM (torch) instead of loading it again, with torch as their
    default backend, so the index cache keys they compute are the encoder's."""
    monkeypatch.setattr(commands, "TextEncoder", lambda model, backend="torch": encoder)
    monkeypatch.setattr(commands, "SERVING_BACKEND", "torch")


def test_cli_index_build_info_and_recommend(shared_model, catalog_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "idx"
    run_cli("index", "build", "--catalog", str(catalog_file), "--index-dir", str(folder))
    out, err = capsys.readouterr()
    assert f"flat index of 12 descriptor sets (12 tracks) → {folder}" in out and "model: all-MiniLM-L6-v2" in err
    run_cli("index", "info", "--index-dir", str(folder))
    info = json.loads(capsys.readouterr().out)
    assert (info["kind"], info["descriptor_sets"], info["model"]) == ("flat", 12, "all-MiniLM-L6-v2")

    run_cli("recommend", "upbeat tropical music with steel drums", "-k", "3", "--catalog", str(catalog_file),
            "--index-dir", str(folder), "--exclude-track", "calypso-2")
    intent_line, *lines = capsys.readouterr().out.splitlines()
    assert intent_line.startswith("intent: wants ") and "steel drums" in intent_line
    assert lines[0].split() == ["rank", "score", "track", "title", "/", "link", "matched", "descriptors"]
    assert len(lines) == 4 and lines[1].split()[0] == "1" and lines[1].split()[2] == "calypso-1"
    assert "The Pans – Island Morning" in lines[1]
    columns = [line.index(line.split()[2]) for line in lines[1:]]
    assert len(set(columns)) == 1  # the track column is aligned

    run_cli("recommend", "sad piano", "-k", "2", "--json", "--catalog", str(catalog_file), "--require", "piano")
    answer = json.loads(capsys.readouterr().out)
    # one shape with HTTP's /recommend: request, k, model, intent, low_confidence, results
    assert list(answer) == ["request", "k", "model", "intent", "low_confidence", "results"]
    assert (answer["request"], answer["k"], answer["model"], answer["low_confidence"]) == \
        ("sad piano", 2, "all-MiniLM-L6-v2", False)
    assert [r["track_id"] for r in answer["results"]] == ["ballad"] and answer["results"][0]["rank"] == 1


def test_cli_index_info_finds_the_cached_index(shared_model, catalog_file: Path, capsys: pytest.CaptureFixture) -> None:
    run_cli("index", "build", "--catalog", str(catalog_file))
    capsys.readouterr()
    run_cli("index", "info", "--catalog", str(catalog_file))
    assert json.loads(capsys.readouterr().out)["descriptor_sets"] == 12


def test_cli_reports_bad_input_as_melscribe_errors(shared_model, catalog_file: Path) -> None:
    with pytest.raises(InvalidRequestError, match="unknown descriptor"):
        run_cli("recommend", "sad piano", "--exclude", "qwzx", "--catalog", str(catalog_file))


def test_cli_table_strips_terminal_control_characters(shared_model, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    catalog = tmp_path / "evil.csv"
    catalog.write_text('track_id,descriptors,title,artist\nevil\x07,"sad, piano",\x1b[2J\x1b[31mRed\x1b[0m,Ada\x9b\n')
    run_cli("recommend", "sad piano", "-k", "1", "--catalog", str(catalog))
    out = capsys.readouterr().out
    assert "Red" in out and not any(ch in out for ch in "\x1b\x07\x9b")


def test_serve_command_runs_uvicorn_with_the_app(shared_model, catalog_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **options: seen.update(app=app, host=host, port=port,
                                                                                       options=options))
    run_cli("serve", "--catalog", str(catalog_file), "--port", "8123")
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    assert seen["options"] == {"timeout_keep_alive": 5, "timeout_graceful_shutdown": 10}
    assert {route.path for route in seen["app"].routes} >= {"/health", "/recommend"}


def test_errors_and_health_name_no_server_path(server: str, catalog_file: Path) -> None:
    folder = str(catalog_file.parent)
    assert folder not in httpx.get(f"{server}/health").text
    r = httpx.post(f"{server}/recommend", json={"request": "jazz", "filters": {"require_descriptors": ["qwzx"]}})
    assert r.status_code == 400 and "catalog.csv" in r.text and folder not in r.text


@pytest.mark.parametrize("kwargs, status, says", [
    ({"content": b'{"request": "jazz"}', "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415,
     "Content-Type: application/json"),  # curl -d without -H
    ({"data": {"request": "jazz"}}, 415, "Content-Type: application/json"),  # a form post
    ({"content": b'{"request": "jazz"}', "headers": {"content-type": "text/plain"}}, 415, "got text/plain"),
    ({"content": b'{"request": "jazz"}'}, 415, "got none"),
    ({"content": b'{"request": "jazz", "k": NaN}', "headers": {"content-type": "application/json"}}, 422, "integer"),
    ({"content": b'{"request": NaN}', "headers": {"content-type": "application/json"}}, 422, "valid string"),
])
def test_common_client_mistakes_get_a_4xx_saying_what_to_send(server: str, kwargs: dict, status: int,
                                                              says: str) -> None:
    r = httpx.post(f"{server}/recommend", **kwargs)
    assert r.status_code == status and says in r.text


def _stalled(url: str) -> socket.socket:
    """A connection that sent a request's headers and none of its body."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n")
    return conn


def test_a_stalled_body_is_answered_408_and_its_connection_closed(rec: Recommender) -> None:
    with running_server(create_app(rec, body_timeout_s=0.5)) as url:
        conn = _stalled(url)
        reply = b""
        while chunk := conn.recv(4096):  # until the server closes the connection
            reply += chunk
        conn.close()
        assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in reply
        assert httpx.post(f"{url}/recommend", json={"request": "sad piano", "k": 1}).status_code == 200


@pytest.mark.subprocess
def test_sigterm_stops_the_server_despite_stalled_connections(catalog_file: Path, home: Path, tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    env = {**os.environ, "MELSCRIBE_HOME": str(home)}
    server = subprocess.Popen([sys.executable, "-m", "melscribe.cli", "serve", "--catalog", str(catalog_file),
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # the model loads and the index is read: up to a minute on a busy machine
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                time.sleep(0.1)
        stalled = [_stalled(url) for _ in range(3)]
        start = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        # the stalled bodies time out (10 s) or the graceful shutdown gives up on them (10 s), whichever is first
        assert time.monotonic() - start < 15
        for conn in stalled:
            conn.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_server_listens_while_it_builds_and_says_so(rec: Recommender) -> None:
    import threading

    release = threading.Event()

    def slow_build() -> Recommender:
        assert release.wait(30)
        return rec

    with running_server(create_app(slow_build)) as url:
        health = httpx.get(f"{url}/health")
        assert health.status_code == 503 and health.json()["status"] == "building"
        assert isinstance(health.json()["seconds"], float)
        early = httpx.post(f"{url}/recommend", json={"request": "sad piano"})
        assert early.status_code == 503 and "still building" in early.json()["detail"]
        assert early.headers["retry-after"] == "5"
        release.set()
        for _ in range(100):
            if httpx.get(f"{url}/health").status_code == 200:
                break
            time.sleep(0.05)
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        assert httpx.post(f"{url}/recommend", json={"request": "sad piano", "k": 1}).json()["results"][0]["track_id"] \
            == "ballad"


def test_a_failed_build_is_reported_and_docs_are_off(rec: Recommender) -> None:
    def broken() -> Recommender:
        raise InvalidRequestError("the catalog has no descriptors")

    with running_server(create_app(broken)) as url:
        for _ in range(100):
            if httpx.get(f"{url}/health").json()["status"] != "building":
                break
            time.sleep(0.05)
        health = httpx.get(f"{url}/health").json()
        assert health["status"] == "failed" and "no descriptors" in health["detail"]
        assert "could not build" in httpx.post(f"{url}/recommend", json={"request": "jazz"}).json()["detail"]
        # /docs would load its scripts from a CDN, which an offline server cannot reach: off; the schema stays
        assert httpx.get(f"{url}/docs").status_code == 404 and httpx.get(f"{url}/openapi.json").status_code == 200
