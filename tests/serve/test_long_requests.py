"""recommend() reads a request longer than the encoder's window whole: what is asked at its end is what comes
back, short requests are embedded as before bit for bit, batches answer as one request at a time, torch as ONNX."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from melscribe.encoding.encoder import TextEncoder
from melscribe.serve.recommend import BATCH_SCORE_TOLERANCE, Recommender

from serve_support import assert_same_answers, recommender_in

CHATTER = ("I have been using this app for a couple of weeks now and I mostly like it. "
           "My sister told me to ask here because she found a lot of good stuff this way. "
           "I work long shifts at the hospital and the commute home takes almost an hour. ") * 10
#: Chatter over the window (530 tokens), then the wanted music at the very end.
LONG = {"calypso": CHATTER + "What I want is upbeat tropical music with steel drums.",
        "metal": CHATTER + "Something aggressive: heavy metal with distorted guitars and fast drums.",
        "ballad": "A sad piano ballad. " + CHATTER + "Oh, and a soft female vocal."}
SHORT = ["upbeat tropical steel drums", "something sad on the piano", "aggressive fast music"]


def test_the_end_of_a_long_request_decides_the_results(rec: Recommender) -> None:
    assert all(rec.encoder.token_count(r) > rec.encoder.max_seq_length for r in LONG.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is dropped: no warning
        got = {name: rec.recommend(request, k=2) for name, request in LONG.items()}
    assert {r.track_id for r in got["calypso"]} == {"calypso-1", "calypso-2"}
    assert "steel drums" in got["calypso"][0].matched_descriptors
    assert got["metal"][0].track_id == "metal" and "heavy metal" in got["metal"][0].matched_descriptors
    assert got["ballad"][0].track_id == "ballad"
    # read as before (its first 256 tokens, all chatter), the request would not have found the music
    truncated = rec.search(rec.encoder.encode([LONG["calypso"]])[0], k=2)
    assert not {r.track_id for r in truncated} & {"calypso-1", "calypso-2"}
    assert got["calypso"][0].score > truncated[0].score + 0.3


def test_short_requests_are_embedded_as_before_bit_for_bit(rec: Recommender) -> None:
    prepared = [rec.prepare(r) for r in SHORT]
    assert np.array_equal(rec.embed_requests(prepared), rec.encoder.encode(SHORT))
    assert np.array_equal(rec.embed_requests(prepared[:1]), rec.encoder.encode(SHORT[:1]))


def test_batched_long_requests_answer_as_one_at_a_time(rec: Recommender) -> None:
    requests = [LONG["calypso"], SHORT[0], LONG["ballad"], SHORT[1], LONG["metal"]]
    alone = [[r.to_dict() for r in rec.recommend(q, k=5)] for q in requests]
    batched = [[r.to_dict() for r in answer] for answer in rec.recommend_many(requests, k=5)]
    assert_same_answers(batched, alone)
    assert BATCH_SCORE_TOLERANCE == 1e-5


def test_torch_and_onnx_recommend_alike_on_long_requests(rec: Recommender, home: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        onnx = Recommender(TextEncoder("all-MiniLM-L6-v2", backend="onnx"), rec.catalog, index=rec.index)
    for request in LONG.values():
        a, b = rec.recommend(request, 10), onnx.recommend(request, 10)
        assert [r.track_id for r in a] == [r.track_id for r in b]
        np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-4)


def test_the_longest_request_accepted_is_read_and_a_longer_one_refused(rec: Recommender) -> None:
    from melscribe.errors import InvalidRequestError
    from melscribe.serve.recommend import MAX_REQUEST_CHARS

    request = (CHATTER * 8)[:MAX_REQUEST_CHARS - 60] + " Upbeat tropical music with steel drums."
    assert len(request) <= MAX_REQUEST_CHARS
    assert rec.recommend(request, k=1)[0].track_id.startswith("calypso")
    with pytest.raises(InvalidRequestError, match="characters"):
        rec.recommend(request + " " * 10 + "x" * 60, k=1)


def test_a_rejection_at_the_end_of_a_long_request_is_read(rec: Recommender) -> None:
    request = CHATTER + "Something with a male vocal and acoustic guitar, but no country."
    parsed = rec.parse_intent(request)  # intent reads the whole text, as it did before
    assert "country" in parsed.rejected and parsed.text.startswith("I have been") and "country" not in parsed.text
    results = rec.recommend(request, k=3)
    assert results[0].intent["avoided"] == ("country",) and results[0].track_id == "hiphop"
    assert all("country" not in r.descriptor_set for r in results)
