"""Tests of the issue-25 evaluation pieces in melscribe.evaluation.intent (parse confusion, per-family
summaries) and of the forum request files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from melscribe.encoding.encoder import TextEncoder
from melscribe.evaluation.intent import (CarryJudge, NegatedRequest, load_requests, parse_confusion,
                                         summarise_by_family)
from melscribe.intent.parser import IntentParser

DATA = Path(__file__).parents[2] / "experiments" / "data"
FAMILIES = {"prefix", "exclusion", "aversion", "degree", "part", "ambiguous", "plain"}

VOCABULARY = ["jazz", "smooth jazz", "jazz piano", "piano", "pop", "synth pop", "country", "folk", "celtic",
              "irish folk music", "no vocals", "female vocal", "tin whistle"]


def test_forum_files_are_well_formed() -> None:
    held = [json.loads(line) for line in (DATA / "forum_requests.jsonl").read_text().splitlines()]
    dev = [json.loads(line) for line in (DATA / "forum_requests_dev.jsonl").read_text().splitlines()]
    assert len(held) >= 150 and len(dev) >= 50
    assert {r["split"] for r in held} == {"heldout"} and {r["split"] for r in dev} == {"dev"}
    assert {r["family"] for r in held} == FAMILIES == {r["family"] for r in dev}
    assert not {r["request"] for r in held} & {r["request"] for r in dev}
    assert len({r["id"] for r in held + dev}) == len(held) + len(dev)
    for r in held + dev:  # ambiguous and plain requests reject nothing; the others reject or are prefixes
        assert (r["family"] in ("ambiguous", "plain")) <= (r["rejects"] == [])
    assert sum(len(r["request"].split()) > 100 for r in held) >= 5


def test_load_requests_reads_the_family(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "x1", "split": "dev", "family": "aversion", "request": "sick of jazz",
                                "rejects": ["jazz"], "wants": []}) + "\n")
    (r,) = load_requests(path, ["jazz"])
    assert r.family == "aversion" and r.rejects == ("jazz",)
    assert load_requests(DATA / "negated_requests.jsonl")[0].family == ""  # files without families still load


@pytest.fixture(scope="module")
def parser(encoder: TextEncoder) -> IntentParser:
    return IntentParser(VOCABULARY, None, encoder)


def test_parse_confusion_counts_misses_wrong_exclusions_and_false_rejections(parser: IntentParser) -> None:
    judge = CarryJudge(VOCABULARY, np.eye(len(VOCABULARY), dtype=np.float32), 0.99, 0.99)
    requests = [
        NegatedRequest("a", "dev", "piano, anything but jazz", ("jazz",), ("piano",)),             # caught; piano kept
        NegatedRequest("b", "dev", "folk except irish", ("irish folk music", "tin whistle"), ("folk",)),  # whistle missed
        NegatedRequest("c", "dev", "jazz piano, I've gone off piano", ("piano",), ("jazz",)),      # caught
        NegatedRequest("d", "dev", "bands like nothing but thieves", (), ("pop",)),                # nothing excluded
        NegatedRequest("e", "dev", "i've gone off synth pop", ("synth pop",), ("pop",)),
    ]
    c = parse_confusion(parser.parse, requests, judge)
    assert c["rejecting_requests"] == 4 and c["rejecting_requests_caught"] == 4
    assert c["rejected_descriptors"] == 5 and c["rejected_descriptors_missed"] == 1
    assert c["missed"] == [{"id": "b", "request": "folk except irish", "missed": ["tin whistle"]}]
    assert math.isclose(c["missed_share"], 0.2)
    # "gone off synth pop" excludes "pop" by its head although pop is wanted; "jazz piano" excluded under
    # "gone off piano" does not count against the wanted "jazz" (not the same descriptor)
    assert [w["id"] for w in c["wanted_excluded"]] == ["e"] and c["requests_with_wanted_excluded"] == 1
    assert c["false_rejections"] == 0 and c["non_rejecting_requests"] == 1


def test_summarise_by_family() -> None:
    requests = [NegatedRequest("a", "s", "x", ("jazz",), (), "aversion"),
                NegatedRequest("b", "s", "y", (), ("pop",), "plain")]
    evaluation = {"requests": [
        {"id": "a", "has_rejects": True, "has_wants": False, **{f"rejected_{m}": [True, False] for m in
                                                                 ("word", "semantic", "loose")},
         **{f"wanted_{m}": [False, False] for m in ("word", "semantic", "loose")}},
        {"id": "b", "has_rejects": False, "has_wants": True, **{f"rejected_{m}": [False, False] for m in
                                                                 ("word", "semantic", "loose")},
         **{f"wanted_{m}": [True, True] for m in ("word", "semantic", "loose")}}]}
    out = summarise_by_family(evaluation, requests, k=2)
    assert out["aversion"]["rejected@2 word"] == 0.5 and out["aversion"]["clean@2 word"] == 0.0
    assert out["plain"]["wanted@2 word"] == 1.0 and math.isnan(out["plain"]["rejected@2 word"])


@pytest.mark.parametrize("name, split", [("forum_requests_3.jsonl", "heldout3"), ("forum_requests_4.jsonl", "heldout4"),
                                         ("forum_requests_5.jsonl", "heldout5")])
def test_the_later_held_out_sets_are_well_formed(name: str, split: str) -> None:
    """forum_requests_3.jsonl (issue 25, round three), forum_requests_4.jsonl and forum_requests_5.jsonl (written
    blind to the parser):
    fresh held-out sets, apart from every other set."""
    third = [json.loads(line) for line in (DATA / name).read_text().splitlines()]
    assert len(third) >= 150 and {r["split"] for r in third} == {split}
    assert {r["family"] for r in third} == FAMILIES
    assert len({r["id"] for r in third}) == len(third) and len({r["request"] for r in third}) == len(third)
    others = set()
    for other in sorted(DATA.glob("*_requests*.jsonl")):
        if other.name != name:
            others |= {json.loads(line)["request"] for line in other.read_text().splitlines() if line.strip()}
    assert not {r["request"] for r in third} & others
    for r in third:
        assert (r["family"] in ("ambiguous", "plain")) <= (r["rejects"] == [])
        assert (r["family"] in ("ambiguous", "plain", "prefix")) or r["rejects"]


def test_every_forum_set_is_annotated_in_the_musiccaps_vocabulary(real_data_dir) -> None:
    from melscribe.serve.catalog import Catalog

    vocabulary = Catalog.from_musiccaps(str(real_data_dir)).vocabulary()
    for path in sorted(DATA.glob("forum_requests*.jsonl")):
        assert len(load_requests(path, vocabulary)) >= 60, path  # a DataError names a descriptor not in it
