"""Tests of melscribe.intent (negation cues, scope, matching to a vocabulary), of intent handling in the
recommender (exclusion, switch, explanation, CLI and HTTP), of semantic ``exclude_descriptors`` and of
melscribe.evaluation.intent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melscribe.errors import DataError, InvalidRequestError
from melscribe.intent.matching import DEFAULT_THRESHOLD, best_threshold, calibrate_threshold, load_synonym_pairs
from melscribe.intent.parser import IntentParser, parse_intent
from melscribe.intent.rejections import find_rejections, may_reject
from melscribe.intent.words import is_negative_descriptor, negated_part, stem, stems
from melscribe.evaluation.intent import CarryJudge, evaluate_intent, load_requests, metric_words
from melscribe.serve.catalog import Catalog
from melscribe.serve.commands import format_table, track_label
from melscribe.encoding.encoder import TextEncoder
from melscribe.serve.recommend import Recommender

from serve_support import ROWS, write_catalog

REQUESTS_FILE = Path(__file__).parents[2] / "experiments" / "data" / "negated_requests.jsonl"


def phrases(request: str) -> list[str]:
    return [r.phrase for r in find_rejections(request)]


# --- cues and scope (text only) -------------------------------------------------------------------------

@pytest.mark.parametrize("request_, expected", [
    ("relaxing music for a rainy evening but not jazz", ["jazz"]),
    ("energetic workout music with no vocals", ["vocals"]),
    ("acoustic folk without any drums", ["drums"]),
    ("anything but country", ["country"]),
    ("calm piano, nothing too sad", ["sad"]),
    ("party music that isn't techno", ["techno"]),
    ("I don't want anything with bagpipes, just celtic folk", ["bagpipes"]),
    ("dreamy synth pop, less guitar", ["guitar"]),
    ("sleepy ambient sounds, avoid anything loud", ["loud"]),
    ("positive vibes only, no more sad songs", ["sad"]),
    ("soft female vocals instead of rap", ["rap"]),
    ("latin music rather than pop", ["pop"]),
    ("I'd rather hear strings than synths", ["synths"]),
    ("upbeat pop but not k-pop", ["k-pop"]),
    ("rock music minus the screaming", ["screaming"]),
    ("guitar music free of distortion", ["distortion"]),
    ("relaxing harp music, drum-free", ["drum"]),
    ("anything except heavy metal", ["heavy metal"]),
    ("I'm not a fan of trumpets, give me a mellow big band sound", ["trumpets"]),
    ("peaceful flute music that doesn't sound sad", ["sad"]),
    ("a studio recording, not a live performance", ["live"]),                # "performance" names no sound
    ("an epic orchestral piece, but not a horror movie vibe", ["horror"]),
    ("blues guitar, except the slow ones", ["slow"]),
    ("a hip hop beat with no rapping over it", ["rapping"]),
    ("I can't stand autotune", ["autotune"]),
    ("No vocals please", ["vocals"]),
])
def test_cues(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected", [
    ("no vocals, upbeat drums", ["vocals"]),                                  # punctuation ends the scope
    ("not jazz but blues", ["jazz"]),                                         # so does "but"
    ("without drums and with a warm piano", ["drums"]),                       # "and", "with"
    ("no vocals please and something upbeat", ["vocals"]),
    ("without synths for my morning run", ["synths"]),
    ("no drums and no loud sounds", ["drums", "loud"]),                      # each cue its own scope
    ("music for a workout, but not too heavy or high pitched", ["heavy", "high pitched"]),  # coordination
    ("background music, no vocals or drums", ["vocals", "drums"]),
    ("nothing noisy or low quality", ["noisy", "low quality"]),
    ("no talking nor preaching", ["talking", "preaching"]),
    ("no sad piano ballads with strings", ["sad piano ballads"]),           # trailing "music"-like words go
    ("a track without drums or bass, just piano", ["drums", "bass"]),
])
def test_scope(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_", [
    "I know you'll find me some upbeat piano music",
    "piano music for a snowy night",
    "nothing but love songs for tonight",
    "not only guitar but also violin, in a folk style",
    "no doubt an upbeat tune would be great",
    "I don't know, something upbeat",
    "energetic music, I don't care about the genre",
    "royalty-free background music for my video",
    "a carefree summer song",
    "know-how of jazz piano, knowledge, nocturne, Pianoforte, notable, nothingness",
    "more or less acoustic",
    "a soundtrack that never gets old",
    "upbeat, whether or not it has vocals",
])
def test_false_cues_reject_nothing(request_: str) -> None:
    assert find_rejections(request_) == []


def test_may_reject_is_a_quick_test_that_every_rejection_passes() -> None:
    rejecting = ["energetic workout music with no vocals", "anything but country", "acoustic folk without any drums",
                 "a drum-free ambient track", "calm piano, nothing too sad", "jazz rather than rock"]
    assert all(find_rejections(r) and may_reject(r) for r in rejecting)
    plain = ["I know you'll find me some upbeat piano music", "piano music for a snowy night", "notable nocturne vibes"]
    assert not any(may_reject(r) for r in plain)


def test_degree_cues_and_spans() -> None:
    sad, = find_rejections("calm piano, nothing too sad")
    assert sad.degree and sad.cue == "nothing too"
    assert not find_rejections("no sad songs")[0].degree
    r, = find_rejections("Relaxing music but NOT jazz")
    assert "Relaxing music but NOT jazz"[r.start:r.end] == "but NOT jazz"


def test_the_rejection_is_cut_out_whole(parser: IntentParser) -> None:
    text = parser.parse("gentle acoustic guitar, no vocals at all").text
    assert text == "gentle acoustic guitar, no vocals, instrumental"
    assert parser.parse("some folk music that's not too sad").text == "some folk music"
    assert parser.parse("folk, I don't want any drums please").text == "folk, no drums"
    assert parser.parse("something relaxing, but not jazz though").text == "something relaxing"


def test_stems_and_negative_descriptors() -> None:
    assert stem("drums") == stem("drumming") == stem("drummer") == "drum"
    assert stem("distorted") == stem("distortion") and stem("jazzy") == "jazz" and stem("sadness") == "sad"
    assert stems("hip-hop") == stems("hip hop") and stems("k-pop") != stems("pop")
    assert stems("male singer") == stems("male voice") == stems("male vocals") == ("male", "vocal")
    assert stems("e-guitar") == stems("electric guitar")
    assert is_negative_descriptor("no vocals") and is_negative_descriptor("non-musical")
    assert not is_negative_descriptor("instrumental") and not is_negative_descriptor("nocturne")
    assert negated_part("no vocals") == "vocals" and negated_part("female vocal") is None


# --- matching to a vocabulary (packaged MiniLM) ----------------------------------------------------------

VOCABULARY = [
    "no vocals", "no voices", "no singer", "instrumental", "instrumental music", "female vocal", "male singing",
    "male singer", "passionate male vocal", "vocal harmony", "rap", "choir", "no drums", "acoustic drums",
    "drumming", "punchy snare", "piano", "calming piano", "piano ballad", "jazz", "smooth jazz", "jazzy",
    "country", "country music", "heavy metal", "metal", "slow tempo", "fast tempo", "female voice", "male voice",
    "sad", "sadness", "happy", "tropical", "steel drums", "upbeat", "acoustic guitar", "relaxing", "folk",
    "electric guitar", "bass guitar", "organ",
]


@pytest.fixture(scope="module")
def parser(encoder: TextEncoder) -> IntentParser:
    return IntentParser(VOCABULARY, None, encoder)


def test_threshold_is_calibrated_on_the_labelled_pairs(encoder: TextEncoder, parser: IntentParser) -> None:
    pairs = load_synonym_pairs()
    assert len(pairs) >= 300 and any(s for *_, s in pairs) and not all(s for *_, s in pairs)
    assert calibrate_threshold(encoder) == parser.threshold == DEFAULT_THRESHOLD
    assert best_threshold([0.9, 0.8, 0.7, 0.3, 0.2], [True, True, False, False, False]) == 0.75


def test_a_wanted_absence(parser: IntentParser) -> None:
    intent = parser.parse("a track with no vocals")
    assert intent.rejected_phrases == ("vocals",)
    assert {"no vocals", "instrumental"} <= set(intent.wanted)
    assert {"female vocal", "male singing", "male singer", "passionate male vocal", "vocal harmony", "rap",
            "choir"} <= set(intent.rejected)
    assert not {"no vocals", "no voices", "no singer", "instrumental", "instrumental music"} & set(intent.rejected)
    assert intent.text == "a track, no vocals, instrumental"  # the rejection is gone, the absence is asked for


def test_rejected_phrases_are_matched_by_word_stem_and_head(parser: IntentParser) -> None:
    assert set(parser.parse("anything but jazz").rejected) == {"jazz", "smooth jazz", "jazzy"}
    assert set(parser.parse("not heavy metal").rejected) == {"heavy metal", "metal"}
    assert set(parser.parse("without drums").rejected) >= {"acoustic drums", "drumming", "punchy snare", "steel drums"}
    assert set(parser.parse("calm piano, nothing too sad").rejected) == {"sad", "sadness"}
    assert parser.parse("anything but country").text == "music"


def test_siblings_are_not_synonyms(encoder: TextEncoder) -> None:
    loose = IntentParser(VOCABULARY, None, encoder, threshold=0.3)  # even with a very low threshold
    assert "fast tempo" not in loose.parse("soulful r&b, not a slow tempo").rejected
    assert "female voice" not in loose.parse("no male voice").rejected
    assert "acoustic guitar" not in loose.parse("no electric guitar").rejected


def test_what_the_request_asks_for_is_never_rejected(parser: IntentParser) -> None:
    intent = parser.parse("jazz, anything but smooth jazz")
    assert "jazz" in intent.wanted and "jazz" not in intent.rejected and "smooth jazz" in intent.rejected


def test_requests_without_rejections(parser: IntentParser) -> None:
    for request in ("I know you'll find me some upbeat piano music", "nothing but love songs", "piano"):
        intent = parser.parse(request)
        assert intent.empty and intent.rejected == () and intent.text == request
    assert parser.parse("upbeat tropical piano").wanted == ("upbeat", "tropical", "piano")


def test_parse_intent_function_and_to_dict(encoder: TextEncoder) -> None:
    intent = parse_intent("relaxing folk but not country", VOCABULARY, encoder)
    d = intent.to_dict()
    assert d["avoided"] == ["country"] and d["wanted"] == ["relaxing", "folk"]
    assert d["avoided_descriptors"] == 2 and d["text"] == "relaxing folk"
    assert intent.describe() == "wants relaxing, folk; avoids country (2 descriptors)"
    json.dumps(d)


# --- the recommender ---------------------------------------------------------------------------------------

def ids(results) -> list[str]:
    return [r.track_id for r in results]


def test_rejected_descriptors_stay_out(rec: Recommender) -> None:
    results = rec.recommend("upbeat tropical music but no steel drums", k=3)
    assert not {"calypso-1", "calypso-2"} & set(ids(results)) and results[0].track_id == "reggae"
    assert all(r.intent["avoided"] == ("steel drums",) and r.intent["carries_avoided"] == () for r in results)
    plain = rec.recommend("upbeat tropical music but no steel drums", k=3, intent=False)
    assert {"calypso-1", "calypso-2"} <= set(ids(plain)) and all(r.intent is None for r in plain)
    sung = {t.id for t in rec.catalog if any("vocal" in d for d in t.descriptors)}
    assert not sung & set(ids(rec.recommend("a slow sad piano ballad with no vocals", k=5)))


def test_the_rejection_does_not_pull_its_sets_up(rec: Recommender) -> None:
    assert rec.parse_intent("smooth lounge music, but not jazz").text == "smooth lounge music"
    assert "jazz" not in ids(rec.recommend("smooth lounge music, but not jazz", k=5))
    assert rec.recommend("no jazz", k=1)[0].track_id != "jazz"


def test_too_few_tracks_left_are_filled_with_the_rejected_ones_last(rec: Recommender) -> None:
    results = rec.recommend("anything but male vocals", k=len(rec.catalog))
    assert len(results) == len(rec.catalog) and [r.rank for r in results] == list(range(1, 13))
    carrying = [r for r in results if r.intent["carries_avoided"]]
    assert ids(carrying) and set(ids(carrying)) == {"hiphop", "country"} and results[-2:] == carrying
    assert all("male vocal" in r.intent["carries_avoided"] for r in carrying)


def test_intent_switch(rec: Recommender, encoder: TextEncoder, catalog: Catalog) -> None:
    off = Recommender(encoder, catalog, intent=False)
    request = "calm relaxing music without piano"
    assert off.recommend(request, k=5) == rec.recommend(request, k=5, intent=False)
    assert off.recommend(request, k=5, intent=True) == rec.recommend(request, k=5)
    assert "ballad" in ids(off.recommend(request, k=3)) and "ballad" not in ids(rec.recommend(request, k=5))
    for request in ("I know you'll love upbeat tropical music", "sad piano", "dark techno"):
        assert rec.recommend(request, k=5) == off.recommend(request, k=5)  # nothing rejected: nothing changes


def test_recommendation_to_dict_and_table(rec: Recommender) -> None:
    results = rec.recommend("anything but male vocals", k=len(rec.catalog))
    d = results[0].to_dict()
    assert d["intent"] == {"wanted": [], "avoided": ["male vocals"], "carries_avoided": []}
    assert json.loads(json.dumps(d)) == d
    assert results[-1].to_dict()["intent"]["carries_avoided"] == ["male vocal"]
    table = format_table(results).splitlines()
    assert table[0].split()[:6] == ["rank", "score", "track", "title", "/", "link"]
    assert "[carries avoided: male vocal]" in table[-1] and "The Pans – Island Morning" in format_table(results)
    assert track_label({"url": "https://example.com/x"}) == "https://example.com/x" and track_label({}) == ""
    assert track_label({"title": "Drift"}) == "Drift"


def test_exclude_descriptors_are_semantic(encoder: TextEncoder, tmp_path: Path) -> None:
    rows = ROWS + [("calm-piano", "calming piano, soft, relaxing", "Still", "Ada"),
                   ("piano-ballad", "piano ballad, emotional", "Last Letter", "Ada"),
                   ("organ", "organ, church, calm", "Sunday", "Choir")]
    rec = Recommender(encoder, write_catalog(tmp_path / "catalog.csv", rows))
    got = ids(rec.recommend("calm relaxing piano", k=20, exclude_descriptors=["piano"]))
    assert not {"ballad", "calm-piano", "piano-ballad"} & set(got) and "organ" in got and len(got) == 15 - 3
    got = ids(rec.recommend("boom bap", k=20, exclude_descriptors=["drum"]))  # not a descriptor, names some
    assert not {"hiphop", "metal", "calypso-1"} & set(got)
    with pytest.raises(InvalidRequestError, match=r"unknown descriptor\(s\) in exclude_descriptors: 'kazoo'"):
        rec.recommend("calm piano", exclude_descriptors=["kazoo", "piano"])
    with pytest.raises(InvalidRequestError, match=r"unknown descriptor\(s\) in require_descriptors: 'kazoo'"):
        rec.recommend("calm piano", require_descriptors=["kazoo"])


def test_http_intent_field(rec: Recommender) -> None:
    from fastapi.testclient import TestClient

    from melscribe.serve.api import create_app

    with TestClient(create_app(rec)) as client:  # as a context manager: the app's batching worker runs
        body = {"request": "upbeat tropical music but no steel drums", "k": 3}
        on = client.post("/recommend", json=body).json()
        assert on["intent"]["avoided"] == ["steel drums"] and on["results"][0]["intent"]["avoided"] == ["steel drums"]
        assert [r["track_id"] for r in on["results"]] == ids(rec.recommend(body["request"], 3))
        off = client.post("/recommend", json={**body, "intent": False}).json()
        assert off["intent"] is None
        assert off["results"] == [r.to_dict() for r in rec.recommend(body["request"], 3, intent=False)]
        assert client.post("/recommend", json={**body, "intent": "yes"}).status_code == 422


def test_cli_no_intent(encoder: TextEncoder, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture) -> None:
    import argparse

    from melscribe.serve import commands

    monkeypatch.setattr(commands, "TextEncoder", lambda model, backend="torch": encoder)
    path = write_catalog(tmp_path / "catalog.csv")

    def run(*argv: str) -> list[str]:
        parser = argparse.ArgumentParser(prog="melscribe")
        commands.register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(["recommend", *argv, "--catalog", str(path)])
        args.func(args)
        return capsys.readouterr().out.splitlines()

    out = run("tropical music but no steel drums", "-k", "2")
    assert out[0] == "intent: wants tropical; avoids steel drums (2 descriptors)" and "calypso" not in "\n".join(out)
    out = run("tropical music but no steel drums", "-k", "2", "--no-intent")
    assert out[0].startswith("rank") and "calypso" in "\n".join(out)
    answer = json.loads("\n".join(run("tropical music but no steel drums", "-k", "2", "--json")))
    assert answer["intent"]["avoided"] == ["steel drums"] and answer["results"][0]["intent"]["avoided"] == ["steel drums"]


# --- evaluation ---------------------------------------------------------------------------------------------

def test_the_request_set(real_data_dir: Path) -> None:
    vocabulary = Catalog.from_musiccaps(real_data_dir).vocabulary()
    requests = load_requests(REQUESTS_FILE, vocabulary)
    assert len(requests) >= 60 and len({r.id for r in requests}) == len(requests)
    assert sum(bool(r.rejects) for r in requests) >= 60 and {r.split for r in requests} == {"calibration", "report"}
    with pytest.raises(DataError, match="not in the catalog's vocabulary: 'jazz'$"):
        load_requests(REQUESTS_FILE, [v for v in vocabulary if v != "jazz"] + ["kazoo"])


def test_carry_judge_and_evaluation(rec: Recommender, tmp_path: Path) -> None:
    vocab = rec.index.vocabulary
    judge = CarryJudge(vocab, rec.index.vocabulary_embeddings, threshold=0.99, loose_threshold=0.0)
    assert metric_words("Male Vocals, hip-hop") == ("male", "vocal", "hip", "hop")
    assert judge.carried(["soft female vocal", "piano"], ["female vocal", "male vocal", "drums"]) == ["female vocal"]
    assert judge.carried(["no vocals"], ["vocals"]) == [] and judge.carried(["fast drums"], ["drums"]) == ["drums"]
    assert judge.carried(["calm"], ["relaxing"], "word") == []
    assert judge.carried(["calm"], ["relaxing"], "loose") == ["relaxing"]
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "split": "report", "request": "tropical music but no steel drums", "rejects": ["steel drums"],
         "wants": ["tropical"]},
        {"id": "b", "split": "calibration", "request": "sad piano", "rejects": [], "wants": ["piano"]}]))
    requests = load_requests(path, vocab)
    on = evaluate_intent(rec, requests, judge, intent=True, k=3)
    off = evaluate_intent(rec, requests, judge, intent=False, k=3)
    report_on, report_off = on["splits"]["report"], off["splits"]["report"]
    assert report_on["rejected@3 word"] == 0 and report_off["rejected@3 word"] == pytest.approx(2 / 3)
    assert report_on["clean@3 word"] == 1 and report_on["wanted@3 word"] == pytest.approx(1 / 3)
    assert np.isnan(on["splits"]["calibration"]["rejected@3 word"]) and on["splits"]["all"]["requests"] == 2


def test_the_quick_cue_check_lets_every_cue_through() -> None:
    from melscribe.intent.cues import CUES, POSTPOSED_CUES, REPLY_CUES
    from melscribe.intent.rejections import _may_reject

    for cue in CUES + POSTPOSED_CUES + REPLY_CUES:
        assert _may_reject().search(f"calm piano {cue} drums"), cue
    assert _may_reject().search("a sugar-free pop song") and _may_reject().search("rather calm than loud")
    assert not _may_reject().search("i know a piano ballad with soft female vocals")


class _CountingEncoder:
    """An encoder that counts the texts it is asked to encode."""

    def __init__(self, encoder: TextEncoder):
        self.encoder, self.texts = encoder, 0

    def encode(self, texts, **options):
        self.texts += len(texts)
        return self.encoder.encode(texts, **options)


def test_the_work_of_reading_one_request_is_bounded(encoder: TextEncoder) -> None:
    from melscribe.intent.parser import MAX_REJECTIONS
    from melscribe.intent.rejections import find_rejections

    counting = _CountingEncoder(encoder)
    parser = IntentParser(VOCABULARY, None, counting)
    counting.texts = 0
    names = ["jazz", "metal", "piano", "drums", "banjo", "techno", "reggae", "violin", "synth", "rap"]
    flood = " ".join(f"but not {names[i % 10]}{i}" for i in range(600))[:9990]  # 594 distinct rejections
    assert len(find_rejections(flood)) > 500 and len(find_rejections(flood, limit=MAX_REJECTIONS)) == MAX_REJECTIONS
    intent = parser.parse(flood)
    assert len(intent.rejected_phrases) == MAX_REJECTIONS and counting.texts <= MAX_REJECTIONS
    counting.texts = 0
    same = parser.parse("calm music " + "but not jazz " * 700)  # one phrase repeated: matched once
    assert same.rejected_phrases == ("jazz",) and counting.texts <= 1
