"""Finding the rejections in a request's text: negation cues and the phrase each covers (see
:mod:`melscribe.intent.parser` for the rules). Works on the text alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence


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
    # forum idioms and their apostrophe-less spellings (issue 25)
    "no end", "no idea", "no clue", "no rush", "no pressure", "no offense", "no offence", "no kidding", "no joke",
    "not gonna lie", "not going to lie", "no cap", "not picky", "never too late", "no wave", "without a doubt",
    "without doubt", "never get tired of", "never gets tired", "never tire of", "never get sick of",
    "no stranger to", "not a thing", "no surprise", "can't sit still", "cant sit still", "cannot sit still",
    "can't help", "cant help", "cant wait", "cant get enough", "dont know", "dont stop", "wont stop",
    "cant go wrong", "doesnt matter", "dont care", "dont mind", "not kidding", "not complaining",
    # round three: idioms of lasting liking ("never get old"), the prefix of "non stop" written apart
    "never get old", "never getting old", "never get boring", "never gets boring", "never goes out of style",
    "never go out of style", "never gets tiring", "never get tiring", "non stop",
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
    # issue 25: exclusion phrases, aversion, degree, part of a whole, the prefix "non" written apart
    "outside of", "outside", "apart from", "aside from", "besides", "save for", "sans", "non",
    "gone off", "going off", "went off", "cant stand", "can't deal with", "cant deal with", "cannot deal with",
    "can't take", "cant take", "can't handle", "cant handle", "can't listen to", "cant listen to", "done with",
    "fed up with", "bored of", "bored with", "had it with", "had enough of", "allergic to", "no interest in",
    "never liked", "not into", "i'm over", "im over", "i am over", "so over", "am over", "totally over",
    "fewer", "lighter on", "light on", "go easy on", "easy on", "not as", "take out", "taking out", "cut out",
    "lose the", "ditch the", "strip out", "get rid of", "leave off", "steer clear of", "stay away from",
    "keep away from", "spare me", "not in the mood for", "not feeling", "hold the", "nix the",
    "anywhere but", "anyone but", "anybody but", "everywhere but", "loses the", "losing the", "but not as",
    "exhausted by", "exhausted with", "worn out on", "burnt out on", "burned out on", "burnt out by",
    "and not as",
    # round three: aversion verbs beside "hate"/"can't stand", intensified aversion, "over" after an adverb,
    # "all but the" (an exclusion, where "all but" alone means "almost")
    "despise", "despises", "detest", "detests", "loathe", "loathes", "abhor", "can't bear", "cant bear",
    "cannot bear", "can't tolerate", "cant tolerate", "cannot tolerate", "sick to death of", "sick and tired of",
    "bored to death of", "gone right off", "gone completely off", "gone totally off", "kinda over",
    "kind of over", "sorta over", "sort of over", "pretty over", "really over", "completely over", "all but the",
    "no longer into", "no longer a fan of",
)
#: Cues of exclusion, after which "and" coordinates like "or" ("excluding house and trance").
LIST_CUES = frozenset({"anything but", "everything but", "anything except", "everything except", "except",
                       "except for", "excluding", "other than", "anything other than", "apart from",
                       "anything apart from", "aside from", "besides", "save for", "outside of", "anywhere but",
                       "none of"})
#: Cues that follow what they reject ("rap is not for me", "with the guitar solos cut out"): the phrase is
#: the words before them in the clause.
POSTPOSED_CUES = (
    "is not for me", "isn't for me", "isnt for me", "are not for me", "aren't for me", "arent for me",
    "not for me", "is not my thing", "isn't my thing", "isnt my thing", "not my thing", "cut out", "taken out",
    "left out", "removed", "stripped out", "gives me a headache", "give me a headache", "makes me cringe",
    "make me cringe", "gets on my nerves", "get on my nerves", "is overrated", "are overrated",
)
#: Prefixes that negate the word they are joined to ("non-vocal", "nonelectric", "un-distorted", "unjazzy").
#: ``un`` joined without a hyphen only before an adjective ending (``-y``, ``-ed``, ``-ic``, ``-al``, ``-ish``):
#: "unjazzy", "unpoppy"; ``anti-`` with its hyphen ("anti-christmas"), except in names: "anti-folk" (a genre),
#: "anti-flag" (a band).
_PREFIXED = re.compile(r"(non)-?([a-z][a-z0-9'-]{2,})|(un|anti)-([a-z][a-z0-9'-]{2,})|(un)([a-z]{3,}(?:y|ed|ic|al|ish))")
#: Words that look prefixed but negate no sound.
PREFIXED_STOPWORDS = frozenset("""
    nonstop non-stop nonetheless nonsense nonprofit non-profit nonfiction non-fiction nonchalant nonchalantly
    unplugged united unlimited unexpected unrelated unusual unreal unofficial unedited unfinished untitled
    unheard unreleased unsigned unsung underrated underground understated unhinged unsolicited unrestricted
    unemployed unmatched unparalleled unapologetic unapologetically unironically unironic uncharted uncut
    unabridged unrivalled unrivaled unbiased unlocked unsupervised anti-folk anti-flag anti-hero anti-heroes
    anti-pop anti-war anti-establishment anti-social anti-nowhere
""".split())
#: Cues that reduce rather than remove; they reject without wanting a negative descriptor.
DEGREE_CUES = frozenset({"less", "nothing too", "fewer", "lighter on", "light on", "go easy on", "easy on",
                         "not as", "but not as", "and not as"})
#: Words that end a cue's scope (besides punctuation).
BOUNDARIES = frozenset("""
    but and with please that which who whose so because since for to while when where as just only though
    although yet instead rather i i'm i'd i'll me my we you your it it's give keep make let maybe perhaps
    something some lots plenty more over in on at from into like then than thanks thank also even still
    mostly mainly ideally preferably thx pls
    is are was were am lol lmao tbh imo idk after now anymore already today lately really honestly if ok okay
    plz haha these etc makes make gives give cuz cause tonight tomorrow rn atm sounding version versions
""".split())
#: Fillers skipped at the start of a scope ("not too sad", "don't want anything with bagpipes").
LEADING_FILLERS = tuple(sorted((tuple(f.split()) for f in """
    too|so|very|overly|really|particularly|especially|at all|any|anything|something|stuff|a|an|the|much|many|
    more|of|with|that is|that's|that are|which is|is|are|be|being|been|sound|sounds|sounding|sound like|
    sounds like|like|have|has|having|use|uses|using|include|includes|including|contain|contains|containing|
    feature|features|featuring|want|wanna|need|like any|a fan of|fan of|big on|into|keen on|crazy about|fond of|
    hear|play|get|any of|the sound of|sound of|kind of|sort of|type of|heavy on|too much|too many|loads of|
    lots of|a lot of|add|put|my|those|these|such|even|all|any kind of|some|none|one|ones|this|it|them|
    want any|want to hear|care for|go for|go with|too heavy on|too much of|really|hearing|listening to|
    all of|all the|of the|the usual|usual|overly|as much|as|tons of|a bunch of|bunch of|liked|when songs have|
    when songs have a|when a song has|when a song has a|when there is|when there's|when theres|when it has|
    when they have|it when songs have|it when there's|it when|that sounds like|that sound like|that sounds|
    which sounds like|anything that sounds like|
""".replace("\n", " ").split("|") if f.strip()), key=len, reverse=True))
#: Words dropped from the end of a rejected phrase ("no loud sounds" → "loud"), when something is left.
TRAILING_FILLERS = frozenset("""
    at all whatsoever please though thanks stuff things thing ones one music songs song tracks track tunes
    tune sounds sound vibe vibes type types kind style styles genre feel feeling movie film influence
    influences parts part bits bit elements element please either too much anymore world scene realm bubble
    lately stuff on top
""".split())
#: ``X-free``/``X-less`` words that are not a rejection of a sound.
FREE_STOPWORDS = frozenset({"royalty", "copyright", "hands", "care", "stress", "worry", "duty", "tax", "gluten",
                            "sugar", "fat", "hassle", "ad", "ads", "risk", "trouble", "cost", "end", "time",
                            "home", "count", "name", "self", "use", "help", "rest", "need", "point", "life"})
#: One-word phrases that name no sound and reject nothing ("fewer instruments", "less going on").
GENERIC_PHRASES = frozenset("""
    instruments instrument going happening everything things anything something stuff layers elements
""".split())
#: Intensifiers after a cue ("not too heavy rock", "nothing so slow"): the cue then covers the adjective they
#: modify, the first word of its phrase, and the noun after it stays wanted.
INTENSIFIERS = frozenset("too so overly very particularly especially".split())
_MAX_SCOPE = 5
#: Words before a cue that go with it when the rejection is cut out of the request ("I don't want …").
_SUBJECTS = frozenset({"i", "we", "i'm", "im", "i'd", "we'd", "i'll", "really", "just", "please", "definitely",
                       "that", "that's", "thats", "which", "who", "it", "it's", "but", "and", "i've", "ive",
                       "im", "so", "honestly", "totally", "kinda", "a", "bit", "little", "also"})
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


def _first_word_index(items: Sequence[tuple[tuple[str, ...], Any]]) -> dict[str, tuple[tuple[tuple[str, ...], Any], ...]]:
    """``(words, value)`` items by their first word, each word's items in the given order (longest first)."""
    out: dict[str, list] = {}
    for item in items:
        if item[0]:
            out.setdefault(item[0][0], []).append(item)
    return {w: tuple(v) for w, v in out.items()}


@lru_cache(maxsize=1)
def _cues_at() -> dict[str, tuple[tuple[tuple[str, ...], str], ...]]:
    return _first_word_index(_cue_words())


@lru_cache(maxsize=1)
def _non_cues_at() -> dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]]:
    return _first_word_index([(seq, seq) for seq in _non_cue_words()])


def _match(index: dict[str, tuple], toks: Sequence[tuple[str, int, int]], i: int) -> tuple | None:
    """The first item of ``index`` (:func:`_first_word_index`) whose words start at token ``i``, or ``None``:
    only the items starting with token ``i``'s word are tried."""
    if not 0 <= i < len(toks):
        return None
    return next((item for item in index.get(toks[i][0], ()) if _starts_with(toks, i, item[0])), None)


def _is_boundary(tok: str) -> bool:
    return not tok[0].isalnum() or tok in BOUNDARIES


@lru_cache(maxsize=1)
def _may_reject() -> re.Pattern:
    """Matches any text in which :func:`find_rejections` can find a cue: a cue's words in sequence, "than"
    (of "rather than"), a "-free"/"-less" word, a word starting "non"/"un"/"anti-", or "over" opening a clause. Most requests have none, and are done in microseconds."""
    seqs = sorted({seq for seq, _ in _cue_words()} | {seq for seq, _ in _postposed_words()} | {("than",)},
                  key=lambda q: -sum(map(len, q)))
    alternatives = (r"\s*".join(map(re.escape, seq)) for seq in seqs)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])|[a-z0-9]-(?:free|less)\b"
                      r"|[a-z]less\b|(?<![a-z0-9])(?:non|un)[a-z-]{3,}|(?<![a-z0-9])anti-[a-z]"
                      r"|(?:^|[^\sa-z0-9'])\s*over\b")


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
        hit = _match(_non_cues_at(), toks, i)
        non_cue = hit[0] if hit else None
        if non_cue is not None and not any(len(seq) > len(non_cue) and _starts_with(toks, i, seq)
                                           for seq, _ in _cues_at().get(tok, ())):  # "all but the violin" is a cue
            i += len(non_cue)
            continue
        free = re.fullmatch(r"([a-z0-9][a-z0-9 '&/-]*?)-(?:free|less)", tok) or _joined_less(tok)
        if free and free.group(1) not in FREE_STOPWORDS:
            out.append(RejectedPhrase("-free", free.group(1).replace("-", " "), toks[i][1], toks[i][2]))
            i += 1
            continue
        prefixed = _prefixed(tok)
        if prefixed:
            out.append(RejectedPhrase(prefixed[0], prefixed[1], toks[i][1], toks[i][2]))
            i += 1
            continue
        post = _postposed(toks, i, clause_start)
        if post is not None:
            name, start, stop, phrase = post
            out.append(RejectedPhrase(name, phrase, toks[start][1], toks[stop - 1][2]))
            if limit is not None and len(out) >= limit:
                return out[:limit]
            i = stop
            continue
        cue = _match(_cues_at(), toks, i)
        if cue is None and tok == "than" and any(t[0] == "rather" for t in toks[clause_start:i]):
            cue = (("than",), "rather than")
        if cue is None and tok == "over" and i == clause_start:  # "over dubstep tbh"
            cue = (("over",), "over")
        if cue is None:
            i += 1
            continue
        seq, name = cue
        j = i + len(seq)
        if len(seq) > 1 and _match(_non_cues_at(), toks, j - 1) is not None:  # "with no end"
            i = j
            continue
        intensified = name == "nothing too" or (j < len(toks) and toks[j][0] in INTENSIFIERS)
        phrases, end = _word_scope(toks, j) if name == "non" else _scope(toks, j, name in LIST_CUES, intensified)
        phrases = [p for p in phrases if p not in GENERIC_PHRASES]
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


#: Words that join "less" to say a sound is absent ("drumless", "beatless", "vocalless"): the lexicon's heads.
_LESS_HEADS = frozenset({"drum", "beat", "vocal", "lyric", "word", "bass", "guitar", "percussion", "synth",
                         "piano", "rap", "sax", "string", "horn", "brass"})


def _joined_less(tok: str) -> re.Match | None:
    """``drumless``, ``beatless``: a lexicon head with "less" joined without a hyphen."""
    m = re.fullmatch(r"([a-z]{3,}?)s?less", tok)
    return m if m and m.group(1) in _LESS_HEADS else None


def _prefixed(tok: str) -> tuple[str, str] | None:
    """``(cue, word)`` of a prefixed word that negates the word it is joined to ("non-vocal" → vocal,
    "nonelectric" → electric, "un-distorted" → distorted, "unjazzy" → jazzy), else ``None``."""
    if tok in PREFIXED_STOPWORDS or "-" in tok and tok.split("-", 1)[0] not in ("non", "un", "anti"):
        return None
    m = _PREFIXED.fullmatch(tok)
    if not m:
        return None
    prefix = next(g for g in (m.group(1), m.group(3), m.group(5)) if g)
    word = next(g for g in (m.group(2), m.group(4), m.group(6)) if g)
    if word in PREFIXED_STOPWORDS or word in BOUNDARIES:
        return None
    return prefix + "-", word.replace("-", " ")


@lru_cache(maxsize=1)
def _postposed_words() -> tuple[tuple[tuple[str, ...], str], ...]:
    return tuple(sorted(((tuple(_TOKEN.findall(c)), c) for c in POSTPOSED_CUES), key=lambda s: -len(s[0])))


@lru_cache(maxsize=1)
def _postposed_at() -> dict[str, tuple[tuple[tuple[str, ...], str], ...]]:
    return _first_word_index(_postposed_words())


def _postposed(toks: Sequence[tuple[str, int, int]], i: int, clause_start: int):
    """A postposed cue at token ``i`` with the phrase before it in the clause: ``(cue, start, stop, phrase)``
    (token range of phrase and cue), or ``None``."""
    cue = _match(_postposed_at(), toks, i)
    if cue is None:
        return None
    start = i
    while start > clause_start and i - start < _MAX_SCOPE - 1 and not _is_boundary(toks[start - 1][0]):
        start -= 1
    first = _skip_fillers(toks, start)
    words_ = [t for t, *_ in toks[first:i]]
    while len(words_) > 1 and words_[-1] in TRAILING_FILLERS:
        words_.pop()
    if not words_ or (len(words_) == 1 and words_[0] in TRAILING_FILLERS):
        return None
    return cue[1], start, i + len(cue[0]), " ".join(words_)


def _word_scope(toks: Sequence[tuple[str, int, int]], j: int) -> tuple[list[str], int]:
    """The one word a prefix written apart covers ("non electronic dance music" → electronic)."""
    if j < len(toks) and toks[j][0][0].isalnum() and not _is_boundary(toks[j][0]) \
            and "non" + toks[j][0] not in PREFIXED_STOPWORDS:
        return [toks[j][0]], toks[j][2]
    return [], toks[j - 1][2]


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


def _and_item(toks: Sequence[tuple[str, int, int]], j: int) -> bool:
    """Whether the words from ``j`` are one more item of a list: one or two words up to the clause's end,
    none of them a boundary, a filler or a cue ("… and trance", not "… and something upbeat")."""
    n = 0
    while j + n < len(toks) and toks[j + n][0][0].isalnum() and not _is_boundary(toks[j + n][0]):
        if n == 0 and (any(_starts_with(toks, j, f) for f in LEADING_FILLERS)
                       or _match(_cues_at(), toks, j) is not None):
            return False
        n += 1
    return 1 <= n <= 2


def _scope(toks: Sequence[tuple[str, int, int]], j: int, lists: bool = False,
           first_word: bool = False) -> tuple[list[str], int]:
    """The phrases covered from token ``j`` (split at "or"/"nor", and at "and" after a cue of exclusion:
    ``lists``), and the end offset of the scope; with ``first_word`` (a cue and an intensifier: "not too heavy
    rock"), the first phrase is its first word, and the scope ends there unless "or" follows."""
    phrases: list[str] = []
    end = toks[j - 1][2] if j else 0
    while True:
        j = _skip_fillers(toks, j)
        words_: list[str] = []
        limit = 1 if first_word and not phrases else _MAX_SCOPE
        while j < len(toks) and len(words_) < limit:
            t = toks[j][0]
            if t in ("or", "nor", "neither", "either") or _is_boundary(t):
                break
            if _match(_cues_at(), toks, j) is not None and words_:
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
        if lists and phrases and j < len(toks) and toks[j][0] == "and" and _and_item(toks, j + 1):
            j += 1
            continue
        tail = next((t for t in _SCOPE_TAILS if _starts_with(toks, j, t)), None) if phrases else None
        if tail:
            end = toks[j + len(tail) - 1][2]
        return phrases, end
