"""Fault injection into requests to the Recommender: requests that are not text, too long, or not finite are
refused before the encoder; requests that resemble nothing in the catalog are answered but flagged
low-confidence (also over HTTP and on the command line). ``rec`` (``tests/conftest.py``) recommends from
``serve_support``'s small catalog; ``client`` (``serve/conftest.py``) serves it with small limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from melscribe.errors import InvalidRequestError


# --- 4, 8. requests that are not text, too long, too large, or ask too much --------------------------------


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
