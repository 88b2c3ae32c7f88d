"""Fault injection over HTTP: bodies that are not valid Unicode, too large, ask too much or would echo long
input; ``melscribe serve`` takes the limits from the command line. ``client`` (``serve/conftest.py``) serves
``rec`` (``tests/conftest.py``) with a 4096-byte body limit and ``max_k`` 50."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


# --- 4, 8. requests that are not text, too long, too large, or ask too much --------------------------------


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
    long = "calm piano " * 300  # 3,300 characters, under the body limit (read whole: no warning)
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
