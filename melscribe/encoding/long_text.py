"""Reading a text longer than the encoder's window whole, instead of its first tokens only.

A transformer encoder reads at most ``max_seq_length`` tokens (256 for the packaged MiniLM, 96 for a
bi-encoder trained with the offline preset); the rest of a longer text used to be dropped. Here such a text is
cut into *pieces* that each fit, every piece is embedded as a text of its own, and the piece embeddings are
pooled into one (:func:`pool`). A text that fits is not touched: it is embedded exactly as before, bit for bit.

Pieces are substrings of the text cut at word boundaries of the model's own tokenizer (its pre-tokenizer
splits at spaces and punctuation, so a piece re-tokenises into the very tokens it was cut from, and fits):

* ``"tokens"``: consecutive windows of at most the window's capacity, each starting :attr:`LongTextPolicy.overlap`
  tokens before the previous one ended (the context of its first words);
* ``"sentences"``: whole sentences packed greedily into windows;
* ``"each-sentence"``: every sentence a piece of its own.

(A sentence longer than a window is cut as ``"tokens"`` does, without overlap.)

With :attr:`LongTextPolicy.first_window` (the default), the first piece is the text's first window, exactly
the tokens truncation read, and the other pieces are those of the split that do not lie wholly inside it (the
text truncation dropped, a sentence cut by the window read whole): a request a little over the window keeps what
truncation read as one piece instead of being read only sentence by sentence, and the end of a long request is
still read.

Pooling: ``"mean"`` averages the piece embeddings; ``"tokens"`` weighs each by its number of tokens (close to
what the model's own mean pooling over the whole text gives); ``"relevance"`` weighs each by
``exp(relevance / temperature)``, where a piece's relevance is given by the caller (the recommender: its best
cosine to a descriptor set of the catalog), so that sentences resembling no music in the catalog ("I am writing
this on my phone") weigh little beside those describing what is wanted; without relevance scores it is
``"mean"``; ``"above-first"`` keeps the first piece and only those later pieces more relevant than it, weighed by
``tokens × exp((relevance − the first piece's) / temperature)`` (the first piece weighs its tokens): with
:attr:`LongTextPolicy.first_window`, a request whose unread end resembles the catalog no more than what truncation
read is embedded as truncation embedded it, and an end that names what is wanted outweighs a first window of
chatter (without relevance scores it is ``"tokens"``). Every pooled embedding is L2-normalised again.

Figures (quality on long requests, latency): ``experiments/results/long_requests.md``; the choice made there
is :data:`DEFAULT_POLICY`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: How a long text is cut into pieces (module doc).
SPLITS = ("tokens", "sentences", "each-sentence")
#: How the pieces' embeddings are pooled (module doc, :func:`pool`).
POOLINGS = ("mean", "tokens", "relevance", "above-first")
#: The poolings that weigh pieces by a relevance score.
RELEVANCE_POOLINGS = ("relevance", "above-first")
#: Where a sentence ends: after ``.``, ``!``, ``?`` or ``;`` followed by white space, or at a line break.
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\s*\n\s*")


@dataclass(frozen=True)
class LongTextPolicy:
    """How a text longer than the window is read: ``split`` (one of :data:`SPLITS`), ``overlap`` (tokens a
    ``"tokens"`` window repeats of the previous one; at most half a window), ``pooling`` (one of
    :data:`POOLINGS`) and the ``temperature`` of ``"relevance"`` pooling (0: the most relevant piece alone)."""

    split: str = "tokens"
    overlap: int = 32
    pooling: str = "mean"
    temperature: float = 0.05
    #: the first window (what truncation read) is a piece, followed by the split's pieces that reach beyond it
    first_window: bool = False

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown window split {self.split!r}; choose one of {', '.join(SPLITS)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown window pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.overlap < 0:
            raise ValueError(f"the window overlap must be at least 0, not {self.overlap}")
        if not self.temperature >= 0:
            raise ValueError(f"the relevance temperature must be at least 0, not {self.temperature}")

    @property
    def label(self) -> str:
        """A short name, e.g. ``tokens/32/mean`` or ``each-sentence/relevance@0.05``."""
        cut = f"{self.split}/{self.overlap}" if self.split == "tokens" else self.split
        cut = f"first+{cut}" if self.first_window else cut
        return f"{cut}/{self.pooling}" + (f"@{self.temperature:g}" if self.pooling in RELEVANCE_POOLINGS else "")


#: The policy of :meth:`TextEncoder.encode_whole` (and so of every request ``recommend()`` encodes, each piece's
#: relevance its best score on the catalog): the first window as truncation read it, and each later sentence that
#: is more relevant than it; chosen on ``experiments/results/long_requests.md`` as the one reading that loses
#: nothing on any split's ordinary requests (at 96 tokens too) and still reads the end of a long request.
DEFAULT_POLICY = LongTextPolicy("each-sentence", 0, "above-first", 0.1, first_window=True)
#: Longest request accepted, in characters (about 2,000 tokens): every request is read whole, sentence by sentence
#: (:meth:`melscribe.serve.recommend.Recommender.embed_requests`), and this bounds what that costs (199 ms p50 at this length with onnx-int8 on
#: 2 cores against 4.0 ms for a short request; ``experiments/results/long_requests.md``).
MAX_REQUEST_CHARS = 10_000


@dataclass(frozen=True)
class Window:
    """One window of a long text: the substring ``text[start:end]`` and its number of tokens (specials excluded)."""

    start: int
    end: int
    tokens: int


def windows(text: str, offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None], capacity: int,
            policy: LongTextPolicy = DEFAULT_POLICY) -> list[Window]:
    """The windows of ``text`` whose tokens (special tokens excluded) have character ``offsets`` and pre-token
    ``word_ids`` (a ``tokenizers.Encoding``'s), each of at most ``capacity`` tokens, in order. Every token is in
    at least one window."""
    n = len(offsets)
    if capacity < 1:
        raise ValueError(f"a window must hold at least one token, not {capacity}")
    if n == 0:
        return []
    starts = [i == 0 or word_ids[i] is None or word_ids[i] != word_ids[i - 1] for i in range(n)]
    if policy.split in ("sentences", "each-sentence"):
        out = _sentence_windows(text, offsets, starts, capacity, pack=policy.split == "sentences")
    else:
        out = _token_windows(offsets, starts, 0, n, capacity, min(policy.overlap, (capacity - 1) // 2))
    if policy.first_window and n > capacity:
        first = Window(offsets[0][0], offsets[capacity - 1][1], capacity)  # the tokens truncation reads
        out = [first] + [w for w in out if w.end > first.end]
    return out


def _token_windows(offsets, starts, lo: int, hi: int, capacity: int, overlap: int) -> list[Window]:
    """Windows over tokens ``lo:hi``, cut before a token that starts a word wherever one is in reach."""
    out, s = [], lo
    while True:
        e = min(s + capacity, hi)
        if e < hi:
            b = next((j for j in range(e, s, -1) if starts[j]), None)
            e = b if b is not None else e  # a single word longer than a window is cut inside it
        out.append(Window(offsets[s][0], offsets[e - 1][1], e - s))
        if e >= hi:
            return out
        nxt = e - overlap
        # the next window starts at a word start at most `overlap` tokens back, and always moves on
        while nxt > s + 1 and nxt < e and not starts[nxt]:
            nxt -= 1
        s = nxt if nxt > s and starts[nxt] else e


def _sentence_windows(text: str, offsets, starts, capacity: int, pack: bool = True) -> list[Window]:
    """Whole sentences, packed greedily into windows if ``pack``, else one a window; a sentence longer than a
    window is cut into token windows."""
    ends = [m.start() for m in SENTENCE_END.finditer(text)]
    sentences: list[tuple[int, int]] = []  # token ranges
    i, n = 0, len(offsets)
    for cut in ends + [len(text)]:
        j = i
        while j < n and offsets[j][0] < cut:
            j += 1
        if j > i:
            sentences.append((i, j))
            i = j
    if i < n:
        sentences.append((i, n))
    out: list[Window] = []
    lo = hi = None
    for a, b in sentences:
        if pack and lo is not None and b - lo <= capacity:
            hi = b
            continue
        if lo is not None:
            out.append(Window(offsets[lo][0], offsets[hi - 1][1], hi - lo))
            lo = None
        if b - a <= capacity:
            lo, hi = a, b
        else:
            out.extend(_token_windows(offsets, starts, a, b, capacity, 0))
    if lo is not None:
        out.append(Window(offsets[lo][0], offsets[hi - 1][1], hi - lo))
    return out


def pool(embeddings: np.ndarray, windows_: Sequence[Window], pooling: str = DEFAULT_POLICY.pooling,
         relevance: np.ndarray | None = None, temperature: float = DEFAULT_POLICY.temperature) -> np.ndarray:
    """One L2-normalised float32 embedding from the (L2-normalised) embeddings of a text's pieces: their mean
    (``"mean"``), their mean weighted by the pieces' token counts (``"tokens"``), or weighted by
    ``exp(relevance / temperature)`` (``"relevance"``; the most relevant piece alone at temperature 0; the
    mean without ``relevance``)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    if pooling == "above-first" and relevance is not None and temperature > 0:
        gain = np.asarray(relevance, dtype=np.float64)
        gain = gain - gain[0]
        keep = gain > 0
        keep[0] = True
        tokens = np.array([max(1, x.tokens) for x in windows_], dtype=np.float64)
        w = np.where(keep, tokens * np.exp(np.minimum(gain, 50 * temperature) / temperature), 0.0).astype(np.float32)
    elif pooling == "above-first" and relevance is not None:  # temperature 0: the most relevant piece alone
        w = (np.arange(len(relevance)) == int(np.argmax(relevance))).astype(np.float32)
    elif pooling in ("tokens", "above-first"):
        w = np.array([max(1, x.tokens) for x in windows_], dtype=np.float32)
    elif pooling == "relevance" and relevance is not None:
        r = np.asarray(relevance, dtype=np.float64)
        if temperature == 0:
            w = (np.arange(len(r)) == int(np.argmax(r))).astype(np.float32)
        else:
            w = np.exp((r - r.max()) / temperature).astype(np.float32)
    elif pooling in POOLINGS:
        w = np.ones(len(emb), dtype=np.float32)
    else:
        raise ValueError(f"unknown window pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    v = (emb * w[:, None]).sum(axis=0) / w.sum()
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
