"""A learned reader of negation scope: which words of a request name something it rejects.

The rules of :mod:`melscribe.intent.rejections` read rejections from a list of cues; phrasings they were not
written for slip through. :class:`ScopeModel` is a logistic regression over the context of each content word
of a request (the words before and after it, in and out of its clause, their stems, punctuation, a negating
prefix joined to it, whether a rule's scope ended before it in its clause) that gives the probability that the
word is part of something the request rejects. It is trained on the annotated requests of
:mod:`melscribe.intent.scope_examples` (a copy of ``experiments/data/``'s sets 1, 2, development and negated
requests; never the held-out set 3), whose labels are read from the annotations: a content word is
*rejected* when its stem is a stem of one of the request's rejected descriptors and of none of its wanted ones,
*not rejected* when it is a stem of neither or of a wanted one only (stems of both are left out).

Training is deterministic (a fixed feature order, ``liblinear`` with a fixed random state) and takes well
under a second, so the model is trained in memory on first use (:func:`default_model`); no weights are
stored. :class:`~melscribe.intent.parser.IntentParser` uses it with ``scope=default_model()`` (or
``$MELSCRIBE_INTENT_SCOPE=learned``; off by default): the words the model marks rejected above :data:`DEFAULT_THRESHOLD`
that no rule already covers become extra rejected phrases (cue ``"learned"``), matched to descriptors like
the rules' phrases. :func:`cross_validate` gives the leave-one-set-out figures its settings were chosen on.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from melscribe.intent.cues import BOUNDARIES, GENERIC_PHRASES, PREFIXED_STOPWORDS
from melscribe.intent.matching import GENERIC_WORDS
from melscribe.intent.rejections import RejectedPhrase, _non_cues_at, find_rejections, negated_by_prefix
from melscribe.intent.words import stems

#: Probability above which a word is read as rejected, and the inverse regularisation strength of the logistic
#: regression: chosen by :func:`cross_validate` over sets 1, 2, development and negated (C 0.3, 1, 3; thresholds
#: 0.5 to 0.9) as the setting adding the most rejected words to rules that never saw the held-out set (the rules
#: at e752cd9) with at least 85 % of the added words rejected (38 added, 5 wrongly). Sets 3 and 4 joined the
#: training sets later (rounds four and five) without the settings being chosen again; ``forum_intent.md`` reports
#: the cross-validation over all six sets at C 1 (``cross_validate(c=...)`` gives it for another C).
DEFAULT_THRESHOLD = 0.7
DEFAULT_C = 1.0
#: The cue of a rejection the model adds.
CUE = "learned"
#: Words that are never a rejected thing themselves (function words; the model still reads them as context).
FUNCTION_WORDS = frozenset("""
    a an the of to in on at by for from with without into onto about above below over under up down out off
    and or nor but so yet if then than because as while when where which who whom whose what that this these
    those there here it its i me my mine we us our you your he him his she her they them their is are was
    were be been being am do does did doing done have has had having will would shall should can could may
    might must not no never none nothing anything something everything all any some each every few more most
    less least much many very too quite rather really just only also even still again ever please pls plz
    thanks thx lol tbh imo idk im i'm i've ive i'd i'll dont don't cant can't wont won't isnt isn't arent aren't
    doesnt doesn't didnt didn't wasnt wasn't cannot like want wanna need looking look find get got give some
    stuff thing things kind sort type bit lot lots one ones other others else way ok okay yeah yes hey hi hello
    non un anti w w/o vs etc ish kinda sorta gonna gotta
""".split()) | BOUNDARIES | GENERIC_WORDS
_TOKEN = re.compile(r"[a-z0-9]+(?:['&/-][a-z0-9]+)*|[^\sa-z0-9]")
_LEFT, _RIGHT = 8, 5


@dataclass(frozen=True)
class Token:
    """A token of a request: its text (lower case), character span, and clause number (clauses are cut at
    punctuation)."""

    text: str
    start: int
    end: int
    clause: int


def tokenize(request: str) -> list[Token]:
    """The tokens of ``request`` (lower case; punctuation marks are tokens and end a clause)."""
    text = request.lower().replace("’", "'")
    out, clause = [], 0
    for m in _TOKEN.finditer(text):
        w = m.group()
        if not w[0].isalnum():
            clause += 1
        out.append(Token(w, m.start(), m.end(), clause))
    return out


def is_candidate(word: str) -> bool:
    """Whether a token may name a rejected thing: a word (not punctuation, not a number) that is not a
    :data:`FUNCTION_WORDS` word and has a stem."""
    return (word[0].isalpha() and len(word) > 1 and word not in FUNCTION_WORDS
            and _content(word) not in FUNCTION_WORDS and bool(stems(_content(word))))


def _content(word: str) -> str:
    """The word without a negating prefix, as the rules read one ("non-vocal" → "vocal", "unjazzy" → "jazzy";
    not "unique", "unison": :func:`~melscribe.intent.rejections.negated_by_prefix`)."""
    prefixed = negated_by_prefix(word)
    return prefixed[1] if prefixed else word


def features(toks: Sequence[Token], i: int, context: "RuleContext | None" = None) -> dict[str, float]:
    """The features of token ``i``: the words at each offset before (3) and after (2) it, the bigram before
    it, the words of its clause before (up to 8) and after (up to 5) it, the stems of the two words before it
    and of its clause's words, a negating prefix joined to it, whether the neighbouring tokens are content
    words; and from the rules (``context``), whether a rule's scope ended before it in its clause ("not too
    heavy *rock*": the rules stopped on purpose). Not whether a rule covers it:
    trained with that feature, the model learnt to repeat the rules, which were written on the same
    requests, and added nothing (leave-one-set-out)."""
    w = [t.text for t in toks]
    f: dict[str, float] = {"bias": 1.0}
    for k in (1, 2, 3):
        f[f"p{k}=" + (w[i - k] if i - k >= 0 else "<s>")] = 1.0
    for k in (1, 2):
        f[f"n{k}=" + (w[i + k] if i + k < len(w) else "</s>")] = 1.0
    f["p12=" + " ".join(w[max(0, i - 2):i])] = 1.0
    c = toks[i].clause
    left = [j for j in range(max(0, i - _LEFT), i) if toks[j].clause == c]
    right = [j for j in range(i + 1, min(len(w), i + 1 + _RIGHT)) if toks[j].clause == c]
    for j in left:
        f["L=" + w[j]] = 1.0
    for j in right:
        f["R=" + w[j]] = 1.0
    for k in (1, 2):
        if i - k >= 0 and w[i - k][0].isalnum():
            f[f"sp{k}=" + "_".join(stems(w[i - k]))] = 1.0
    for j in left:
        f["SL=" + "_".join(stems(w[j]))] = 1.0
    for j in right:
        f["SR=" + "_".join(stems(w[j]))] = 1.0
    if not left:
        f["clause_first"] = 1.0
    if i and not w[i - 1][0].isalnum():
        f["after_punct=" + w[i - 1]] = 1.0
    prefixed = negated_by_prefix(w[i])
    if prefixed:
        f["prefix=" + prefixed[0].rstrip("-")] = 1.0
    if i and is_candidate(w[i - 1]):
        f["prev_content"] = 1.0
    if i + 1 < len(w) and is_candidate(w[i + 1]):
        f["next_content"] = 1.0
    if context is not None:
        if not context.covered[i] and any(toks[j].clause == c and context.scope_end[j] for j in range(i)):
            f["rule_scope_ended_before"] = 1.0
    return f


@dataclass(frozen=True)
class RuleContext:
    """What the rules say about each token of a request: ``covered`` by a rejection's span (cue and scope),
    ``scope_end`` (the last token of a rejection's span), ``idiom`` (part of a
    :data:`~melscribe.intent.cues.NON_CUES` phrase: "no doubt", "nothing but")."""

    covered: tuple[bool, ...]
    scope_end: tuple[bool, ...]
    idiom: tuple[bool, ...]

    @classmethod
    def of(cls, toks: Sequence[Token], found: Iterable[RejectedPhrase]) -> "RuleContext":
        """The context of ``toks`` given the rules' rejections ``found``."""
        spans = [(r.start, r.end) for r in found]
        covered = tuple(any(s <= t.start and t.end <= e for s, e in spans) for t in toks)
        ends = {e for _, e in spans}
        idiom = [False] * len(toks)
        words_ = [t.text for t in toks]
        non_cues = _non_cues_at()
        for i, w in enumerate(words_):
            for seq, _ in non_cues.get(w, ()):
                if tuple(words_[i:i + len(seq)]) == seq:
                    idiom[i:i + len(seq)] = [True] * len(seq)
                    break
        return cls(covered, tuple(t.end in ends for t in toks), tuple(idiom))

    def vetoed(self, toks: Sequence[Token], i: int) -> bool:
        """Whether the rules' lexicon says token ``i`` rejects nothing, whatever the model reads: it is part of a
        :data:`~melscribe.intent.cues.NON_CUES` idiom or follows one within two words in its clause ("no
        clue", "no wave noise"; a window of eight did slightly worse leave-one-set-out), is a prefixed word that
        negates nothing ("non-stop",
        :data:`~melscribe.intent.cues.PREFIXED_STOPWORDS`) or names no sound ("less going on",
        :data:`~melscribe.intent.cues.GENERIC_PHRASES`). Such words are neither learnt from nor added."""
        w = toks[i].text
        if w in PREFIXED_STOPWORDS or _content(w) in GENERIC_PHRASES or w in GENERIC_PHRASES:
            return True
        return any(self.idiom[j] and toks[j].clause == toks[i].clause for j in range(max(0, i - 2), i + 1))


def labels(request: str, rejects: Sequence[str], wants: Sequence[str]) -> dict[int, int]:
    """The training labels of a request's content words, from its annotations: ``{token index: 1}`` for a
    word whose stems meet a rejected descriptor's and no wanted one's, ``0`` for one meeting neither or only
    a wanted one's; words meeting both are left out."""
    rej = {s for d in rejects for s in stems(d)} - _GENERIC_STEMS
    want = {s for d in wants for s in stems(d)} - _GENERIC_STEMS
    out = {}
    for i, t in enumerate(tokenize(request)):
        if not is_candidate(t.text):
            continue
        ts = set(stems(_content(t.text)))
        r, wt = bool(ts & rej), bool(ts & want)
        if r and wt:
            continue
        out[i] = int(r)
    return out


_GENERIC_STEMS = frozenset(s for w in GENERIC_WORDS for s in stems(w))


class ScopeModel:
    """A trained scope classifier (:meth:`train`); :meth:`rejections` reads a request with it."""

    def __init__(self, weights: dict[str, float], threshold: float = DEFAULT_THRESHOLD):
        #: feature name → weight of the logistic regression (features not here weigh nothing)
        self.weights = weights
        #: probability above which a word is read as rejected
        self.threshold = float(threshold)

    @classmethod
    def train(cls, examples: Iterable[Sequence], *, threshold: float = DEFAULT_THRESHOLD, c: float = DEFAULT_C,
              rules: Callable[[str], Sequence[RejectedPhrase]] | None = None) -> "ScopeModel":
        """Train on ``(set, request, rejects, wants)`` examples (:mod:`.scope_examples`); ``rules``: the rule
        reader whose rejections make the :class:`RuleContext` (default
        :func:`~melscribe.intent.rejections.find_rejections`). Deterministic."""
        words = [(f, y) for _, f, y, _ in _labelled_words(examples, rules or find_rejections) if f is not None]
        columns, classifier = _fit([f for f, _ in words], [y for _, y in words], c)
        return cls({n: float(w) for n, w in zip(columns, classifier.coef_[0]) if w}, threshold)

    def probability(self, feats: dict[str, float]) -> float:
        """The model's probability that a word with features ``feats`` (:func:`features`) is rejected."""
        z = sum(self.weights.get(k, 0.0) * v for k, v in feats.items())
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0

    def probabilities(self, request: str, found: Sequence[RejectedPhrase] = ()) -> list[tuple[Token, float]]:
        """Each content word of ``request`` with the probability that it is rejected, given the rules'
        rejections ``found``."""
        toks = tokenize(request)
        return [(toks[i], p) for i, p in self._scored(toks, RuleContext.of(toks, found))]

    def _scored(self, toks: Sequence[Token], context: RuleContext) -> list[tuple[int, float]]:
        """(index, probability) of each content word of ``toks`` that the rules' ``context`` does not veto."""
        return [(i, self.probability(features(toks, i, context))) for i, t in enumerate(toks)
                if is_candidate(t.text) and not context.vetoed(toks, i)]

    def rejections(self, request: str, found: Sequence[RejectedPhrase] = ()) -> list[RejectedPhrase]:
        """The rejections the model reads in ``request`` beyond the rules' ``found``: each run of adjacent
        content words it marks rejected (probability ≥ :attr:`threshold`) that no rule covers, as one phrase
        (cue :data:`CUE`, span of the words, negating prefixes dropped: "non-vocal" → "vocal")."""
        toks = tokenize(request)
        context = RuleContext.of(toks, found)
        covered = context.covered
        out: list[RejectedPhrase] = []
        run: list[int] = []
        for i, p in self._scored(toks, context) + [(-1, 0.0)]:
            keep = i >= 0 and p >= self.threshold and not covered[i]
            if keep and run and i == run[-1] + 1:
                run.append(i)
                continue
            if run:
                phrase = " ".join(_content(toks[j].text).replace("-", " ") for j in run)
                out.append(RejectedPhrase(CUE, phrase, toks[run[0]].start, toks[run[-1]].end))
            run = [i] if keep else []
        return out


#: The environment variable choosing the scope reader: ``learned`` (the rules and :func:`default_model`) or
#: unset/``rules`` (the rules alone).
SCOPE_ENV = "MELSCRIBE_INTENT_SCOPE"


def scope_from_env(value: str | None = None) -> ScopeModel | None:
    """The scope model ``value`` (default ``$MELSCRIBE_INTENT_SCOPE``) names: :func:`default_model` for
    ``learned``, ``None`` (the rules alone) for ``rules`` or nothing; anything else is a ``ValueError``."""
    import os

    value = (os.environ.get(SCOPE_ENV, "") if value is None else value).strip().lower()
    if value in ("", "rules"):
        return None
    if value == "learned":
        return default_model()
    raise ValueError(f"{SCOPE_ENV} must be 'learned' or 'rules', not {value!r}")


def _labelled_words(examples: Iterable[Sequence], rules: Callable[[str], Sequence[RejectedPhrase]]):
    """``(set, features, label, covered by a rule)`` of each word :func:`labels` labels in ``(set, request,
    rejects, wants)`` examples, in order; ``features`` is ``None`` for a word the rules veto
    (:meth:`RuleContext.vetoed`), which is never learnt from."""
    for name, request, rejects, wants in examples:
        toks = tokenize(request)
        context = RuleContext.of(toks, rules(request))
        for i, y in sorted(labels(request, rejects, wants).items()):
            feats = None if context.vetoed(toks, i) else features(toks, i, context)
            yield name, feats, y, context.covered[i]


def _fit(rows: Sequence[dict[str, float]], ys: Sequence[int], c: float):
    """``(columns, classifier)``: the logistic regression (liblinear, no intercept, seeded: deterministic) fitted
    on feature dicts ``rows`` and labels ``ys``, and its columns (feature name → index, in sorted order)."""
    from sklearn.linear_model import LogisticRegression

    columns = {k: n for n, k in enumerate(sorted({k for row in rows for k in row}))}
    classifier = LogisticRegression(C=c, solver="liblinear", fit_intercept=False, max_iter=1000, random_state=0)
    classifier.fit(_matrix(columns, rows), ys)
    return columns, classifier


def _matrix(columns: dict[str, int], rows: Sequence[dict[str, float]]):
    """The sparse matrix (32-bit indices, as ``liblinear`` wants) of feature dicts; unknown features dropped."""
    import numpy as np
    from scipy.sparse import csr_matrix

    indices, data, indptr = [], [], [0]
    for row in rows:
        cols = sorted((columns[k], v) for k, v in row.items() if k in columns)
        indices.extend(c for c, _ in cols)
        data.extend(v for _, v in cols)
        indptr.append(len(indices))
    return csr_matrix((np.asarray(data, np.float64), np.asarray(indices, np.int32), np.asarray(indptr, np.int32)),
                      shape=(len(rows), len(columns)))


def load_examples() -> tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...]:
    """The packaged training examples (:mod:`.scope_examples`)."""
    from melscribe.intent.scope_examples import EXAMPLES

    return EXAMPLES


_default: ScopeModel | None = None
_default_lock = threading.Lock()


def default_model() -> ScopeModel:
    """The model trained on the packaged examples with the default settings (trained once per process, in
    memory)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ScopeModel.train(load_examples())
        return _default


#: The training files of ``experiments/data/`` and their names in :mod:`.scope_examples`.
EXAMPLE_FILES = (("set1", "forum_requests.jsonl"), ("set2", "forum_requests_2.jsonl"),
                 ("set3", "forum_requests_3.jsonl"), ("set4", "forum_requests_4.jsonl"),
                 ("dev", "forum_requests_dev.jsonl"),
                 ("negated", "negated_requests.jsonl"))


def read_example_files(data_dir: str | Path) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """The ``(set, request, rejects, wants)`` examples of :data:`EXAMPLE_FILES` in ``data_dir``."""
    out = []
    for name, filename in EXAMPLE_FILES:
        for line in (Path(data_dir) / filename).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out.append((name, r["request"], tuple(r["rejects"]), tuple(r["wants"])))
    return out


def examples_module(examples: Sequence[tuple[str, str, tuple[str, ...], tuple[str, ...]]]) -> str:
    """The source of :mod:`.scope_examples` holding ``examples``."""
    doc = ('"""The annotated requests the learned negation scope (:mod:`melscribe.intent.scope_model`) is trained on,\n'
           "copied from ``experiments/data/`` (" + ", ".join(f"``{f}`` as ``{n}``" for n, f in EXAMPLE_FILES)
           + "; never the held-out ``forum_requests_5.jsonl``) so that an installed package trains it offline. "
           "Each example is ``(set, request, rejects, wants)``; ``tests/intent/test_scope_model.py`` checks that "
           "they equal the files. Generated by ``python -m melscribe.intent.scope_model experiments/data``.\n"
           '"""\n')
    body = "".join(f"    ({n!r}, {r!r}, {tuple(rj)!r}, {tuple(w)!r}),\n" for n, r, rj, w in examples)
    return doc + "\n# flake8: noqa: E501\nEXAMPLES = (\n" + body + ")\n"


def cross_validate(examples: Sequence[tuple[str, str, tuple[str, ...], tuple[str, ...]]] | None = None, *,
                   rules: Callable[[str], Sequence[RejectedPhrase]] = find_rejections,
                   thresholds: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9), c: float = DEFAULT_C) -> dict:
    """Leave-one-set-out figures over the words :func:`labels` labels: for each set of ``examples`` (default
    the packaged ones), a model trained on the other sets (with ``rules`` for its :class:`RuleContext`) reads
    it; per set and in total, how many rejected and not-rejected words ``rules`` cover, and at each threshold
    how many uncovered words the model adds, rejected (``added_true``) or not (``added_false``)."""
    examples = list(load_examples() if examples is None else examples)
    data: dict[str, list[tuple[dict | None, int, bool]]] = {}
    for name, feats, y, covered in _labelled_words(examples, rules):  # vetoed words: counted, never learnt from
        data.setdefault(name, []).append((feats, y, covered))
    folds: dict[str, dict] = {}
    for name in data:
        train = [d for other in data if other != name for d in data[other] if d[0] is not None]
        columns, clf = _fit([f for f, _, _ in train], [y for _, y, _ in train], c)
        p = clf.predict_proba(_matrix(columns, [f or {} for f, _, _ in data[name]]))[:, 1].tolist()
        p = [0.0 if f is None else q for (f, _, _), q in zip(data[name], p)]
        ys, cov = [y for _, y, _ in data[name]], [cv for _, _, cv in data[name]]
        row = {"words": len(ys), "rejected_words": sum(ys),
               "rules_true": sum(y and cv for y, cv in zip(ys, cov)),
               "rules_false": sum(not y and cv for y, cv in zip(ys, cov))}
        for t in thresholds:
            add = [q >= t and not cv for q, cv in zip(p, cov)]
            row[f"added_true {t:g}"] = int(sum(a and y for a, y in zip(add, ys)))
            row[f"added_false {t:g}"] = int(sum(a and not y for a, y in zip(add, ys)))
        folds[name] = row
    total = {k: sum(f[k] for f in folds.values()) for k in next(iter(folds.values()))}
    return {"folds": folds, "total": total, "c": c, "thresholds": list(thresholds)}


def cross_validate_parse(parse_with: Callable[[ScopeModel | None], Callable[[str], object]], judge,
                         request_sets: dict[str, Sequence], *, threshold: float = DEFAULT_THRESHOLD,
                         c: float = DEFAULT_C,
                         rules: Callable[[str], Sequence[RejectedPhrase]] = find_rejections) -> dict[str, dict]:
    """Leave-one-set-out figures of the whole parse: for each set of ``request_sets`` (name → requests of
    :func:`melscribe.evaluation.intent.load_requests`, named as in :data:`EXAMPLE_FILES`), a model trained on
    the packaged examples of the other sets (with ``rules`` for its :class:`RuleContext`) reads that set with
    ``parse_with(model)`` (a parse function whose results' ``.rejected`` are the excluded descriptors);
    :func:`~melscribe.evaluation.intent.parse_confusion` counts of it and of ``parse_with(None)`` (the rules
    alone): ``{set: {"rules": …, "rules + learned": …}}``."""
    from melscribe.evaluation.intent import parse_confusion

    examples = load_examples()
    out: dict[str, dict] = {}
    for name, requests in request_sets.items():
        model = ScopeModel.train([e for e in examples if e[0] != name], c=c, threshold=threshold, rules=rules)
        out[name] = {"rules": _counts(parse_confusion(parse_with(None), requests, judge)),
                     "rules + learned": _counts(parse_confusion(parse_with(model), requests, judge))}
    return out


def _counts(confusion: dict) -> dict:
    return {k: v for k, v in confusion.items() if not isinstance(v, list)}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m melscribe.intent.scope_model DATA_DIR``: rewrite :mod:`.scope_examples` from the files."""
    import sys

    from melscribe.fileio import write_text_atomic

    args = list(sys.argv[1:] if argv is None else argv)
    data_dir = args[0] if args else "experiments/data"
    write_text_atomic(Path(__file__).with_name("scope_examples.py"), examples_module(read_example_files(data_dir)))


if __name__ == "__main__":
    main()
