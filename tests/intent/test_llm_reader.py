"""The opt-in LLM reader of rejections (melscribe.intent.llm_reader) against the stdlib chat server of
tests/llm_support.py, which answers with a chatty preamble around the request it was sent."""

from __future__ import annotations

import pytest

pytest.importorskip("openai")

from llm_support import FakeChatServer  # noqa: E402

from melscribe.encoding.encoder import TextEncoder  # noqa: E402
from melscribe.intent.llm_reader import LLMRejectionReader, MODEL_ENV, grounded, parse_answer, reader_from_env  # noqa: E402
from melscribe.intent.parser import IntentParser  # noqa: E402
from melscribe.llm.client import LLMSettings  # noqa: E402

VOCABULARY = ["jazz", "smooth jazz", "piano", "country", "rock", "no vocals", "female vocal"]


def test_parse_answer_finds_the_json_in_a_chatty_reply() -> None:
    assert parse_answer('Sure! {"rejects": ["jazz", " "]} hope that helps') == ["jazz"]
    assert parse_answer('{"other": 1} then {"rejects": []}') == []
    assert parse_answer("I think they don't want jazz") is None
    assert parse_answer('{"rejects": "jazz"}') is None


def test_only_phrases_written_in_the_request_are_kept() -> None:
    found = grounded("Piano, but I've gone off JAZZ", ["jazz", "country", "zz"])
    assert [(r.phrase, r.start, r.end) for r in found] == [("jazz", 25, 29)]


def test_no_reader_unless_configured(monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> None:
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert reader_from_env() is None and IntentParser(VOCABULARY, None, encoder).reader is None


@pytest.fixture(scope="module")
def server():
    with FakeChatServer() as s:
        yield s


def test_the_reader_asks_the_endpoint_and_its_answer_is_matched(server: FakeChatServer,
                                                                encoder: TextEncoder) -> None:
    reader = LLMRejectionReader(LLMSettings(model="m", base_url=server.base_url, api_key="k", max_retries=0))
    parser = IntentParser(VOCABULARY, None, encoder, reader=reader)
    # the fake server echoes the request: a request carrying a JSON answer is answered with it
    request = 'piano {"rejects": ["country"]}'
    intent = parser.parse(request)
    assert server.requests_for()[request] == 1
    assert intent.rejected_phrases == ("country",) and intent.rejected == ("country",)
    assert reader.failures == 0


def test_an_answer_that_is_not_json_falls_back_to_the_rules(server: FakeChatServer, encoder: TextEncoder) -> None:
    reader = LLMRejectionReader(LLMSettings(model="m", base_url=server.base_url, api_key="k", max_retries=0))
    parser = IntentParser(VOCABULARY, None, encoder, reader=reader)
    intent = parser.parse("piano, anything but jazz")  # echoed without JSON: the rules read it
    assert reader.failures == 1 and set(intent.rejected) == {"jazz", "smooth jazz"}
    assert parser.parse("rock [400]").rejected == () and reader.failures == 2  # an HTTP error: the rules too
