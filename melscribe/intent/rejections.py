"""Finding the rejections in a request's text: negation cues and the phrase each covers (see
:mod:`melscribe.intent.parser` for the rules, :mod:`melscribe.intent.cues` for the word lists). Works on the
text alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from melscribe.intent.cues import (ALL_OK, ALL_WORDS, BEFORE_POSTPOSED, BOUNDARIES, CLAUSE_END_POSTPOSED,
                                    COPULAS, CUES, DEGREE_CUES, DETERMINED_POSTPOSED, DETERMINERS, EVALUATIVE,
                                    FREE_STOPWORDS, GENERIC_PHRASES, HEAVY_WORDS, HYPHENED_NEGATION,
                                    INTENSIFIERS, KINDS, LEADING_FILLERS, LESS_HEADS, LIST_CUES, MAX_SCOPE,
                                    NAMERS, NEGATORS, NON_CUES, NON_MUSIC_VERBS, NOT_SOUNDS, OPENERS, PARTICLES,
                                    PARTICLE_VERBS, POSTPOSED_CUES, PREFIXED, PREFIXED_STOPWORDS, QUALITIES,
                                    REPLY_CUES, SCOPE_STOPS, SCOPE_TAILS, SOUND_OPINIONS, SUBJECTS,
                                    TRAILING_FILLERS, TRAILING_NOUNS, WEAK_REPLIES)

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
        """A reduction ("less guitar", "nothing too sad", "turn the bass down") rather than a removal."""
        return self.cue in DEGREE_CUES or self.cue.endswith(("… down", "… back"))


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
    """Matches any text in which :func:`find_rejections` can find a cue: a cue's, a postposed cue's or a reply's
    words in sequence (one alternation factored as a trie of its characters: a flat alternation of some 600 cues
    took most of the time of reading a request), "than" (of "rather than"), "too", a "-free"/"-less" word, a word
    starting "non"/"un"/"anti-"/"no-"/"not-", "over" opening a clause, "but"/"bar"/"save" after "any", "all", …,
    "nobody"/"no one" and an -ing word, or a verb and a particle with one to three words between (as
    :func:`_verb_particle` reads them). Most requests have none, and are done in microseconds."""
    seqs = {seq for seq, _ in _cue_words()} | {seq for seq, _ in _postposed_words()} | {("than",), ("too",)} \
        | set(_reply_words())
    word = r"[a-z0-9]+(?:['&/-][a-z0-9]+)*"
    return re.compile(r"(?<![a-z0-9])" + _trie_pattern(" ".join(seq) for seq in seqs) + r"(?![a-z0-9])"
                      r"|[a-z0-9]-(?:free|less)\b"
                      r"|[a-z]less\b|(?<![a-z0-9])(?:non|un)[a-z-]{3,}|(?<![a-z0-9])(?:anti|not?)-[a-z]"
                      r"|(?:^|[^\sa-z0-9'])\s*over\b"
                      r"|\b(?:any|all|every|whatever|anything|everything)(?:\s+[a-z]+){0,3}\s+(?:but|bar|save)\b"
                      r"|\b(?:nobody|no one)\s+[a-z]+ing\b"
                      r"|\b(?:" + "|".join(sorted(PARTICLE_VERBS)) + rf")\s+(?:(?:the|all|those|that|any|these)\s+)*(?:{word}\s+){{1,3}}"
                      r"(?:down|back|out|off|away)\b")


def _trie_pattern(strings) -> str:
    """A regular expression matching exactly ``strings`` (a space standing for any run of white space), written
    as a trie so that the engine tries each prefix once instead of every alternative at every position."""
    trie: dict = {}
    for text in strings:
        node = trie
        for ch in text:
            node = node.setdefault(ch, {})
        node[""] = {}

    def pattern(node: dict) -> str:
        alternatives = [(r"\s*" if ch == " " else re.escape(ch)) + pattern(child)
                        for ch, child in sorted(node.items()) if ch]
        if not alternatives:
            return ""
        if "" in node:
            return "(?:" + "|".join(alternatives) + ")?"
        return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"

    return pattern(trie)


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
    original = re.sub(r"\b([Ee]xcl)\.", r"\1 ", request.replace("’", "'"))  # "excl. ballads"
    text = original.lower()
    toks = _tokens(text)
    quoted = _quoted(text)
    out: list[RejectedPhrase] = []
    i, clause_start, previous_clause = 0, 0, 0
    while i < len(toks):
        tok = toks[i][0]
        if not tok[0].isalnum():
            if clause_start < i:
                previous_clause = clause_start
            clause_start = i + 1
            i += 1
            continue
        if any(a <= toks[i][1] < b for a, b in quoted):  # a title in quotes: '"no surprises" vibes'
            i += 1
            continue
        # a reply to the clause before ("techno? no thanks"), a postposed cue ("rap is not for me"), a verb and its
        # particle around the object ("turn the bass down a notch"): each gives its span and phrases
        span = _reply(toks, i, clause_start, previous_clause)
        if span is None:
            if len(original) == len(text) and _names_something(original, toks, i):  # "songs by Nothing But Thieves"
                i += 1
                while i < len(toks) and original[toks[i][1]].isupper():
                    i += 1
                continue
            hit = _match(_non_cues_at(), toks, i)
            non_cue = hit[0] if hit else None
            if non_cue in (("nobody",), ("no", "one")) and i + len(non_cue) < len(toks) \
                    and toks[i + len(non_cue)][0].endswith("ing"):  # "nobody singing": a rejection after all
                j = i + len(non_cue)
                out.append(RejectedPhrase("no", toks[j][0], toks[i][1], toks[j][2]))
                i = j + 1
                continue
            if non_cue is not None and not any(len(seq) > len(non_cue) and _starts_with(toks, i, seq)
                                               for seq, _ in _cues_at().get(tok, ())):  # "all but the violin": a cue
                i += len(non_cue)
                continue
            free = re.fullmatch(r"([a-z0-9][a-z0-9 '&/-]*?)-(?:free|less)", tok) or _joined_less(tok)
            if free and free.group(1) not in FREE_STOPWORDS:
                out.append(RejectedPhrase("-free", free.group(1).replace("-", " "), toks[i][1], toks[i][2]))
                i += 1
                continue
            prefixed = negated_by_prefix(tok)
            if prefixed:
                out.append(RejectedPhrase(prefixed[0], prefixed[1], toks[i][1], toks[i][2]))
                i += 1
                continue
            span = (_postposed(toks, i, clause_start)
                    or (_postposed(toks, i + 1, clause_start) if tok in COPULAS and i + 1 < len(toks) else None)
                    or _verb_particle(toks, i))
        if span is not None:
            name, start, stop, phrases = span
            out.extend(RejectedPhrase(name, p, toks[start][1], toks[stop - 1][2]) for p in phrases)
            if limit is not None and len(out) >= limit:
                return out[:limit]
            i = stop
            continue
        cue = _match(_cues_at(), toks, i)
        if cue is None and tok == "than" and any(t[0] == "rather" for t in toks[clause_start:i]):
            cue = (("than",), "rather than")
        if cue is None and tok == "over" and i == clause_start:  # "over dubstep tbh"
            cue = (("over",), "over")
        if cue is None and tok in ("but", "bar", "save") and _after_all(toks, i, clause_start):  # "any style but techno"
            cue = ((tok,), tok)
        if cue is None:
            i += 1
            continue
        seq, name = cue
        j = i + len(seq)
        if len(seq) > 1 and _match(_non_cues_at(), toks, j - 1) is not None:  # "with no end"
            i = j
            continue
        if name in NEGATORS:
            cancelled = _cancelling_exclusion(toks, j)
            if cancelled is not None:  # "not looking for anything other than jazz": jazz is wanted
                i = cancelled
                continue
            if name == "no" and j < len(toks) and toks[j][0].endswith("'s"):  # "no man's sky": a name
                i = j
                continue
        intensified = name == "nothing too" or (j < len(toks) and toks[j][0] in INTENSIFIERS)
        phrases, end = _word_scope(toks, j) if name == "non" else _scope(toks, j, name in LIST_CUES, intensified)
        if (name in DEGREE_CUES or name in ("not", "nothing too")) and len(phrases) == 1 \
                and _quality(phrases[0]):  # "not as aggressive as punk": punk too; not "less twang than country"
            standard, standard_end = _standard(toks, end)
            phrases, end = phrases + standard, max(end, standard_end)
        phrases = [p for p in phrases if p not in GENERIC_PHRASES]
        if not phrases or _followed_by(toks, end, "by"):  # "no scrubs by tlc", "not afraid by eminem": titles
            i = j
            continue
        start = i
        while start > clause_start and toks[start - 1][0] in SUBJECTS:  # "I don't want…", "I'm not a fan of…"
            start -= 1
        out.extend(RejectedPhrase(name, p, toks[start][1], end) for p in phrases)
        if limit is not None and len(out) >= limit:
            return out[:limit]
        i = _token_after(toks, end, j)
    return out


def _joined_less(tok: str) -> re.Match | None:
    """``drumless``, ``beatless``: a lexicon head with "less" joined without a hyphen."""
    m = re.fullmatch(r"([a-z]{3,}?)s?less", tok)
    return m if m and m.group(1) in LESS_HEADS else None


_QUOTED = re.compile(r'"[^"]{1,80}"|“[^”]{1,80}”|(?<![a-z0-9])\'[^\']{1,80}\'(?![a-z0-9])')


def _quoted(text: str) -> list[tuple[int, int]]:
    """The character spans of quotations in ``text`` (titles: '"no surprises" vibes')."""
    return [m.span() for m in _QUOTED.finditer(text)]


def _names_something(original: str, toks: Sequence[tuple[str, int, int]], i: int) -> bool:
    """Whether a cue at token ``i`` starts a name: after "by", "called", … or, in a request that uses capitals,
    capitalised and followed by a capitalised word in mid-sentence ("songs like No Doubt")."""
    if i == 0 or not toks[i][0][0].isalpha():
        return False
    nxt = i + 1
    named = toks[i - 1][0] in NAMERS or (
        toks[i - 1][0][0].isalnum() and original[toks[i][1]].isupper() and nxt < len(toks)
        and toks[nxt][0][0].isalpha() and original[toks[nxt][1]].isupper())
    return named and (_match(_cues_at(), toks, i) is not None or _match(_non_cues_at(), toks, i) is not None)


def _reply(toks: Sequence[tuple[str, int, int]], i: int, clause_start: int, previous_clause: int):
    """A reply at the start of a clause rejecting the short clause before it ("techno? no thanks"):
    ``(cue, start, stop, [phrase])``, else ``None``."""
    if i != clause_start or i < 2:
        return None
    cue = next((c for c in _reply_words() if _starts_with(toks, i, c)), None)
    if cue is None:
        return None
    stop = i + len(cue)
    if stop < len(toks) and not _is_boundary(toks[stop][0]):
        return None
    if " ".join(cue) in WEAK_REPLIES and toks[i - 1][0] not in ("?", ":"):  # "hello all. no, this isn't …"
        return None
    first = _skip_fillers(toks, previous_clause)
    last = i
    while last > first and not toks[last - 1][0][0].isalnum():
        last -= 1
    words_ = [t for t, *_ in toks[first:last]]
    if not 1 <= len(words_) <= 4 or any(_is_boundary(w) for w in words_):
        return None
    return " ".join(cue), previous_clause, stop, [" ".join(words_)]


@lru_cache(maxsize=1)
def _reply_words() -> tuple[tuple[str, ...], ...]:
    return tuple(sorted((tuple(_TOKEN.findall(c)) for c in REPLY_CUES), key=len, reverse=True))


def _after_all(toks: Sequence[tuple[str, int, int]], i: int, clause_start: int) -> bool:
    """Whether "but"/"bar" at token ``i`` excludes from everything: right after "anything", "all", … or after
    a kind ("style", "genre", …) that one of them opens, in the same clause ("any style but techno", "all
    genres bar country"), not "upbeat but mellow"."""
    if i == 0 or i - 1 < clause_start:
        return False
    k = i - 1
    while k > clause_start and toks[k][0] in ALL_OK:  # "anything goes bar country", "everything is fine but …"
        k -= 1
    before = toks[k][0]
    if before in ALL_WORDS:
        return True
    return before in KINDS and any(t[0] in ALL_WORDS for t in toks[max(clause_start, k - 3):k])


def _cancelling_exclusion(toks: Sequence[tuple[str, int, int]], j: int) -> int | None:
    """After a negator ending at token ``j``: the token after an exclusion of everything that follows within
    four words of its clause ("not looking for anything other than", "don't want anything but"), else ``None``."""
    for k in range(j, min(len(toks), j + 5)):
        if not toks[k][0][0].isalnum():
            return None
        cue = _match(_cues_at(), toks, k)
        if cue is not None and cue[1] in LIST_CUES and cue[1].startswith(("anything", "everything")):
            return k + len(cue[0])
    return None


def negated_by_prefix(tok: str) -> tuple[str, str] | None:
    """``(cue, word)`` of a prefixed word that negates the word it is joined to ("non-vocal" → vocal,
    "nonelectric" → electric, "un-distorted" → distorted, "unjazzy" → jazzy), else ``None``."""
    if tok in PREFIXED_STOPWORDS:
        return None
    m = HYPHENED_NEGATION.fullmatch(tok)  # "no-vocal lofi", "not-too-sweet pop"
    if m:
        return (m.group(1) + "-", m.group(2).replace("-", " ")) if m.group(2) not in BOUNDARIES else None
    if "-" in tok and tok.split("-", 1)[0] not in ("non", "un", "anti"):
        return None
    m = PREFIXED.fullmatch(tok)
    if not m:
        return None
    prefix = next(g for g in (m.group(1), m.group(3), m.group(5)) if g)
    word = next(g for g in (m.group(2), m.group(4), m.group(6)) if g)
    if word in PREFIXED_STOPWORDS or word in BOUNDARIES or (prefix == "un" and word.endswith("ly")):
        return None  # "unbelievably good": an adverb negates no sound
    if prefix == "non" and "-" not in tok and len(word) < 4:  # "noname", "nonce"
        return None
    return prefix + "-", word.replace("-", " ")


@lru_cache(maxsize=1)
def _postposed_words() -> tuple[tuple[tuple[str, ...], str], ...]:
    return tuple(sorted(((tuple(_TOKEN.findall(c)), c) for c in POSTPOSED_CUES), key=lambda s: -len(s[0])))


@lru_cache(maxsize=1)
def _postposed_at() -> dict[str, tuple[tuple[tuple[str, ...], str], ...]]:
    return _first_word_index(_postposed_words())


def _postposed(toks: Sequence[tuple[str, int, int]], i: int, clause_start: int):
    """A postposed cue at token ``i`` with the phrases before it in the clause: ``(cue, start, stop, phrases)``
    (token range of phrase and cue), or ``None``."""
    cue = _match(_postposed_at(), toks, i) or _too_much(toks, i)
    if cue is None:
        return None
    end = i
    while end > clause_start and toks[end - 1][0] in BEFORE_POSTPOSED:  # "accordions are just not my thing"
        end -= 1
    start = end
    while start > clause_start and end - start < MAX_SCOPE - 1 and not _is_boundary(toks[start - 1][0]):
        start -= 1
    stop = i + len(cue[0])
    ends_clause = stop >= len(toks) or _is_boundary(toks[stop][0])
    if cue[1] in DETERMINED_POSTPOSED:
        determined = toks[start][0] in DETERMINERS or (start > 0 and toks[start - 1][0] in OPENERS)
        if not determined or not ends_clause:
            return None
    if cue[1] in CLAUSE_END_POSTPOSED and not (ends_clause and (stop >= len(toks) or not toks[stop][0][0].isalnum()
                                                                or toks[stop][0] not in ("from", "of"))):
        return None
    if cue[1] == "no" and stop < len(toks) and toks[stop][0][0].isalnum():  # "strings no", not "god no more"
        return None
    phrases = _trimmed([t for t, *_ in toks[_skip_fillers(toks, start):end]])
    return (cue[1], start, stop, phrases) if phrases else None


def _trimmed(words_: list[str]) -> list[str]:
    """The phrases of a scope's words: trailing words that name no sound dropped ("no loud sounds" → loud; "no
    drum beats" → drum, but "no beats" stays), words of opinion before a longer phrase dropped ("long solos" →
    solos) or, when they also describe a sound, rejected on their own ("whiny vocals" → whiny, vocals); none
    when nothing is left."""
    while len(words_) > 1 and (words_[-1] in TRAILING_FILLERS or words_[-1] in TRAILING_NOUNS) \
            and words_[-2:] != ["auto", "tune"]:
        words_ = words_[:-1]
    opinions = []
    while len(words_) > 1 and (words_[0] in EVALUATIVE or words_[0] in SOUND_OPINIONS):
        opinions += [words_[0]] if words_[0] in SOUND_OPINIONS else []
        words_ = words_[1:]
    if not words_ or (len(words_) == 1 and words_[0] in TRAILING_FILLERS):
        return []
    return opinions + [" ".join(words_)]


def _quality(phrase: str) -> bool:
    """Whether a one-word phrase reads as a quality (an adjective: "dark", "aggressive", "poppy"), which a
    comparison measures against something rejected, rather than a sound ("less twang than normal country")."""
    return phrase in QUALITIES or (" " not in phrase and phrase.endswith(
        ("y", "ive", "ic", "al", "ous", "ful", "ish", "ed", "ing", "er", "est", "ent", "ant", "ile")))


def _token_after(toks: Sequence[tuple[str, int, int]], end: int, start: int = 0) -> int:
    """The index of the first token (from ``start``) beginning at or after character ``end``; ``len(toks)`` if
    none does."""
    return next((k for k in range(start, len(toks)) if toks[k][1] >= end), len(toks))


def _followed_by(toks: Sequence[tuple[str, int, int]], end: int, word: str) -> bool:
    """Whether the first token after character ``end`` is ``word``."""
    k = _token_after(toks, end)
    return k < len(toks) and toks[k][0] == word


def _standard(toks: Sequence[tuple[str, int, int]], end: int) -> tuple[list[str], int]:
    """What a comparison after a reduction is made with ("not as aggressive *as punk*", "less dark *than
    industrial*"): the phrases after "as"/"than" right at ``end``, and the end of the comparison."""
    k = _token_after(toks, end)
    if k >= len(toks) or toks[k][0] not in ("as", "than"):
        return [], end
    return _scope(toks, k + 1)


def _verb_particle(toks: Sequence[tuple[str, int, int]], i: int) -> tuple[str, int, int, list[str]] | None:
    """A verb at token ``i`` with its object between it and its particle ("turn the bass down a notch", "scale
    the strings back a bit", "leave the drums out"): ``(cue, start, stop, phrases)``, else ``None``."""
    if toks[i][0] not in PARTICLE_VERBS:
        return None
    j = i + 1
    while j < len(toks) and toks[j][0] in ("the", "all", "those", "that", "any", "these"):
        j += 1
    k = j
    while k < len(toks) and k - j < 3 and toks[k][0][0].isalnum() and toks[k][0] not in PARTICLES \
            and not _is_boundary(toks[k][0]):
        k += 1
    if k == j or k >= len(toks) or toks[k][0] not in PARTICLES or j == i + 1 and toks[i][0] in ("keep", "keeping"):
        return None
    stop = k + 1
    for seq in (("a", "notch"), ("a", "bit"), ("a", "little"), ("a", "touch"), ("a", "tad")):
        if _starts_with(toks, stop, seq):
            stop += 2
    if any(t in NOT_SOUNDS for t, *_ in toks[j:k]):  # "turn the lights off"
        return None
    phrases = _trimmed([t for t, *_ in toks[j:k]])
    return (f"{toks[i][0]} … {toks[k][0]}", i, stop, phrases) if phrases else None


def _too_much(toks: Sequence[tuple[str, int, int]], i: int) -> tuple[tuple[str, ...], str] | None:
    """"too" and an adjective after a copula, ending the clause or followed by "for me" ("dubstep is way too
    aggressive for me", "the drums are too loud"): a postposed reduction of what comes before, as
    ``(words, "too")``; else ``None``."""
    if toks[i][0] != "too" or i < 2 or i + 1 >= len(toks):
        return None
    k = i - 1
    if toks[k][0] in ("way", "far", "just", "a", "bit", "kinda", "little", "much"):
        k -= 1 + (toks[k][0] == "bit" and toks[k - 1][0] == "a")
    if k < 1 or toks[k][0] not in COPULAS or not toks[i + 1][0][0].isalpha() or _is_boundary(toks[i + 1][0]):
        return None
    n = 2
    if _starts_with(toks, i + n, ("for", "me")) or _starts_with(toks, i + n, ("for", "my")):
        n += 2 if toks[i + n + 1][0] == "me" else 3
    if i + n < len(toks) and not _is_boundary(toks[i + n][0]):
        return None
    return tuple(t for t, *_ in toks[i:i + n]), "too"


def _word_scope(toks: Sequence[tuple[str, int, int]], j: int) -> tuple[list[str], int]:
    """The one word a prefix written apart covers ("non electronic dance music" → electronic)."""
    if j < len(toks) and toks[j][0][0].isalnum() and not _is_boundary(toks[j][0]) \
            and "non" + toks[j][0] not in PREFIXED_STOPWORDS:
        return [toks[j][0]], toks[j][2]
    return [], toks[j - 1][2]


@lru_cache(maxsize=1)
def _fillers_at() -> dict[str, tuple[tuple[tuple[str, ...], None], ...]]:
    return _first_word_index([(f, None) for f in LEADING_FILLERS])


def _skip_fillers(toks: Sequence[tuple[str, int, int]], j: int) -> int:
    """The first token from ``j`` after the leading fillers there (the longest filler first at each step)."""
    while (filler := _match(_fillers_at(), toks, j)) is not None:
        j += len(filler[0])
    return j


def _and_item(toks: Sequence[tuple[str, int, int]], j: int) -> bool:
    """Whether the words from ``j`` are one more item of a list: one or two words up to the clause's end,
    none of them a boundary, a filler or a cue ("… and trance", not "… and something upbeat")."""
    n = 0
    while j + n < len(toks) and toks[j + n][0][0].isalnum() and not _is_boundary(toks[j + n][0]):
        if n == 0 and (_match(_fillers_at(), toks, j) is not None or _match(_cues_at(), toks, j) is not None):
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
        limit = 1 if first_word and not phrases else MAX_SCOPE
        while j < len(toks) and len(words_) < limit:
            t = toks[j][0]
            if t in ("or", "nor", "neither", "either") or _is_boundary(t):
                break
            if words_ and (_match(_cues_at(), toks, j) is not None
                           or any(_starts_with(toks, j, stop) for stop in SCOPE_STOPS)):
                break
            head, _, tail = t.rpartition("-")
            if words_ and t in HEAVY_WORDS or head and tail in HEAVY_WORDS:  # "bass heavy hip hop": bass
                words_ += [head] if head else []
                end = toks[j][2]
                j += 1
                while j < len(toks) and not _is_boundary(toks[j][0]) and toks[j][0] not in ("or", "nor"):
                    j += 1  # what the modifier qualifies stays wanted
                break
            words_.append(t)
            end = toks[j][2]
            j += 1
        if words_ and words_[0] not in NON_MUSIC_VERBS:
            phrases += _trimmed(words_)
        if j < len(toks) and toks[j][0] in ("or", "nor"):
            j += 1
            continue
        if lists and phrases and j < len(toks) and toks[j][0] == "and" and _and_item(toks, j + 1):
            j += 1
            continue
        tail = next((t for t in SCOPE_TAILS if _starts_with(toks, j, t)), None) if phrases else None
        if tail:
            end = toks[j + len(tail) - 1][2]
        return phrases, end
