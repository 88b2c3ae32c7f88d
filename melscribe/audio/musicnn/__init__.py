"""musicnn's pretrained music taggers (MagnaTagATune and Million Song Dataset, musicnn and VGG) in PyTorch.

``MusicnnTagger.load("musicnn-mtt").tag_probabilities([waveform])`` gives 50 tag probabilities per
16 kHz mono clip, with no TensorFlow: the weights are read from the ``musicnn`` package's
checkpoints (``pip install --no-deps musicnn==0.1.0``) and converted once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from melscribe.audio.musicnn.names import TAGGERS

if TYPE_CHECKING:
    from melscribe.audio.musicnn.tagger import MusicnnTagger

__all__ = ["TAGGERS", "MusicnnTagger"]


def __getattr__(name: str):
    # Lazy: naming the taggers (the command line's help) does not import torch.
    if name == "MusicnnTagger":
        from melscribe.audio.musicnn.tagger import MusicnnTagger

        return MusicnnTagger
    raise AttributeError(f"module 'melscribe.audio.musicnn' has no attribute {name!r}")
