"""What a request asks for and what it rejects.

"Relaxing music for a rainy evening but not jazz" asks for relaxing music and rejects jazz; a bi-encoder
embeds "not jazz" close to "jazz", so the rejection has to be read out of the request before it is encoded.
:class:`IntentParser` does that with rules, and matches what is rejected to a catalog's descriptor
vocabulary:

1. **Negation cues and their scope** (:func:`~melscribe.intent.rejections.find_rejections`). A cue ("not", "no", "without", "isn't",
   "don't", "nothing too", "anything but", "except", "less", "avoid", "no more", "instead of", "rather than",
   "but not", "minus", "free of", "X-free", …, see :data:`~melscribe.intent.cues.CUES`) covers the phrase that follows it, after
   fillers ("too", "any", "a fan of", "want anything with", …), up to a clause boundary: punctuation, "but",
   "and", "with", "please", "that", "for", "just", … (:data:`~melscribe.intent.cues.BOUNDARIES`). "or" and "nor" coordinate: "not
   too heavy or high pitched" rejects "heavy" and "high pitched". Cues match whole words only, and phrases
   that look like cues but reject nothing ("nothing but love songs", "not only … but also", "no doubt",
   "don't know", …, :data:`~melscribe.intent.cues.NON_CUES`) are skipped, so "I know" or "piano" never make a rejection.
   Forum phrasings (issue 25): exclusion phrases ("outside of", "apart from", "besides", "save for"), aversion
   ("gone off", "sick of", "done with", "fed up with", "I'm over", "allergic to"), degree ("fewer", "lighter
   on", "not as"), part of a whole ("take out the", "lose the"); a negating prefix covers the one word it is
   joined to or followed by ("non-vocal", "nonelectric", "non electronic dance music" → electronic,
   "un-distorted", "unjazzy", "anti-christmas", "drumless"; not "anti-folk", "non-stop", "unplugged", …:
   :data:`~melscribe.intent.cues.PREFIXED_STOPWORDS`); postposed cues take the words before them in the
   clause ("rap is not for me", "with the guitar solos cut out": :data:`~melscribe.intent.cues.POSTPOSED_CUES`).
   Round three: more aversion ("despise", "can't bear", "sick to death of", "kinda over", "no longer into"),
   "all but the" as an exclusion ("all but" alone means "almost"; a cue longer than a non-cue wins); after an
   intensifier ("not too heavy rock", "not so slow blues") the cue covers the adjective only, so the genre stays
   wanted; phrases naming no sound ("fewer instruments", "less going on") reject nothing, nor do "never get
   old", "non stop" (:data:`~melscribe.intent.cues.INTENSIFIERS`,
   :data:`~melscribe.intent.cues.GENERIC_PHRASES`).
   Round four, by family rather than by example: exclusions ("with the exception of", "bar"/"but" after
   "anything" or "any style"), removal and degree verbs ("cut the vocals", "tone down the bass", "the singer
   muted", "keep the drums to a minimum"), postposed aversion ("trumpets annoy me", "rap is off the table"),
   replies ("techno? no thanks"), modifiers ("bass heavy hip hop" rejects bass), a quality's comparand ("not as
   aggressive as punk"); and what rejects nothing: cancelling negations ("not looking for anything other than
   jazz"), liking through a negation ("nothing against country"), names (quotes, capitals, "by"), scopes about the
   person ("i don't speak spanish": :data:`~melscribe.intent.cues.NON_MUSIC_VERBS`).
2. **Matching a rejected phrase to descriptors** (:class:`~melscribe.intent.matching.DescriptorMatcher`). A descriptor is rejected by a
   phrase when

   * *word match*: the phrase's words appear in the descriptor in order ("jazz" → "smooth jazz", "jazz
     piano"), compared by stem ("drums" ~ "drumming", "distortion" ~ "distorted") after a small lexicon of
     synonyms (voice, singer, singing, vocalist → vocal; synthesizer → synth; speech, narration → talk; …,
     :data:`~melscribe.intent.words.SYNONYMS`) and of narrower terms (vocals also covers rap, choir, chant, lyrics; drums covers snare,
     kick, cymbal, hi-hat: :data:`~melscribe.intent.words.NARROWER`);
   * *head*: the descriptor is the phrase's last words ("heavy metal" → "metal", "church organ" → "organ");
   * *semantic*: its embedding is at least :attr:`~melscribe.intent.matching.DescriptorMatcher.threshold` (cosine) from the phrase's
     and it shares no word stem with the phrase. Descriptors that share a stem but differ by a modifier are
     siblings, not synonyms: the encoder puts "fast tempo" 0.94 from "slow tempo" and "female voice" 0.81
     from "male voice" (packaged MiniLM), so similarity cannot tell them apart. The threshold is calibrated
     on hand-labelled pairs (:data:`~melscribe.intent.matching.SYNONYM_PAIRS_FILE`, :func:`~melscribe.intent.matching.calibrate_threshold`), per encoder.

   Negative descriptors ("no vocals", "no percussion", "non-musical") are never rejected, nor are
   "instrumental" ones unless the phrase itself says instrumental, nor any descriptor the request asks for.
3. **Negative descriptors are wanted when asked for.** A rejection of vocals wants the catalog's "no
   vocals", "no voices", "no singer", … and "instrumental"; a rejection of drums wants "no drums" (and "no
   percussion" if percussion is rejected too).

The :class:`Intent` holds the wanted and rejected descriptors, the rejected phrases and :attr:`Intent.text`,
the request without its rejections (plus the wanted negative descriptors), which is what gets encoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from melscribe.intent.llm_reader import reader_from_env
from melscribe.intent.matching import DescriptorMatcher, GENERIC_WORDS
from melscribe.intent.rejections import find_rejections
from melscribe.intent.scope_model import scope_from_env
from melscribe.intent.words import narrower, stems, subsequence, words


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
    calibrated for ``encoder`` (:func:`calibrate_threshold`). ``reader``: an LLM reader of rejections
    (:class:`~melscribe.intent.llm_reader.LLMRejectionReader`), ``None`` for the rules alone, or ``"env"`` (the
    default): the one ``$MELSCRIBE_INTENT_LLM`` configures, the rules when it is unset. ``scope``: a learned
    reader of negation scope (:class:`~melscribe.intent.scope_model.ScopeModel`) whose rejections are added to
    the rules', ``None`` for the rules alone, or ``"env"`` (the default): the one ``$MELSCRIBE_INTENT_SCOPE``
    names (:func:`~melscribe.intent.scope_model.scope_from_env`; none when it is unset).
    """

    def __init__(self, vocabulary: Sequence[str], vocabulary_embeddings: np.ndarray | None, encoder,
                 threshold: float | None = None, reader: Any = "env", scope: Any = "env"):
        self.matcher = DescriptorMatcher(vocabulary, encoder, vocabulary_embeddings, threshold)
        #: an LLM reader of rejections (:mod:`melscribe.intent.llm_reader`) or ``None`` (the rules); by default
        #: the one ``$MELSCRIBE_INTENT_LLM`` configures, none when it is unset
        self.reader = reader_from_env() if reader == "env" else reader
        #: the learned scope reader (:mod:`melscribe.intent.scope_model`) or ``None`` (the rules alone)
        self.scope = scope_from_env() if isinstance(scope, str) and scope == "env" else scope

    @property
    def threshold(self) -> float:
        """The semantic threshold in use."""
        return self.matcher.threshold

    def parse(self, request: str) -> Intent:
        """The :class:`Intent` of ``request``. The work is bounded whatever the request: its first
        :data:`MAX_REJECTIONS` rejections are read (the others stay in the encoded text), and each distinct
        rejected phrase is matched once."""
        found = self.reader.read(request) if self.reader is not None else None
        if found is not None:
            found = found[:MAX_REJECTIONS]
        else:
            found = find_rejections(request, limit=MAX_REJECTIONS)
            if self.scope is not None:
                found = (found + self.scope.rejections(request, found))[:MAX_REJECTIONS]
        text = _remove_spans(request, [(r.start, r.end) for r in found])
        positive = list(dict.fromkeys(self.matcher.descriptors_in(text, generic=GENERIC_WORDS)))
        if not found:
            return Intent(request, request.strip(), tuple(positive))
        phrases = [r.phrase for r in found]
        distinct = list(dict.fromkeys(phrases))
        keep = _kept(positive, found) + [d for r in found if r.degree for d in self.matcher.reduced(r.phrase)]
        matched = dict(zip(distinct, self.matcher.matches(distinct, keep=keep)))
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
                 if ast == ps or (len(ps) == 1 and (absent in rejected or set(ast) <= narrower(ps[0])))]
        out = [d for *_, d in sorted(found)]
        if ps == ("vocal",):  # "instrumental" says no vocals too; second, after "no <phrase>"
            out[1:1] = [d for d in ("instrumental", "instrumental music") if d in self.matcher]
        return list(dict.fromkeys(out))


def _kept(positive: Sequence[str], found) -> list[str]:
    """The descriptors asked for that stay wanted whatever is rejected: all but those containing a removed
    phrase ("jazz fusion without the jazz": "jazz fusion" is no longer kept, so "jazz" is rejected in it too;
    "jazz, anything but smooth jazz": "jazz" is kept). A reduction ("sad, but not too sad") removes nothing, nor
    does a negating prefix, which qualifies what follows it ("non-dancey edm": edm stays wanted)."""
    removed = [stems(r.phrase) for r in found if not r.degree and not r.cue.endswith("-")]  # "non-dancey edm"
    return [d for d in positive if not any(ps and subsequence(ps, stems(d)) for ps in removed)]


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
