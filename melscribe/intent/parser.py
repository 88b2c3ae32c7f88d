"""What a request asks for and what it rejects.

"Relaxing music for a rainy evening but not jazz" asks for relaxing music and rejects jazz; a bi-encoder
embeds "not jazz" close to "jazz", so the rejection has to be read out of the request before it is encoded.
:class:`IntentParser` does that with rules, and matches what is rejected to a catalog's descriptor
vocabulary:

1. **Negation cues and their scope** (:func:`find_rejections`). A cue ("not", "no", "without", "isn't",
   "don't", "nothing too", "anything but", "except", "less", "avoid", "no more", "instead of", "rather than",
   "but not", "minus", "free of", "X-free", …, see :data:`CUES`) covers the phrase that follows it, after
   fillers ("too", "any", "a fan of", "want anything with", …), up to a clause boundary: punctuation, "but",
   "and", "with", "please", "that", "for", "just", … (:data:`BOUNDARIES`). "or" and "nor" coordinate: "not
   too heavy or high pitched" rejects "heavy" and "high pitched". Cues match whole words only, and phrases
   that look like cues but reject nothing ("nothing but love songs", "not only … but also", "no doubt",
   "don't know", …, :data:`NON_CUES`) are skipped, so "I know" or "piano" never make a rejection.
2. **Matching a rejected phrase to descriptors** (:class:`DescriptorMatcher`). A descriptor is rejected by a
   phrase when

   * *word match*: the phrase's words appear in the descriptor in order ("jazz" → "smooth jazz", "jazz
     piano"), compared by stem ("drums" ~ "drumming", "distortion" ~ "distorted") after a small lexicon of
     synonyms (voice, singer, singing, vocalist → vocal; synthesizer → synth; speech, narration → talk; …,
     :data:`SYNONYMS`) and of narrower terms (vocals also covers rap, choir, chant, lyrics; drums covers snare,
     kick, cymbal, hi-hat: :data:`NARROWER`);
   * *head*: the descriptor is the phrase's last words ("heavy metal" → "metal", "church organ" → "organ");
   * *semantic*: its embedding is at least :attr:`DescriptorMatcher.threshold` (cosine) from the phrase's
     and it shares no word stem with the phrase. Descriptors that share a stem but differ by a modifier are
     siblings, not synonyms: the encoder puts "fast tempo" 0.94 from "slow tempo" and "female voice" 0.81
     from "male voice" (packaged MiniLM), so similarity cannot tell them apart. The threshold is calibrated
     on hand-labelled pairs (:data:`SYNONYM_PAIRS_FILE`, :func:`calibrate_threshold`), per encoder.

   Negative descriptors ("no vocals", "no percussion", "non-musical") are never rejected, nor are
   "instrumental" ones unless the phrase itself says instrumental, nor any descriptor the request asks for.
3. **Negative descriptors are wanted when asked for.** A rejection of vocals wants the catalog's "no
   vocals", "no voices", "no singer", … and "instrumental"; a rejection of drums wants "no drums" (and "no
   percussion" if percussion is rejected too).

The :class:`Intent` holds the wanted and rejected descriptors, the rejected phrases and :attr:`Intent.text`,
the request without its rejections (plus the wanted negative descriptors), which is what gets encoded.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------------------
# Words: normalisation, stems, synonyms
# ---------------------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


def _prenormalise(text: str) -> str:
    """Lower case, one spelling for a few compounds ("hip-hop", "k-pop", "e-guitar", "hi-hat", "r&b")."""
    t = text.lower().replace("’", "'")
    t = re.sub(r"\br\s*&\s*b\b", "rnb", t)
    t = re.sub(r"\bhip[\s-]?hop\b", "hiphop", t)
    t = re.sub(r"\bhi[\s-]?hats?\b", "hihat", t)
    t = re.sub(r"\blo[\s-]?fi\b", "lofi", t)
    t = re.sub(r"\be-(guitar|bass|piano|drum)", r"electric \1", t)
    t = re.sub(r"\b([a-z])-(pop|rock|rap)\b", r"\1\2", t)  # k-pop, j-rock
    t = re.sub(r"\ba\s*cappella\b|\bacapella\b", "acapella", t)
    return t


def stem(word: str) -> str:
    """A light suffix-stripping stem, the same for the request and the vocabulary ("drums", "drumming",
    "drummer" → "drum"; "distorted", "distortion" → "distort"; "jazzy" → "jazz"; "sadness" → "sad")."""
    w = word
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix, keep in (("isation", 4), ("ization", 4), ("ness", 3), ("ing", 3), ("ist", 4), ("ion", 4),
                         ("ed", 3), ("er", 3), ("y", 4), ("e", 4)):
        if w.endswith(suffix) and len(w) - len(suffix) >= keep:
            w = w[: -len(suffix)]
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouslz":  # rapp → rap, drumm → drum
        w = w[:-1]
    return w


#: Words that mean the same thing in a descriptor, mapped to one stem (the first word of each group).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "vocal": ("vocals", "voice", "voices", "singer", "singers", "singing", "sing", "sung", "vocalist",
              "vocalisation", "vocalization", "lyrics", "lyric", "lyrical"),
    "synth": ("synthesizer", "synthesiser", "synthesizers", "synthesisers", "synthesized", "synthesised"),
    "talk": ("talking", "speech", "speaking", "speak", "spoken", "narration", "narrator", "narrating",
             "monologue", "preaching", "preacher"),
    "saxophone": ("sax", "saxophones"),
    "percussion": ("percussions", "percussive"),
    "piano": ("pianist", "pianos"),
    "orchestra": ("orchestral", "orchestras"),
    "drum": ("drums", "drumming", "drummer", "drumkit"),
    "guitar": ("guitars", "guitarist"),
    "electronic": ("electronics", "electronica"),
}
#: Narrower terms: a phrase that is just this word also rejects descriptors with one of these.
NARROWER: dict[str, tuple[str, ...]] = {
    "vocal": ("rap", "rapping", "rapper", "choir", "chant", "chanting", "humming", "acapella",
              "beatbox", "beatboxing", "yodel", "yodeling", "crooning", "scat", "opera", "choral"),
    "drum": ("snare", "kick", "cymbal", "cymbals", "hihat", "tom", "toms"),
    "beat": ("drum", "drums", "drumming", "percussion", "snare", "kick", "hihat"),
    "rap": ("rapping", "rapper", "mc"),
    "talk": ("chatter", "chattering", "chat"),
}


@lru_cache(maxsize=None)
def _canon() -> dict[str, str]:
    out: dict[str, str] = {}
    for head, words in SYNONYMS.items():
        for w in (head, *words):
            out[stem(w)] = stem(head)
    return out


@lru_cache(maxsize=200_000)
def stems(text: str) -> tuple[str, ...]:
    """The normalised stems of ``text``'s words (after :data:`SYNONYMS`)."""
    canon = _canon()
    return tuple(canon.get(s, s) for s in (stem(w) for w in _WORD.findall(_prenormalise(text))))


def words(text: str) -> tuple[str, ...]:
    """The normalised words of ``text`` (lower case, compounds joined), unstemmed."""
    return tuple(_WORD.findall(_prenormalise(text)))


_NARROWER_STEMS: dict[str, frozenset[str]] = {}


def _narrower(s: str) -> frozenset[str]:
    if not _NARROWER_STEMS:
        canon = _canon()
        for head, ws in NARROWER.items():
            key = canon.get(stem(head), stem(head))
            _NARROWER_STEMS[key] = frozenset(canon.get(stem(w), stem(w)) for w in _WORD.findall(" ".join(ws)))
    return _NARROWER_STEMS.get(s, frozenset())


_NEGATIVE_HEADS = ("no", "non", "not", "without", "zero", "lack", "absence")


def is_negative_descriptor(descriptor: str) -> bool:
    """Whether a descriptor states an absence: "no vocals", "non-musical", "without drums", "no other
    instruments". ("instrumental" is not negative in form; :class:`DescriptorMatcher` treats it apart.)"""
    w = words(descriptor)
    return bool(w) and w[0] in _NEGATIVE_HEADS


def negated_part(descriptor: str) -> str | None:
    """What a negative descriptor says is absent ("no vocals" → "vocals"), or ``None``."""
    m = re.match(r"\s*(?:no|non|not|without|zero|lack of|absence of)[\s-]+(.+)", descriptor.lower())
    return m.group(1).strip() if m else None


def _subsequence(needle: Sequence[str], hay: Sequence[str]) -> bool:
    it = iter(hay)
    return all(any(h == n for h in it) for n in needle)


# ---------------------------------------------------------------------------------------------------------
# Finding rejections in the request text
# ---------------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------------
# Matching phrases to the vocabulary
# ---------------------------------------------------------------------------------------------------------

#: Hand-labelled (phrase, descriptor, same concept?) pairs from which the semantic threshold is calibrated.
SYNONYM_PAIRS_FILE = Path(__file__).with_name("synonyms.json")
#: The threshold :func:`calibrate_threshold` finds for the packaged all-MiniLM-L6-v2 on
#: :data:`SYNONYM_PAIRS_FILE`. It is high because, for that model, no lower threshold classifies more of the
#: labelled pairs right: among neighbours sharing no word with a phrase, those above any threshold from 0.60
#: to 0.94 are more often not synonyms than synonyms ("percussion" 0.82 from "drums", "quiet" 0.76 from
#: "loud"), so matching rests on words, stems, the lexicon and heads.
DEFAULT_THRESHOLD = 0.94


def load_synonym_pairs(path: str | Path = SYNONYM_PAIRS_FILE) -> list[tuple[str, str, bool]]:
    """The labelled pairs: ``(phrase, descriptor, same)`` where ``same`` says a user rejecting the phrase
    rejects the descriptor too."""
    data = json.loads(Path(path).read_text())
    return [(p["phrase"], p["descriptor"], bool(p["same"])) for p in data["pairs"]]


def best_threshold(similarities: Sequence[float], labels: Sequence[bool]) -> float:
    """The cosine threshold that classifies the most pairs right (``sim ≥ t`` ⇔ same), ties broken towards
    the higher threshold; candidate thresholds are midpoints between sorted similarities, to 3 decimals."""
    sims = np.asarray(similarities, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    values = np.unique(np.round(sims, 3))
    candidates = np.concatenate([[values[0] - 1e-3], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-3]])
    best, best_t = -1, float(candidates[-1])
    for t in candidates[::-1]:
        correct = int(((sims >= t) == labels).sum())
        if correct > best:
            best, best_t = correct, float(t)
    return round(best_t, 3)


_calibrated: "weakref.WeakKeyDictionary[Any, float]" = weakref.WeakKeyDictionary()
_calibrated_lock = threading.Lock()


def calibrate_threshold(encoder, pairs: Sequence[tuple[str, str, bool]] | None = None) -> float:
    """The semantic threshold for ``encoder``: :func:`best_threshold` of the labelled pairs'
    similarities under it (memoised per encoder when ``pairs`` is the default file)."""
    default = pairs is None
    if default:
        with _calibrated_lock:
            try:
                if encoder in _calibrated:
                    return _calibrated[encoder]
            except TypeError:
                pass
        pairs = load_synonym_pairs()
    texts = sorted({t for p, d, _ in pairs for t in (p, d)})
    emb = dict(zip(texts, encoder.encode(texts)))
    sims = [float(emb[p] @ emb[d]) for p, d, _ in pairs]
    t = best_threshold(sims, [s for _, _, s in pairs])
    if default:
        with _calibrated_lock:
            try:
                _calibrated[encoder] = t
            except TypeError:  # an encoder that cannot be weakly referenced is calibrated each time
                pass
    return t


class DescriptorMatcher:
    """The descriptors of a vocabulary that a phrase names (see the module doc, point 2).

    ``vocabulary_embeddings`` are the encoder's L2-normalised embeddings of ``vocabulary`` (row ``i`` is
    ``vocabulary[i]``); computed with ``encoder`` if not given. ``threshold``: the semantic threshold;
    default :func:`calibrate_threshold` for ``encoder``.
    """

    def __init__(self, vocabulary: Sequence[str], encoder, vocabulary_embeddings: np.ndarray | None = None,
                 threshold: float | None = None):
        self.vocabulary = list(vocabulary)
        self.encoder = encoder
        if vocabulary_embeddings is None:
            vocabulary_embeddings = encoder.encode(self.vocabulary)
        self.embeddings = np.asarray(vocabulary_embeddings, dtype=np.float32)
        if len(self.embeddings) != len(self.vocabulary):
            raise ValueError(f"{len(self.embeddings)} embeddings for {len(self.vocabulary)} descriptors")
        self.threshold = float(calibrate_threshold(encoder) if threshold is None else threshold)
        self._stems = [stems(d) for d in self.vocabulary]
        self._postings: dict[str, list[int]] = {}
        for i, ss in enumerate(self._stems):
            for s in set(ss):
                self._postings.setdefault(s, []).append(i)
        self._row = {d: i for i, d in enumerate(self.vocabulary)}
        self._negative = np.array([is_negative_descriptor(d) for d in self.vocabulary], dtype=bool)
        self._instrumental = np.array(["instrumental" in ss for ss in self._stems], dtype=bool)
        self._by_words: dict[tuple[str, ...], str] = {}
        for d in self.vocabulary:
            self._by_words.setdefault(words(d), d)
        #: the negative descriptors: (descriptor, what it says is absent, its stems, its words)
        self.absences = [(d, a, stems(a), words(a)) for d in self.vocabulary if (a := negated_part(d))]

    def __contains__(self, descriptor: str) -> bool:
        return descriptor in self._row

    def word_matches(self, phrase: str) -> set[int]:
        """Rows whose descriptor contains the phrase's stems in order (with narrower terms for a one-word
        phrase), or is the phrase's last words (its head)."""
        ps = stems(phrase)
        if not ps:
            return set()
        rows: set[int] = set()
        first = self._postings.get(ps[0], [])
        rows.update(i for i in first if _subsequence(ps, self._stems[i]))
        if len(ps) == 1:
            for s in _narrower(ps[0]):
                rows.update(self._postings.get(s, []))
        for m in range(1, len(ps)):
            tail = ps[m:]
            rows.update(i for i in self._postings.get(tail[0], []) if self._stems[i] == tail)
        return rows

    def matches(self, phrases: Sequence[str], *, keep: Iterable[str] = ()) -> list[set[str]]:
        """For each phrase, the descriptors it names: word matches, head, and semantic neighbours sharing no
        stem with it (cosine ≥ :attr:`threshold`), without negative descriptors, "instrumental" ones (unless
        the phrase is about being instrumental) and those in ``keep``."""
        if not phrases:
            return []
        rows_known = [self._row.get(p) for p in phrases]  # a phrase that is a descriptor has its embedding
        unknown = [p for p, r in zip(phrases, rows_known) if r is None]
        encoded = iter(self.encoder.encode(unknown)) if unknown else iter(())
        emb = np.stack([self.embeddings[r] if r is not None else next(encoded) for r in rows_known])
        sims_all = self.embeddings @ emb.T if len(self.embeddings) else np.zeros((0, len(phrases)), np.float32)
        keep = set(keep)
        out = []
        for k, phrase in enumerate(phrases):
            ps = set(stems(phrase))
            rows = self.word_matches(phrase)
            for i in np.flatnonzero(sims_all[:, k] >= self.threshold).tolist():
                if not ps & set(self._stems[i]):
                    rows.add(i)
            exact = self._row.get(phrase.strip().lower())
            if len(ps) > 1:  # "sad lyrics": descriptors written word for word inside the phrase count too
                rows.update(self._row[d] for d in self.descriptors_in(phrase, generic=GENERIC_WORDS))
            names = set()
            for i in rows:
                if i == exact:
                    names.add(self.vocabulary[i])
                    continue
                if self._negative[i] or (self._instrumental[i] and "instrumental" not in ps):
                    continue
                names.add(self.vocabulary[i])
            out.append(names - keep)
        return out

    def descriptors_in(self, text: str, *, generic: frozenset[str] = frozenset()) -> list[str]:
        """Vocabulary descriptors that appear word for word in ``text``, longest first, not overlapping,
        in text order (``generic`` words alone do not count)."""
        ws = words(text)
        found: list[tuple[int, str]] = []
        i = 0
        longest = 6
        while i < len(ws):
            for n in range(min(longest, len(ws) - i), 0, -1):
                d = self._by_words.get(ws[i:i + n])
                if d is not None and not (n == 1 and ws[i] in generic):
                    found.append((i, d))
                    i += n
                    break
            else:
                i += 1
        return [d for _, d in found]


# ---------------------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------------------

#: Words that are MusicCaps descriptors but say nothing wanted on their own in a request.
GENERIC_WORDS = frozenset("""
    music song songs track tracks tune tunes sound sounds something anything piece vibe vibes playlist the a an
    for i me my to of and or with no not some like just only want need love please one it its that this at all
    good nice great new old best first cool kind type style background time day night
""".split())


@dataclass(frozen=True)
class Intent:
    """What a request wants and rejects.

    ``request``: the request as given. ``text``: what the encoder reads, the request without its rejections
    (with the wanted negative descriptors appended, "no vocals, instrumental"). ``wanted``: vocabulary
    descriptors the request asks for, word for word or as a wanted absence. ``rejected``: the descriptors
    its rejections name (:class:`DescriptorMatcher`). ``rejected_phrases``: the phrases as written
    ("jazz", "vocals"); ``rejections``: each phrase with its cue and descriptors.
    """

    request: str
    text: str
    wanted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    rejected_phrases: tuple[str, ...] = ()
    rejections: tuple[tuple[str, str, tuple[str, ...]], ...] = field(default=(), repr=False)

    @property
    def empty(self) -> bool:
        """No rejection found."""
        return not self.rejected_phrases

    def to_dict(self) -> dict[str, Any]:
        """``{"wanted": [...], "avoided": [phrases], "avoided_descriptors": n, "text": ...}``."""
        return {"wanted": list(self.wanted), "avoided": list(self.rejected_phrases),
                "avoided_descriptors": len(self.rejected), "text": self.text}

    def describe(self) -> str:
        """One line for people: ``wants: …; avoids: … (n descriptors)``."""
        parts = []
        if self.wanted:
            parts.append("wants " + ", ".join(self.wanted))
        if self.rejected_phrases:
            parts.append("avoids " + ", ".join(self.rejected_phrases)
                         + f" ({len(self.rejected)} descriptor{'s' * (len(self.rejected) != 1)})")
        return "; ".join(parts) if parts else "no rejection found"


#: Wanted negative descriptors kept per rejected phrase (the closest forms: "no vocals", "instrumental", …),
#: and how many of them the encoder reads after the request.
#: The most rejections read in one request: a request of hundreds of "but not X" costs no more than this many
#: (far more than people write: the held-out negated requests have at most 4).
MAX_REJECTIONS = 16
MAX_WANTED_ABSENCES = 3
ENCODED_ABSENCES = 2
#: What the encoder reads when a request is nothing but rejections ("anything but country").
EMPTY_TEXT = "music"


class IntentParser:
    """Parses requests into :class:`Intent` against one vocabulary; build once, use from many threads.

    ``vocabulary_embeddings``: the encoder's embeddings of ``vocabulary`` (a :class:`DescriptorIndex` holds
    them as ``vocabulary_embeddings``); computed if not given. ``threshold``: semantic threshold, default
    calibrated for ``encoder`` (:func:`calibrate_threshold`).
    """

    def __init__(self, vocabulary: Sequence[str], vocabulary_embeddings: np.ndarray | None, encoder,
                 threshold: float | None = None):
        self.matcher = DescriptorMatcher(vocabulary, encoder, vocabulary_embeddings, threshold)

    @property
    def threshold(self) -> float:
        """The semantic threshold in use."""
        return self.matcher.threshold

    def parse(self, request: str) -> Intent:
        """The :class:`Intent` of ``request``. The work is bounded whatever the request: its first
        :data:`MAX_REJECTIONS` rejections are read (the others stay in the encoded text), and each distinct
        rejected phrase is matched once."""
        found = find_rejections(request, limit=MAX_REJECTIONS)
        text = _remove_spans(request, [(r.start, r.end) for r in found])
        positive = list(dict.fromkeys(self.matcher.descriptors_in(text, generic=GENERIC_WORDS)))
        if not found:
            return Intent(request, request.strip(), tuple(positive))
        phrases = [r.phrase for r in found]
        distinct = list(dict.fromkeys(phrases))
        matched = dict(zip(distinct, self.matcher.matches(distinct, keep=positive)))
        per_phrase = [matched[p] for p in phrases]
        rejected: set[str] = set().union(*per_phrase)
        wanted_negative: list[str] = []
        for r, names in zip(found, per_phrase):
            if r.degree:
                continue
            for d in self._wanted_absences(r.phrase, names)[:MAX_WANTED_ABSENCES]:
                if d not in wanted_negative:
                    wanted_negative.append(d)
        wanted = tuple(dict.fromkeys([*positive, *wanted_negative]))
        encoded = text if text else ""
        if wanted_negative:
            encoded = ", ".join(x for x in (encoded, ", ".join(wanted_negative[:ENCODED_ABSENCES])) if x)
        return Intent(request, encoded or EMPTY_TEXT, wanted, tuple(sorted(rejected)),
                      tuple(dict.fromkeys(phrases)),
                      tuple((r.cue, r.phrase, tuple(sorted(n))) for r, n in zip(found, per_phrase)))

    def _wanted_absences(self, phrase: str, rejected: set[str]) -> list[str]:
        """Negative descriptors saying the phrase (or one of its rejected descriptors) is absent, closest
        first; "instrumental" too when vocals are rejected."""
        ps, own = stems(phrase), words(phrase)
        found = [(aw != own, ast != ps, len(d), d) for d, absent, ast, aw in self.matcher.absences
                 if ast == ps or (len(ps) == 1 and (absent in rejected or set(ast) <= _narrower(ps[0])))]
        out = [d for *_, d in sorted(found)]
        if ps == ("vocal",):  # "instrumental" says no vocals too; second, after "no <phrase>"
            out[1:1] = [d for d in ("instrumental", "instrumental music") if d in self.matcher]
        return list(dict.fromkeys(out))


def _remove_spans(request: str, spans: Sequence[tuple[int, int]]) -> str:
    """``request`` without the character spans, with a dangling "but"/"and"/"with"/"please" and stray
    punctuation tidied away."""
    if not spans:
        return request.strip()
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    text = request
    for start, end in reversed(merged):
        text = text[:start] + " " + text[end:]
    text = re.sub(r"\b(but|and|with|though|please|though)\s*(?=[,.;:!?]|$)", " ", text, flags=re.I)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,.;:!?])(\s*[,.;:!?])+", r"\1", text)
    text = re.sub(r"\s+", " ", text).strip(" ,.;:!?-")
    text = re.sub(r"\b(but|and|with|though|please)$", "", text, flags=re.I).strip(" ,.;:!?-")
    return text


def parse_intent(request: str, vocabulary: Sequence[str], encoder, vocabulary_embeddings: np.ndarray | None = None,
                 threshold: float | None = None) -> Intent:
    """:meth:`IntentParser.parse` with a parser built for this call (build an :class:`IntentParser` once to
    parse many requests)."""
    return IntentParser(vocabulary, vocabulary_embeddings, encoder, threshold).parse(request)
