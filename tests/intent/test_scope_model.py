"""Tests of melscribe.intent.scope_model: the learned reader of negation scope, its training data and labels, its
combination with the rules in IntentParser (off by default), and the ambiguous phrasings excluding nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from melscribe.encoding.encoder import TextEncoder
from melscribe.intent import scope_model
from melscribe.intent.parser import IntentParser
from melscribe.intent.rejections import find_rejections
from melscribe.intent.scope_model import (CUE, RuleContext, ScopeModel, _content, default_model, examples_module,
                                          features, labels,
                                          load_examples, read_example_files, scope_from_env, tokenize)

DATA = Path(__file__).parents[2] / "experiments" / "data"

#: A tiny training set: a cue the rules do not know ("zero appetite for"), the thing after it rejected.
TINY = [
    ("a", "zero appetite for reggae, want house", ("reggae",), ("house",)),
    ("a", "zero appetite for metal, want jazz", ("metal",), ("jazz",)),
    ("a", "zero appetite for techno, want folk", ("techno",), ("folk",)),
    ("b", "want soul and funk, zero appetite for disco", ("disco",), ("soul", "funk")),
    ("b", "want piano and strings", (), ("piano", "strings")),
    ("b", "want blues and rock", (), ("blues", "rock")),
]


def added(model: ScopeModel, request: str) -> list[str]:
    return [r.phrase for r in model.rejections(request, find_rejections(request))]


def test_the_packaged_examples_are_the_training_files() -> None:
    examples = read_example_files(DATA)
    assert load_examples() == tuple(examples)
    assert {e[0] for e in examples} == {"set1", "set2", "set3", "set4", "dev", "negated"}
    source = Path(scope_model.__file__).with_name("scope_examples.py").read_text()
    assert source == examples_module(examples)  # regenerated, never edited by hand
    assert "forum_requests_5" not in "".join(f for _, f in scope_model.EXAMPLE_FILES)  # the held-out set


def test_labels_come_from_the_annotations() -> None:
    request = "jazz fusion without the jazz, no vocals please"
    toks = tokenize(request)
    got = {toks[i].text: y for i, y in labels(request, ("jazz", "vocals"), ("fusion",)).items()}
    assert got == {"jazz": 1, "fusion": 0, "vocals": 1}
    # a word whose stem is both rejected and wanted is left out; function words are never labelled
    got = {toks[i].text for i in labels(request, ("jazz",), ("jazz fusion",))}
    assert "jazz" not in got and "without" not in got and "the" not in got


def test_a_prefixed_word_is_labelled_by_the_word_it_negates() -> None:
    toks = tokenize("non-vocal jazz")
    assert {toks[i].text: y for i, y in labels("non-vocal jazz", ("vocals",), ("jazz",)).items()} == \
        {"non-vocal": 1, "jazz": 0}


def test_a_learned_cue_carries_to_new_words() -> None:
    model = ScopeModel.train(TINY, threshold=0.5)
    assert added(model, "zero appetite for country, want soul") == ["country"]
    assert added(model, "want country and soul") == []
    request = "zero appetite for country, want soul"
    rejection = model.rejections(request)[0]
    assert rejection.cue == CUE and request[rejection.start:rejection.end] == "country"


def test_training_is_deterministic() -> None:
    assert ScopeModel.train(TINY).weights == ScopeModel.train(TINY).weights
    assert default_model() is default_model()


def test_what_the_rules_cover_is_not_added_again() -> None:
    model = ScopeModel.train(TINY + [("c", "no reggae, want house", ("reggae",), ("house",))], threshold=0.01)
    request = "no reggae, want house"
    assert "reggae" in [r.phrase for r in find_rejections(request)]
    assert "reggae" not in added(model, request)


def test_idioms_the_rules_know_are_vetoed() -> None:
    request = "no clue what it is called, no wave noise"
    toks = tokenize(request)
    context = RuleContext.of(toks, find_rejections(request))
    vetoed = {t.text for i, t in enumerate(toks) if context.vetoed(toks, i)}
    assert {"clue", "wave", "noise"} <= vetoed and "called" not in vetoed
    always = ScopeModel.train(TINY, threshold=0.0)  # a model that marks every content word it may
    assert not {"clue", "wave", "noise"} & set(" ".join(added(always, request)).split())


AMBIGUOUS = ["no wave and post-punk, raw and loud", "punk bands like nothing but thieves",
             "not only for kids, a kids song", "no doubt about it, punk rock", "anti-folk with banjo",
             "non-stop techno", "no-wave bands from new york", "Nothing But Thieves but more electronic"]


@pytest.mark.parametrize("request_", AMBIGUOUS)
def test_the_default_model_adds_nothing_to_ambiguous_phrasings(request_: str) -> None:
    assert added(default_model(), request_) == []


VOCABULARY = ["no vocals", "instrumental", "female vocal", "jazz", "jazz fusion", "punk", "punk rock", "post-punk",
              "banjo", "techno", "kids song", "loud", "electronic", "irish folk music", "folk", "reggae", "house"]


@pytest.fixture(scope="module")
def parsers(encoder: TextEncoder) -> tuple[IntentParser, IntentParser]:
    return (IntentParser(VOCABULARY, None, encoder, reader=None, scope=None),
            IntentParser(VOCABULARY, None, encoder, reader=None, scope=default_model()))


@pytest.mark.parametrize("request_", AMBIGUOUS)
def test_ambiguous_requests_exclude_nothing_with_the_learned_scope(parsers, request_: str) -> None:
    intent = parsers[1].parse(request_)
    assert intent.empty and intent.rejected == ()


def test_the_parser_adds_the_models_rejections_to_the_rules(parsers) -> None:
    rules, learned = parsers
    learned_tiny = IntentParser(VOCABULARY, None, rules.matcher.encoder, reader=None,
                                scope=ScopeModel.train(TINY, threshold=0.5))
    request = "zero appetite for reggae, want house"
    assert rules.parse(request).rejected == ()
    intent = learned_tiny.parse(request)
    assert intent.rejected == ("reggae",) and "house" in intent.wanted and "reggae" not in intent.text
    # the rules' own rejections stay as they were
    assert learned.parse("jazz but no vocals").rejected == rules.parse("jazz but no vocals").rejected


def test_the_learned_scope_is_off_unless_asked_for(monkeypatch, encoder: TextEncoder) -> None:
    monkeypatch.delenv(scope_model.SCOPE_ENV, raising=False)
    assert scope_from_env() is None and IntentParser(VOCABULARY, None, encoder, reader=None).scope is None
    monkeypatch.setenv(scope_model.SCOPE_ENV, "learned")
    assert IntentParser(VOCABULARY, None, encoder, reader=None).scope is default_model()
    assert scope_from_env("rules") is None
    with pytest.raises(ValueError, match="learned"):
        scope_from_env("neural")


def test_the_default_model_adds_what_the_rules_miss() -> None:
    # a training request: the rules reject "ireland" and miss the "irish" the annotation rejects too
    request = "folk music from anywhere but ireland, i've done the irish thing to death"
    assert [r.phrase for r in find_rejections(request)] == ["ireland"]
    assert added(default_model(), request) == ["irish"]


def test_with_the_learned_scope_every_request_is_prepared_off_the_event_loop(monkeypatch, encoder: TextEncoder,
                                                                            tmp_path: Path) -> None:
    from melscribe.serve.catalog import Catalog, Track
    from melscribe.serve.recommend import Recommender

    catalog = Catalog([Track("a", (("reggae", "house"),)), Track("b", (("techno", "loud"),))])
    monkeypatch.setenv("MELSCRIBE_HOME", str(tmp_path))
    monkeypatch.delenv(scope_model.SCOPE_ENV, raising=False)
    rules = Recommender(encoder, catalog)
    request = "keep reggae far from my ears, want house"  # no cue the rules' quick test knows
    assert not rules.prepare_may_encode(request) and rules.prepare_may_encode("house, no reggae")
    monkeypatch.setenv(scope_model.SCOPE_ENV, "learned")
    learned = Recommender(encoder, catalog)
    assert learned.intent_parser.scope is not None
    assert learned.prepare_may_encode(request) and not learned.prepare_may_encode(request, intent=False)


def test_a_prefix_is_read_as_the_rules_read_it() -> None:
    # "unique", "unison", "undertones" carry no negating prefix: the model's words are the rules' own
    assert [_content(w) for w in ("unique", "unison", "undertones", "non-vocal", "unjazzy", "nonstop")] == \
        ["unique", "unison", "undertones", "vocal", "jazzy", "nonstop"]
    toks = tokenize("unique undertones")
    assert not any(k.startswith("prefix=") for i in range(len(toks)) for k in features(toks, i))
