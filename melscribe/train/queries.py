"""GPL step 1, query generation: synthetic requests written from the descriptor lists of training tracks.

GPL generates queries for each document with a T5 model; the paper's requests come from LP-MusicCaps,
captions an LLM wrote from tag lists. Offline, with no LLM, :func:`template_requests` writes such
requests from MusicCaps **train** aspect lists with a few dozen templates (captions like "This track
features A, B and C", and requests like "I'm looking for A music with B"). Where LLM-written captions exist (LP-MusicCaps MTT/MSD,
``--preset paper``), they are the requests and no templates are used.
"""

from __future__ import annotations

import random
from typing import Iterable, Sequence

from melscribe.data import Record

CAPTION_TEMPLATES = (
    "This {a} track features {list}.",
    "This song features {list}.",
    "A {a} recording with {list}.",
    "The music combines {list}, creating a {z} atmosphere.",
    "This piece showcases {list}, resulting in a {z} sound.",
    "An {a} piece with {list} that sounds {z}.",
    "Featuring {list}, this track has a {z} vibe.",
    "The song is {a}, with {list}.",
    "A {a} song that blends {list} into a {z} experience.",
    "This recording has {list} and feels {z}.",
)
REQUEST_TEMPLATES = (
    "I'm looking for {a} music with {list}.",
    "Recommend me songs with {list}.",
    "Can you find me something {a} with {list}?",
    "I'd love more {a} music featuring {list}.",
    "Play me a {a} track that has {list}.",
    "I want to listen to music with {list}, something {z}.",
    "Looking for songs that combine {list} with a {z} feel.",
    "Any recommendations for {a} tunes with {list}?",
    "Give me tracks featuring {list}.",
    "I need {z} music with {list}.",
)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def template_request(rng: random.Random, descriptors: Sequence[str]) -> str:
    """One request mentioning a random subset (1 to 6) of ``descriptors`` verbatim."""
    k = rng.randint(1, min(6, len(descriptors)))
    chosen = rng.sample(list(descriptors), k)
    template = rng.choice(CAPTION_TEMPLATES + REQUEST_TEMPLATES)
    slots = {"a": None, "z": None}
    for slot in ("a", "z"):
        if "{" + slot + "}" in template and len(chosen) > 1:
            slots[slot] = chosen.pop()
    text = template
    for slot, value in slots.items():
        # an unfilled slot drops its words: "This {a} track" → "This track"
        text = text.replace(" {" + slot + "}", f" {value}" if value else "")
        text = text.replace("{" + slot + "}", value or "good")
    text = text.replace("{list}", _join(chosen))
    return text[0].upper() + text[1:]


def template_requests(records: Iterable[Record], per_track: int = 3, seed: int = 0) -> list[Record]:
    """``per_track`` synthetic requests for each record with descriptors, as records of source
    ``<source>-synthetic`` (same track id and descriptors, so pairs are built from them as from captions)."""
    rng = random.Random(seed)
    out = []
    for rec in records:
        if not rec.descriptors:
            continue
        for _ in range(per_track):
            out.append(Record(rec.track_id, template_request(rng, rec.descriptors), rec.descriptors, rec.split,
                              f"{rec.source}-synthetic"))
    return out
