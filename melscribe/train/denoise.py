"""GPL step 2b: denoise the mined negatives. MusicCaps clips share descriptors, so a mined "negative" that
shares most of its descriptors with a positive of the request is probably relevant (``"male voice"`` mined for
a request whose positive is ``"male voice, rubab"``); training a teacher to push it down teaches noise.

Three rules, each a function over plain data:

* :func:`denoise_negatives` (before the teacher exists): drop a mined negative whose descriptor set overlaps a
  positive's by Jaccard ≥ ``max_overlap``.
* :func:`denoise_margins` (once the teacher has labelled the triplets): drop a triplet whose negative the
  teacher scores above the positive by more than ``max_inversion`` (a negative margin).
* :func:`verbatim_false_negative` (stage ``mnrl``, ``mnrl.denoise``): another row's descriptor set whose every
  descriptor occurs verbatim in the request is what the pairs rule makes a positive of it
  (:func:`melscribe.pairs.sample_descriptor_set`), not an in-batch negative.

sentence-transformers' ``mine_hard_negatives`` offers score-based cut-offs (``relative_margin``, ``max_score``);
the first rule uses what it cannot see, the descriptor sets themselves.
"""

from __future__ import annotations

from typing import Iterable, Sequence


def descriptor_set(text: str) -> frozenset[str]:
    """The descriptors of a descriptor-set text (``"male voice, rubab"``), lower-cased and stripped."""
    return frozenset(d for d in (p.strip().lower() for p in text.split(",")) if d)


def overlap(a: str, b: str) -> float:
    """Jaccard overlap of the descriptor sets of two texts, in [0, 1] (0 when either is empty)."""
    sa, sb = descriptor_set(a), descriptor_set(b)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def probably_relevant(positives: Iterable[str], negative: str, max_overlap: float) -> bool:
    """Whether ``negative`` overlaps one of ``positives`` by at least ``max_overlap`` (Jaccard)."""
    return any(overlap(p, negative) >= max_overlap for p in positives)


def denoise_negatives(negatives: dict[str, list[str]], positives: dict[str, list[str]], corpus: dict[str, str],
                      max_overlap: float | None) -> tuple[dict[str, list[str]], int]:
    """``negatives`` (query id → mined document ids) without the documents that are
    :func:`probably_relevant` to one of the query's ``positives`` (query id → document ids); ``corpus`` maps
    document ids to texts. ``max_overlap`` None keeps everything. Returns the kept lists and how many were
    dropped."""
    if max_overlap is None:
        return {q: list(n) for q, n in negatives.items()}, 0
    kept, dropped = {}, 0
    for q, negs in negatives.items():
        pos_texts = [corpus[d] for d in positives.get(q, ()) if d in corpus]
        kept[q] = [n for n in negs if not probably_relevant(pos_texts, corpus[n], max_overlap)]
        dropped += len(negs) - len(kept[q])
    return kept, dropped


def verbatim_false_negative(request: str, descriptor_set_text: str) -> bool:
    """Whether every descriptor of ``descriptor_set_text`` occurs verbatim (case-insensitively) in ``request``,
    as :func:`melscribe.pairs.verbatim_descriptors` matches them: such a set ("male voice, guitar" for "a male
    voice sings over a guitar") answers the request as well as its own positive. False for an empty set."""
    descriptors = descriptor_set(descriptor_set_text)
    low = request.lower()
    return bool(descriptors) and all(d in low for d in descriptors)


def denoise_margins(margins: Sequence[float], max_inversion: float | None) -> list[int]:
    """Indices of the labelled triplets to keep: those whose margin ``CE(q, pos) − CE(q, neg)`` is at least
    ``-max_inversion`` (the teacher does not clearly prefer the "negative"). None keeps all."""
    if max_inversion is None:
        return list(range(len(margins)))
    return [i for i, m in enumerate(margins) if m >= -max_inversion]
