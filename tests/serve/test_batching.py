"""The batch API and the batching server: answers equal one-at-a-time answers, concurrent requests share
batches, and a full queue answers 503 while the queued requests still get their answers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from melscribe.errors import InvalidRequestError
from melscribe.serve.api import create_app
from melscribe.serve.recommend import Recommender

from serve_support import assert_same_answers, running_server

REQUESTS = ["upbeat tropical music with steel drums", "a sad piano ballad", "dark fast techno",
            "aggressive heavy metal", "smooth jazz saxophone for a lounge", "calm ambient synth pads",
            "country with a banjo", "an epic orchestra with violins"]


def test_recommend_many_equals_one_at_a_time(rec: Recommender) -> None:
    many = rec.recommend_many(REQUESTS, 3, exclude_descriptors=["reggae"])
    alone = [rec.recommend(r, 3, exclude_descriptors=["reggae"]) for r in REQUESTS]
    assert_same_answers([[x.to_dict() for x in m] for m in many], [[x.to_dict() for x in a] for a in alone])
    assert [m.low_confidence for m in many] == [a.low_confidence for a in alone]
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
    assert_same_answers(answers, [[x.to_dict() for x in rec.recommend(r, 2)] for r in requests])
    assert app.state.batcher.batches < len(requests), "concurrent requests were encoded one at a time"


class _BlockedRecommender:
    """A recommender whose encoding waits for ``release`` (to fill the server's queue)."""

    def __init__(self, rec: Recommender):
        self.rec, self.release, self.started = rec, threading.Event(), threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.rec, name)

    def embed_requests(self, prepared):
        self.started.set()
        assert self.release.wait(30)
        return self.rec.embed_requests(prepared)


def _wait_for(condition) -> None:
    for _ in range(500):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the server never reached the expected state")


class _TimedRecommender:
    """A recommender recording when each batch's encoding starts and its ranking ends; ranking is slow."""

    def __init__(self, rec: Recommender):
        self.rec, self.events, self.lock = rec, [], threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self.rec, name)

    def embed_requests(self, prepared):
        with self.lock:
            self.events.append(("encode", prepared[0].text))
        return self.rec.embed_requests(prepared)

    def rank_embedded(self, queries, prepared):
        threading.Event().wait(0.3)
        with self.lock:
            self.events.append(("ranked", prepared[0].text))
        return self.rec.rank_embedded(queries, prepared)


def test_the_next_batch_is_encoded_while_one_is_ranked(rec: Recommender) -> None:
    timed = _TimedRecommender(rec)
    app = create_app(timed, max_batch=1, max_wait_ms=0)
    with running_server(app) as url, httpx.Client(timeout=30) as client, ThreadPoolExecutor(2) as pool:
        post = lambda request: client.post(f"{url}/recommend", json={"request": request, "k": 1})  # noqa: E731
        first = pool.submit(post, "a sad piano ballad")
        _wait_for(lambda: timed.events)
        second = pool.submit(post, "dark fast techno")
        assert first.result().json()["results"][0]["track_id"] == "ballad"
        assert second.result().json()["results"][0]["track_id"] == "techno"
    # the second batch was encoded before the first one's (slow) ranking ended
    assert timed.events == [("encode", "a sad piano ballad"), ("encode", "dark fast techno"),
                            ("ranked", "a sad piano ballad"), ("ranked", "dark fast techno")]


def test_a_full_queue_answers_503_and_queued_requests_are_still_answered(rec: Recommender) -> None:
    blocked = _BlockedRecommender(rec)
    app = create_app(blocked, max_batch=1, max_wait_ms=0, max_queue=1)
    with running_server(app) as url, httpx.Client(timeout=30) as client, ThreadPoolExecutor(3) as pool:
        post = lambda request: client.post(f"{url}/recommend", json={"request": request, "k": 1})  # noqa: E731
        first = pool.submit(post, "a sad piano ballad")  # taken by the worker; its encoding blocks
        assert blocked.started.wait(10)
        second = pool.submit(post, "dark fast techno")    # taken as the second batch in flight
        _wait_for(lambda: len(app.state.batcher._in_flight) == 2)
        third = pool.submit(post, "country with a banjo")  # waits in the queue (1 place)
        _wait_for(lambda: app.state.batcher.queued == 1)
        busy = post("calm ambient synth pads")
        assert busy.status_code == 503 and "busy" in busy.json()["detail"]
        assert busy.headers["retry-after"] == "1"
        blocked.release.set()
        for future, track in ((first, "ballad"), (second, "techno"), (third, "country")):
            assert future.result().status_code == 200, future.result().text
            assert future.result().json()["results"][0]["track_id"] == track
