"""Whether a request resembles anything in the catalog: the low-confidence threshold of a store, anchored on
the best scores of requests no catalog matches and of plain music requests."""

from __future__ import annotations

import numpy as np

from melscribe.serve.store import DescriptorStore

#: Requests no catalog matches (keyboard mashing, an emoji, filler) and plain music requests: their best
#: scores on an index anchor its low-confidence threshold (:func:`low_confidence_threshold`). Disjoint from
#: the requests of the calibration (``experiments/confidence_requests.py``).
NULL_PROBES = ("qwzx vbnm", "lorem ipsum dolor", "zzzz zzzz", "jkl poiuy trewq", "🙈", "xyzzy plugh",
               "aaa bbb ccc", "hjkl")
MUSIC_PROBES = ("rock music with electric guitar", "a calm piano piece", "upbeat dance music with drums",
                "a sad song with a female singer", "jazz with saxophone", "orchestral music with strings",
                "acoustic guitar and male vocals", "electronic music with synthesizers")
#: Where the low-confidence threshold lies between the mean best score of :data:`NULL_PROBES` (0) and of
#: :data:`MUSIC_PROBES` (1). Calibrated with the packaged MiniLM on MusicCaps by
#: ``experiments/calibrate_confidence.py`` (figures in ``experiments/results/confidence.md``).
LOW_CONFIDENCE_POSITION = 0.4


def low_confidence_threshold(index: DescriptorStore, null_probes: np.ndarray, music_probes: np.ndarray,
                             position: float = LOW_CONFIDENCE_POSITION) -> float:
    """The best score under which a request is low-confidence on ``index``: ``position`` of the way from the
    mean best score of the embedded :data:`NULL_PROBES` (``null_probes``) to that of the embedded
    :data:`MUSIC_PROBES` (``music_probes``). Anchored on the index's own scores, the threshold follows the
    score scale of the model and the catalog, where a fixed cosine would not."""
    null = float(index.search(null_probes, 1)[0][:, 0].mean())
    music = float(index.search(music_probes, 1)[0][:, 0].mean())
    return null + position * (music - null)
