"""A music tagger's tags placed in the bi-encoder's space: a joint audio–text model that runs offline.

:class:`TaggerTextModel` implements :class:`~melscribe.audio.joint.AudioTextModel` with two parts that need
no model hub:

* ``embed_text`` is the bi-encoder (:class:`~melscribe.encoding.encoder.TextEncoder`) that ranks descriptor
  sets, so a request, a descriptor set and an audio clip meet in one space;
* ``embed_audio`` runs a music tagger (musicnn, :class:`~melscribe.audio.musicnn.MusicnnTagger`) and maps
  its tag probabilities into that space: the probability-weighted mean of the bi-encoder's embeddings of
  the tags' descriptor texts (:data:`TAG_DESCRIPTORS` renames a tag where the vocabularies of taggers and
  captions differ: "female" → "female vocal", "no voice" → "no vocals", …), L2-normalised.

Each clip is also *described*: its tags with probability at least :attr:`TagDescriber.threshold`
(at most :attr:`TagDescriber.max_tags`, at least the best one) become its descriptor set, so intent,
filters, fusion and explanations work on an audio-only track as on an annotated one. The default
threshold and tagger were chosen on rendered music (``experiments/audio_tagging.py``, figures in
``experiments/results/audio_tagging.md``).

Tag probabilities are what is cached per audio file (by content hash, tagger name and cache version), so
a change of bi-encoder re-maps cached files without running the tagger again.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from melscribe.audio.files import AudioEmbeddings, embed_audio_files
from melscribe.audio.joint import DescribedAudio, l2_normalise
from melscribe.errors import InvalidRequestError

#: The tagger used when none is named (chosen on the rendered set: ``experiments/results/audio_tagging.md``).
DEFAULT_TAGGER = "musicnn-mtt"
#: Tags at least this probable describe a clip (chosen on the rendered set, as :data:`DEFAULT_TAGGER`).
DEFAULT_THRESHOLD = 0.15
#: The most tags that describe one clip.
DEFAULT_MAX_TAGS = 6

#: A tagger's tag -> the descriptor text it becomes (tags not listed keep their own text, lower-cased).
#: Merges the taggers' near-duplicates (MagnaTagATune's "female", "woman", "female voice", …) and uses the
#: phrasing of MusicCaps descriptors where the two differ.
TAG_DESCRIPTORS = {
    "female": "female vocal", "woman": "female vocal", "female voice": "female vocal",
    "female vocalists": "female vocal", "female vocalist": "female vocal",
    "male": "male vocal", "man": "male vocal", "male voice": "male vocal", "male vocalists": "male vocal",
    "vocal": "vocals", "voice": "vocals", "singing": "vocals",
    "no vocal": "no vocals", "no voice": "no vocals",
    "classic": "classical", "beats": "beat", "choral": "choir", "hip-hop": "hip hop", "rnb": "r&b",
}


class _ProbabilityModel:
    """The tagger seen as an audio model for :func:`~melscribe.audio.files.embed_audio_files`: what it caches
    per file is the tag probabilities."""

    def __init__(self, tagger: Any):
        self.name = f"{tagger.name}/probabilities"
        self.sample_rate = int(tagger.sample_rate)
        self.embed_audio = tagger.tag_probabilities


class TagDescriber:
    """From a tagger's tag probabilities to descriptors: tags renamed and merged (:func:`tag_descriptor`), and
    the descriptors that describe a clip: probability at least ``threshold``, at most ``max_tags``, best first."""

    def __init__(self, tags: Sequence[str], *, threshold: float = DEFAULT_THRESHOLD,
                 max_tags: int = DEFAULT_MAX_TAGS) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise InvalidRequestError(f"threshold must lie in [0, 1], not {threshold}")
        if max_tags < 1:
            raise InvalidRequestError(f"max_tags must be at least 1, not {max_tags}")
        self.threshold, self.max_tags = float(threshold), int(max_tags)
        #: The distinct descriptor texts of the tags.
        self.descriptor_texts = tuple(dict.fromkeys(tag_descriptor(t) for t in tags))
        position = {d: i for i, d in enumerate(self.descriptor_texts)}
        self._tag_to_descriptor = np.array([position[tag_descriptor(t)] for t in tags])

    def descriptor_probabilities(self, probabilities: np.ndarray) -> np.ndarray:
        """Tag probabilities ``(n, tags)`` → descriptor probabilities ``(n, descriptors)``: the largest of the
        tags that become one descriptor."""
        probabilities = np.asarray(probabilities, dtype=np.float32)
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self._tag_to_descriptor):
            raise InvalidRequestError(f"expected tag probabilities of shape (n, {len(self._tag_to_descriptor)}), "
                                      f"not {probabilities.shape}")
        out = np.zeros((probabilities.shape[0], len(self.descriptor_texts)), dtype=np.float32)
        np.maximum.at(out.T, self._tag_to_descriptor, probabilities.T)
        return out

    def describe(self, probabilities: np.ndarray) -> list[list[tuple[str, float]]]:
        """Each clip's descriptors with probability at least :attr:`threshold`, best first (at most
        :attr:`max_tags`; the best one always, so that no clip goes undescribed)."""
        described = []
        for row in self.descriptor_probabilities(probabilities):
            order = np.argsort(-row, kind="stable")[: self.max_tags]
            kept = [j for j in order if row[j] >= self.threshold] or [order[0]]
            described.append([(self.descriptor_texts[j], round(float(row[j]), 4)) for j in kept])
        return described


class TaggerTextModel:
    """:class:`~melscribe.audio.joint.AudioTextModel` from a music ``tagger`` and the bi-encoder ``encoder``
    (module doc); ``options`` (``threshold``, ``max_tags``) go to its :class:`TagDescriber`."""

    def __init__(self, tagger: Any, encoder: Any, **options: Any) -> None:
        self.tagger, self.encoder = tagger, encoder
        self.describer = TagDescriber(tagger.tags, **options)
        self.sample_rate = int(tagger.sample_rate)
        self.name = f"{tagger.name}+{encoder.name}"
        #: The bi-encoder's embeddings of :attr:`TagDescriber.descriptor_texts`, row by row.
        self.descriptor_embeddings = encoder.encode(list(self.describer.descriptor_texts))

    @classmethod
    def load(cls, encoder: Any, tagger: str = DEFAULT_TAGGER, **options: Any) -> TaggerTextModel:
        """The model over the musicnn tagger named ``tagger`` (:data:`~melscribe.audio.musicnn.TAGGERS`)."""
        from melscribe.audio.musicnn import MusicnnTagger

        return cls(MusicnnTagger.load(tagger), encoder, **options)

    def __repr__(self) -> str:
        return (f"TaggerTextModel({self.name!r}, threshold={self.describer.threshold}, "
                f"max_tags={self.describer.max_tags})")

    @property
    def dim(self) -> int:
        """Size of the joint space: the bi-encoder's."""
        return int(self.descriptor_embeddings.shape[1])

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """The bi-encoder's embeddings of ``texts``: ``(n, d)`` float32, L2-normalised."""
        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequestError("embed_text takes a list of strings")
        return self.encoder.encode(list(texts))

    def embed_audio(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """Tag the waveforms and map their probabilities into the joint space: ``(n, d)`` float32."""
        return self.embed_probabilities(self.tagger.tag_probabilities(waveforms))

    def embed_probabilities(self, probabilities: np.ndarray) -> np.ndarray:
        """The probability-weighted mean of the descriptor embeddings, L2-normalised: ``(n, d)`` float32."""
        return l2_normalise(self.describer.descriptor_probabilities(probabilities) @ self.descriptor_embeddings)

    def describe_files(self, paths: Sequence[str | os.PathLike], cache_dir: str | os.PathLike | None = None,
                       batch_size: int = 8) -> DescribedAudio:
        """Tag audio files (probabilities cached by content), then embed and describe each decodable one."""
        tagged = tag_files(self.tagger, paths, cache_dir=cache_dir, batch_size=batch_size)
        probabilities = tagged.embeddings if len(tagged.paths) else np.zeros((0, len(self.tagger.tags)), np.float32)
        return DescribedAudio(tagged.paths, self.embed_probabilities(probabilities),
                              self.describer.describe(probabilities), tagged.failures)


def tag_files(tagger: Any, paths: Sequence[str | os.PathLike], cache_dir: str | os.PathLike | None = None,
              batch_size: int = 8) -> AudioEmbeddings:
    """The tag probabilities of audio files (``embeddings``: ``(n, tags)``), cached by content hash and tagger
    name (:func:`~melscribe.audio.files.embed_audio_files`); undecodable files are listed in ``failures``."""
    return embed_audio_files(_ProbabilityModel(tagger), paths, cache_dir=cache_dir, batch_size=batch_size)


def tag_descriptor(tag: str) -> str:
    """The descriptor text a tagger's ``tag`` becomes (:data:`TAG_DESCRIPTORS`, else the tag lower-cased)."""
    return TAG_DESCRIPTORS.get(tag.lower(), tag.lower())
