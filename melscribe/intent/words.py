"""Words of requests and descriptors: tokens, stems, the lexicon of synonyms and narrower terms, and negative
descriptors ("no vocals"). Used by :mod:`.rejections`, :mod:`.matching` and :mod:`.parser`."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence


_WORD = re.compile(r"[a-z0-9]+")


def _prenormalise(text: str) -> str:
    """Lower case, one spelling for a few compounds ("hip-hop", "k-pop", "e-guitar", "hi-hat", "r&b", "auto-tune")
    and "edm" spelt out ("electronic dance music")."""
    t = text.lower().replace("’", "'")
    t = re.sub(r"\br\s*&\s*b\b", "rnb", t)
    t = re.sub(r"\bhip[\s-]?hop\b", "hiphop", t)
    t = re.sub(r"\bhi[\s-]?hats?\b", "hihat", t)
    t = re.sub(r"\blo[\s-]?fi\b", "lofi", t)
    t = re.sub(r"\be-(guitar|bass|piano|drum)", r"electric \1", t)
    t = re.sub(r"\b([a-z])-(pop|rock|rap)\b", r"\1\2", t)  # k-pop, j-rock
    t = re.sub(r"\ba\s*cappella\b|\bacapella\b", "acapella", t)
    t = re.sub(r"\bauto[\s-]tun", "autotun", t)  # auto-tune(d), auto tune
    t = re.sub(r"\bedm\b", "electronic dance music", t)
    t = re.sub(r"\bbass\s?lines?\b", "bass line", t)  # bassline(s)
    t = re.sub(r"\bsynth[\s-]?pop\b", "synth pop", t)
    t = re.sub(r"\bdrum\s*(?:&|and|n|'n'|-n-)\s*bass\b|\bdnb\b|\bd&b\b", "drumnbass", t)
    t = re.sub(r"\bx-?mas\b", "christmas", t)
    t = re.sub(r"\b(kick|snare) drums?\b", r"\1", t)  # "kick drum" is a kick
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
              "vocalisation", "vocalization", "lyrics", "lyric", "lyrical", "crooner", "crooners"),
    "synth": ("synthesizer", "synthesiser", "synthesizers", "synthesisers", "synthesized", "synthesised"),
    "talk": ("talking", "speech", "speaking", "speak", "spoken", "narration", "narrator", "narrating",
             "monologue", "preaching", "preacher"),
    "saxophone": ("sax", "saxophones"),
    "percussion": ("percussions", "percussive"),
    "piano": ("pianist", "pianos"),
    "orchestra": ("orchestral", "orchestras", "orchestrated", "orchestration", "orchestrations"),
    "drum": ("drums", "drumming", "drummer", "drumkit"),
    "guitar": ("guitars", "guitarist"),
    "violin": ("violins", "violinist", "fiddle", "fiddles", "fiddler", "fiddling"),
    "opera": ("operas", "operatic"),
    "dance": ("danceable", "dancey", "dancy", "dancing"),
    "distortion": ("distorted", "distort", "fuzz", "fuzzy", "fuzzed"),
    "electronic": ("electronics", "electronica"),
    "improvisation": ("improv", "improvised", "improvising", "improvisational", "improvisations"),
    "depressed": ("depressing", "depressive", "depression"),
    "sad": ("melancholic", "melancholy", "sorrowful", "mournful", "gloomy"),
    "scary": ("spooky", "creepy", "eerie", "frightening", "horror"),
    "repetitive": ("repetition", "repetitious", "repeating"),
    "wobble": ("wobbles", "wobbly", "wub", "wubs"),
    "rap": ("rapping", "rapper", "rappers", "raps", "mc", "mcs", "emcee", "emcees"),
    "reverb": ("reverberant", "reverberation", "reverbs", "reverberating"),
    # a country and its adjective ("anywhere but ireland" rejects "irish folk music")
    "irish": ("ireland",), "indian": ("india",), "scottish": ("scotland",), "spanish": ("spain",),
    "jamaican": ("jamaica",), "japanese": ("japan",), "greek": ("greece",), "mexican": ("mexico",),
    "african": ("africa",), "chinese": ("china",), "french": ("france",), "german": ("germany",),
    "italian": ("italy",), "korean": ("korea",), "cuban": ("cuba",), "brazilian": ("brazil",),
}
#: Narrower terms: a phrase that is just this word also rejects descriptors with one of these.
NARROWER: dict[str, tuple[str, ...]] = {
    "vocal": ("rap", "rapping", "rapper", "choir", "chant", "chanting", "humming", "acapella",
              "beatbox", "beatboxing", "yodel", "yodeling", "crooning", "scat", "opera", "choral"),
    "drum": ("snare", "kick", "cymbal", "cymbals", "hihat", "tom", "toms"),
    "beat": ("drum", "drums", "drumming", "percussion", "snare", "kick", "hihat"),
    "percussion": ("drum", "drums", "drumming", "snare", "kick", "cymbal", "cymbals", "hihat", "tabla", "bongo",
                   "bongos", "conga", "congas", "tambourine", "shaker", "cowbell"),
    "rap": ("rapping", "rapper", "mc"),
    "talk": ("chatter", "chattering", "chat"),
    "horn": ("trumpet", "trumpets", "trombone", "trombones", "saxophone", "sax", "tuba", "cornet", "brass"),
    "brass": ("trumpet", "trumpets", "trombone", "trombones", "tuba", "cornet", "flugelhorn"),
    "hiphop": ("rap", "rapping", "rapper", "trap"),
    "latin": ("reggaeton", "salsa", "cumbia", "bachata", "merengue", "bossa", "samba", "tango"),
    "irish": ("celtic",),
    "religious": ("christian", "gospel", "worship", "hymn", "hymns", "church", "devotional", "spiritual"),
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


def narrower(s: str) -> frozenset[str]:
    """The stems of the terms narrower than the stem ``s`` (:data:`NARROWER`: drums → snare, kick, …)."""
    if not _NARROWER_STEMS:
        canon = _canon()
        for head, ws in NARROWER.items():
            key = canon.get(stem(head), stem(head))
            _NARROWER_STEMS[key] = frozenset(canon.get(stem(w), stem(w)) for w in _WORD.findall(" ".join(ws)))
    return _NARROWER_STEMS.get(s, frozenset())


_NEGATIVE_HEADS = ("no", "non", "not", "without", "zero", "lack", "absence")


def is_negative_descriptor(descriptor: str) -> bool:
    """Whether a descriptor states an absence: "no vocals", "non-musical", "without drums", "no other
    instruments". ("instrumental" is not negative in form; :class:`~melscribe.intent.matching.DescriptorMatcher` treats it apart.)"""
    w = words(descriptor)
    return bool(w) and w[0] in _NEGATIVE_HEADS


def negated_part(descriptor: str) -> str | None:
    """What a negative descriptor says is absent ("no vocals" → "vocals"), or ``None``."""
    m = re.match(r"\s*(?:no|non|not|without|zero|lack of|absence of)[\s-]+(.+)", descriptor.lower())
    return m.group(1).strip() if m else None


def subsequence(needle: Sequence[str], hay: Sequence[str]) -> bool:
    """Whether ``needle``'s items appear in ``hay`` in order (not necessarily adjacent)."""
    it = iter(hay)
    return all(any(h == n for h in it) for n in needle)
