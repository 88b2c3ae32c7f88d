"""Finding the rejections in a request's text: negation cues and the phrase each covers (see
:mod:`melscribe.intent.parser` for the rules). Works on the text alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence


#: Word sequences that look like a negation but reject nothing; skipped whole.
NON_CUES = (
    "nothing but", "nothing else but", "all but", "not only", "not just", "not merely", "no doubt", "no matter",
    "no wonder", "no problem", "no worries", "no way", "not sure", "not bad", "no less", "more or less",
    "not to mention", "if not", "whether or not", "or not", "nothing beats", "nothing like", "nothing else",
    "nothing compares", "nothing more than", "no longer", "not least", "no one", "nobody", "don't know",
    "do not know", "dont know", "don't care", "dont care", "do not care", "don't mind", "dont mind",
    "do not mind", "doesn't matter", "does not matter", "can't wait", "cannot wait", "can't get enough",
    "cannot get enough", "don't stop", "won't stop", "never stop", "never gets old", "can't go wrong",
    "not a problem", "less than", "no sooner", "no need to", "not that i",
)
#: Negation cues, longest first when matching; ``than`` is a cue only after "rather" in the same clause.
CUES = (
    "anything but", "everything but", "anything except", "everything except", "anything other than",
    "anything apart from", "but not", "and not", "except for", "except", "excluding", "other than",
    "instead of", "rather than", "in place of", "with no", "with zero", "no more", "nothing too",
    "nothing that", "nothing", "none of", "no", "not", "never", "without", "w/o", "minus", "free of", "lacking",
    "avoid", "avoiding", "skip", "skip the", "exclude", "leave out", "less", "hate", "dislike", "can't stand",
    "cannot stand", "can not stand", "tired of", "sick of", "don't", "dont", "do not", "doesn't", "doesnt",
    "does not", "isn't", "isnt", "is not", "aren't", "arent", "are not", "wasn't", "won't", "wont",
    "will not", "wouldn't", "shouldn't", "should not", "can't", "cannot", "didn't",
)
#: Cues that reduce rather than remove; they reject without wanting a negative descriptor.
DEGREE_CUES = frozenset({"less", "nothing too"})
#: Words that end a cue's scope (besides punctuation).
BOUNDARIES = frozenset("""
    but and with please that which who whose so because since for to while when where as just only though
    although yet instead rather i i'm i'd i'll me my we you your it it's give keep make let maybe perhaps
    something some lots plenty more over in on at from into like then than thanks thank also even still
    mostly mainly ideally preferably thx pls
""".split())
#: Fillers skipped at the start of a scope ("not too sad", "don't want anything with bagpipes").
LEADING_FILLERS = tuple(sorted((tuple(f.split()) for f in """
    too|so|very|overly|really|particularly|especially|at all|any|anything|something|stuff|a|an|the|much|many|
    more|of|with|that is|that's|that are|which is|is|are|be|being|been|sound|sounds|sounding|sound like|
    sounds like|like|have|has|having|use|uses|using|include|includes|including|contain|contains|containing|
    feature|features|featuring|want|wanna|need|like any|a fan of|fan of|big on|into|keen on|crazy about|fond of|
    hear|play|get|any of|the sound of|sound of|kind of|sort of|type of|heavy on|too much|too many|loads of|
    lots of|a lot of|add|put|my|those|these|such|even|all|any kind of|some|none|one|ones|this|it|them|
    want any|want to hear|care for|go for|go with|too heavy on|too much of
""".replace("\n", " ").split("|") if f.strip()), key=len, reverse=True))
#: Words dropped from the end of a rejected phrase ("no loud sounds" → "loud"), when something is left.
TRAILING_FILLERS = frozenset("""
    at all whatsoever please though thanks stuff things thing ones one music songs song tracks track tunes
    tune sounds sound vibe vibes type types kind style styles genre feel feeling movie film influence
    influences parts part bits bit elements element please either too much anymore
""".split())
#: ``X-free``/``X-less`` words that are not a rejection of a sound.
FREE_STOPWORDS = frozenset({"royalty", "copyright", "hands", "care", "stress", "worry", "duty", "tax", "gluten",
                            "sugar", "fat", "hassle", "ad", "ads", "risk", "trouble", "cost", "end", "time",
                            "home", "count", "name", "self", "use", "help", "rest", "need", "point", "life"})
_MAX_SCOPE = 5
#: Words before a cue that go with it when the rejection is cut out of the request ("I don't want …").
_SUBJECTS = frozenset({"i", "we", "i'm", "im", "i'd", "we'd", "i'll", "really", "just", "please", "definitely",
                       "that", "that's", "thats", "which", "who", "it", "it's", "but", "and"})
#: Words right after a scope that belong to the rejection ("no singing at all").
_SCOPE_TAILS = (("at", "all"), ("whatsoever",), ("please",), ("though",), ("thanks",), ("thank", "you"))

_TOKEN = re.compile(r"[a-z0-9]+(?:['&/-][a-z0-9]+)*|[^\sa-z0-9]")


@dataclass(frozen=True)
class RejectedPhrase:
    """One rejection found in a request: the ``cue`` ("not"), the ``phrase`` it covers ("jazz"), and the
    character span of cue and scope in the (lower-cased) request."""

    cue: str
    phrase: str
    start: int
    end: int

    @property
    def degree(self) -> bool:
        """A reduction ("less guitar", "nothing too sad") rather than a removal."""
        return self.cue in DEGREE_CUES


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _starts_with(tokens: Sequence[tuple[str, int, int]], i: int, seq: Sequence[str]) -> bool:
    return len(tokens) - i >= len(seq) and all(tokens[i + j][0] == w for j, w in enumerate(seq))


@lru_cache(maxsize=1)
def _cue_words() -> tuple[tuple[tuple[str, ...], str], ...]:
    seqs = [(tuple(_TOKEN.findall(c)), c) for c in CUES]
    return tuple(sorted(seqs, key=lambda s: -len(s[0])))


@lru_cache(maxsize=1)
def _non_cue_words() -> tuple[tuple[str, ...], ...]:
    return tuple(sorted((tuple(_TOKEN.findall(c)) for c in NON_CUES), key=len, reverse=True))


def _is_boundary(tok: str) -> bool:
    return not tok[0].isalnum() or tok in BOUNDARIES


@lru_cache(maxsize=1)
def _may_reject() -> re.Pattern:
    """Matches any text in which :func:`find_rejections` can find a cue: a cue's words in sequence, "than"
    (of "rather than") or a "-free"/"-less" word. Most requests have none, and are done in microseconds."""
    seqs = sorted({seq for seq, _ in _cue_words()} | {("than",)}, key=lambda q: -sum(map(len, q)))
    alternatives = (r"\s*".join(map(re.escape, seq)) for seq in seqs)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])|[a-z0-9]-(?:free|less)\b")


def may_reject(request: str) -> bool:
    """Whether :func:`find_rejections` can find a rejection in ``request``: a quick pattern test (false for
    most requests, whose intent is then parsed without the encoder)."""
    return bool(_may_reject().search(request.lower().replace("’", "'")))


def find_rejections(request: str, limit: int | None = None) -> list[RejectedPhrase]:
    """The rejections of a request, in order: each cue with the phrase it covers (see the module doc); with
    ``limit``, the first ``limit`` only (the scan stops there). Works on the text alone; :class:`IntentParser`
    matches the phrases to a vocabulary."""
    if not may_reject(request):
        return []
    text = request.lower().replace("’", "'")
    toks = _tokens(text)
    out: list[RejectedPhrase] = []
    i, clause_start = 0, 0
    while i < len(toks):
        tok = toks[i][0]
        if not tok[0].isalnum():
            clause_start = i + 1
            i += 1
            continue
        if any(_starts_with(toks, i, seq) for seq in _non_cue_words()):
            i += len(next(seq for seq in _non_cue_words() if _starts_with(toks, i, seq)))
            continue
        free = re.fullmatch(r"([a-z0-9][a-z0-9 '&/-]*?)-(?:free|less)", tok)
        if free and free.group(1) not in FREE_STOPWORDS:
            out.append(RejectedPhrase("-free", free.group(1).replace("-", " "), toks[i][1], toks[i][2]))
            i += 1
            continue
        cue = next(((seq, c) for seq, c in _cue_words() if _starts_with(toks, i, seq)), None)
        if cue is None and tok == "than" and any(t[0] == "rather" for t in toks[clause_start:i]):
            cue = (("than",), "rather than")
        if cue is None:
            i += 1
            continue
        seq, name = cue
        j = i + len(seq)
        phrases, end = _scope(toks, j)
        if not phrases:
            i = j
            continue
        start = i
        while start > clause_start and toks[start - 1][0] in _SUBJECTS:  # "I don't want…", "I'm not a fan of…"
            start -= 1
        out.extend(RejectedPhrase(name, p, toks[start][1], end) for p in phrases)
        if limit is not None and len(out) >= limit:
            return out[:limit]
        i = next((k for k in range(j, len(toks)) if toks[k][1] >= end), len(toks))
    return out


def _skip_fillers(toks: Sequence[tuple[str, int, int]], j: int) -> int:
    moved = True
    while moved and j < len(toks):
        moved = False
        for f in LEADING_FILLERS:
            if _starts_with(toks, j, f):
                j += len(f)
                moved = True
                break
    return j


def _scope(toks: Sequence[tuple[str, int, int]], j: int) -> tuple[list[str], int]:
    """The phrases covered from token ``j`` (split at "or"/"nor"), and the end offset of the scope."""
    phrases: list[str] = []
    end = toks[j - 1][2] if j else 0
    while True:
        j = _skip_fillers(toks, j)
        words_: list[str] = []
        while j < len(toks) and len(words_) < _MAX_SCOPE:
            t = toks[j][0]
            if t in ("or", "nor", "neither", "either") or _is_boundary(t):
                break
            if any(_starts_with(toks, j, seq) for seq, _ in _cue_words()) and words_:
                break
            words_.append(t)
            end = toks[j][2]
            j += 1
        while len(words_) > 1 and words_[-1] in TRAILING_FILLERS:
            words_.pop()
        if words_ and not (len(words_) == 1 and words_[0] in TRAILING_FILLERS):
            phrases.append(" ".join(words_))
        if j < len(toks) and toks[j][0] in ("or", "nor"):
            j += 1
            continue
        tail = next((t for t in _SCOPE_TAILS if _starts_with(toks, j, t)), None) if phrases else None
        if tail:
            end = toks[j + len(tail) - 1][2]
        return phrases, end
