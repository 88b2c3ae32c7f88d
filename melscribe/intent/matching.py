"""Matching a rejected phrase to a catalog's descriptor vocabulary (:class:`DescriptorMatcher`): word matches,
heads, and semantic neighbours above a threshold calibrated on hand-labelled pairs."""

from __future__ import annotations

import json
import threading
import weakref
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from melscribe.intent.words import is_negative_descriptor, narrower, negated_part, stems, subsequence, words


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


#: First words of a descriptor saying there is little of something ("minimal percussion", "light drums").
REDUCTION_WORDS = ("minimal", "light", "subtle", "sparse", "soft", "little", "less", "quiet", "gentle", "faint", "few",
                   "slight", "understated")
_REDUCTION_STEMS = frozenset(stems(w)[0] for w in REDUCTION_WORDS)


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
        self._words = [words(d) for d in self.vocabulary]
        self._by_words: dict[tuple[str, ...], str] = {}
        for d, w in zip(self.vocabulary, self._words):
            self._by_words.setdefault(w, d)
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
        rows.update(i for i in first if subsequence(ps, self._stems[i]))
        if len(ps) == 1:
            for s in narrower(ps[0]):
                rows.update(self._postings.get(s, []))
        for m in range(1, len(ps)):
            tail = ps[m:]
            rows.update(i for i in self._postings.get(tail[0], []) if self._stems[i] == tail)
        return rows

    def reduced(self, phrase: str) -> set[str]:
        """The descriptors saying there is little of the phrase ("minimal percussion", "light drums", "subtle
        bass" for "percussion", "drums", "bass"): what a reduction ("less percussion") asks for, so never
        rejected by it."""
        ps = stems(phrase)
        if not ps:
            return set()
        return {self.vocabulary[i] for i in self._postings.get(ps[0], [])
                if self._stems[i] and self._stems[i][0] in _REDUCTION_STEMS and subsequence(ps, self._stems[i][1:])}

    def matches(self, phrases: Sequence[str], *, keep: Iterable[str] = ()) -> list[set[str]]:
        """For each phrase, the descriptors it names: word matches, head, and semantic neighbours sharing no
        stem with it (cosine ≥ :attr:`threshold`), without negative descriptors, "instrumental" ones (unless
        the phrase is about being instrumental) and those in ``keep`` (or spelt like one of them: "edm" and
        "electronic dance music")."""
        if not phrases:
            return []
        rows_known = [self._row.get(p) for p in phrases]  # a phrase that is a descriptor has its embedding
        unknown = [p for p, r in zip(phrases, rows_known) if r is None]
        encoded = iter(self.encoder.encode(unknown)) if unknown else iter(())
        emb = np.stack([self.embeddings[r] if r is not None else next(encoded) for r in rows_known])
        sims_all = self.embeddings @ emb.T if len(self.embeddings) else np.zeros((0, len(phrases)), np.float32)
        kept_words = {words(d) for d in keep}  # "edm" keeps "electronic dance music", its twin spelt out
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
                if self._words[i] in kept_words:
                    continue
                if i == exact:
                    names.add(self.vocabulary[i])
                    continue
                if self._negative[i] or (self._instrumental[i] and "instrumental" not in ps):
                    continue
                names.add(self.vocabulary[i])
            out.append(names)
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


#: Words that are MusicCaps descriptors but say nothing wanted on their own in a request.
GENERIC_WORDS = frozenset("""
    music song songs track tracks tune tunes sound sounds something anything piece vibe vibes playlist the a an
    for i me my to of and or with no not some like just only want need love please one it its that this at all
    good nice great new old best first cool kind type style background time day night
""".split())
