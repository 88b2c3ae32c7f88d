"""The batch API and the batching server: answers equal one-at-a-time answers, concurrent requests share
batches, and a full queue answers 503 while the queued requests still get their answers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from melscribe.errors import InvalidRequestError
from melscribe.serve.api import create_app
from melscribe.serve.recommend import Recommender

from serve_support import recommender_in, running_server, text_encoder, write_catalog

REQUESTS = ["upbeat tropical music with steel drums", "a sad piano ballad", "dark fast techno",
            "aggressive heavy metal", "smooth jazz saxophone for a lounge", "calm ambient synth pads",
            "country with a banjo", "an epic orchestra with violins"]


@pytest.fixture(scope="module")
def rec(minilm, tmp_path_factory: pytest.TempPathFactory, home: Path) -> Recommender:
    catalog = write_catalog(tmp_path_factory.mktemp("catalog") / "catalog.csv")
    return recommender_in(home, text_encoder(minilm), catalog)


def test_recommend_many_equals_one_at_a_time(rec: Recommender) -> None:
    many = rec.recommend_many(REQUESTS, 3, exclude_descriptors=["reggae"])
    assert many == [rec.recommend(r, 3, exclude_descriptors=["reggae"]) for r in REQUESTS]
    assert [m[0].track_id for m in many[:4]] == ["calypso-1", "ballad", "techno", "metal"]
    assert rec.recommend_many([], 3) == []


def test_recommend_many_checks_every_request_first(rec: Recommender) -> None:
    with pytest.raises(InvalidRequestError, match="not one string"):
        rec.recommend_many("a sad piano ballad")
    with pytest.raises(InvalidRequestError, match="empty"):
        rec.recommend_many(["a sad piano ballad", "  "])


def test_concurrent_requests_share_batches_and_get_their_own_answers(rec: Recommender) -> None:
    app = create_app(rec, max_batch=8, max_wait_ms=20)
    requests = REQUESTS * 4
    with running_server(app) as url, httpx.Client(timeout=30) as client:
        def ask(request: str) -> list[dict]:
            r = client.post(f"{url}/recommend", json={"request": request, "k": 2})
            assert r.status_code == 200, r.text
            return r.json()["results"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, requests))
    assert answers == [[x.to_dict() for x in rec.recommend(r, 2)] for r in requests]
    assert app.state.batcher.batches < len(requests), "concurrent requests were encoded one at a time"


class _BlockedRecommender:
    """A recommender whose answers wait for ``release`` (to fill the server's queue)."""

    def __init__(self, rec: Recommender):
        self.rec, self.release, self.started = rec, threading.Event(), threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.rec, name)

    def answer(self, prepared):
        self.started.set()
        assert self.release.wait(30)
        return self.rec.answer(prepared)


def test_a_full_queue_answers_503_and_queued_requests_are_still_answered(rec: Recommender) -> None:
    blocked = _BlockedRecommender(rec)
    app = create_app(blocked, max_batch=1, max_wait_ms=0, max_queue=1)
    with running_server(app) as url, httpx.Client(timeout=30) as client, ThreadPoolExecutor(2) as pool:
        post = lambda request: client.post(f"{url}/recommend", json={"request": request, "k": 1})  # noqa: E731
        first = pool.submit(post, "a sad piano ballad")  # taken by the worker, which blocks
        assert blocked.started.wait(10)
        second = pool.submit(post, "dark fast techno")    # waits in the queue (1 place)
        for _ in range(200):
            if app.state.batcher.queued == 1:
                break
            threading.Event().wait(0.01)
        busy = post("calm ambient synth pads")
        assert busy.status_code == 503 and "busy" in busy.json()["detail"]
        blocked.release.set()
        assert first.result().status_code == 200 and first.result().json()["results"][0]["track_id"] == "ballad"
        assert second.result().status_code == 200 and second.result().json()["results"][0]["track_id"] == "techno"
