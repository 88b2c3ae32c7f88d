"""musicnn's four taggers by name (no torch imported: the command line lists them in its help)."""

from __future__ import annotations

#: Tagger name -> (musicnn model folder, architecture, label list in ``configuration.py``).
MODELS = {
    "musicnn-mtt": ("MTT_musicnn", "musicnn", "MTT_LABELS"),
    "musicnn-msd": ("MSD_musicnn", "musicnn", "MSD_LABELS"),
    "musicnn-mtt-vgg": ("MTT_vgg", "vgg", "MTT_LABELS"),
    "musicnn-msd-vgg": ("MSD_vgg", "vgg", "MSD_LABELS"),
}
#: The tagger names :meth:`MusicnnTagger.load` accepts.
TAGGERS = tuple(MODELS)
