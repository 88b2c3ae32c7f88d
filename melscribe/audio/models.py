"""Which audio model a name means (``--audio-model``, ``Recommender`` users): the offline musicnn taggers
placed in the bi-encoder's space, or CLAP."""

from __future__ import annotations

from typing import Any

from melscribe.audio.joint import AudioTextModel
from melscribe.errors import InvalidRequestError


def load_audio_model(spec: str | None, encoder: Any) -> AudioTextModel:
    """The audio model named by ``spec`` (``--audio-model``): a musicnn tagger in ``encoder``'s space
    (``musicnn-mtt``, the default for ``None``; ``musicnn-msd``, ``musicnn-mtt-vgg``, ``musicnn-msd-vgg``), or
    CLAP: ``clap`` (:data:`melscribe.config.DEFAULT_CLAP`) or ``clap:NAME_OR_FOLDER``."""
    from melscribe.audio.musicnn import TAGGERS
    from melscribe.audio.tagger_space import DEFAULT_TAGGER, TaggerTextModel

    spec = spec or DEFAULT_TAGGER
    if spec in TAGGERS:
        return TaggerTextModel.load(encoder, spec)
    kind, _, source = spec.partition(":")
    if kind == "clap":
        from melscribe.audio.clap import ClapAudioTextModel
        from melscribe.config import DEFAULT_CLAP

        return ClapAudioTextModel.from_pretrained(source or DEFAULT_CLAP)
    raise InvalidRequestError(f"unknown audio model {spec!r}: choose one of {', '.join(TAGGERS)}, clap or "
                              "clap:NAME_OR_FOLDER")
