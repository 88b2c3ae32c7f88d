"""Joint audio–text models: the interface, and what is done with one.

* :class:`AudioTextModel` is the interface: text and audio embedded into one space, L2-normalised. Two
  implementations: :class:`~melscribe.audio.clap.ClapAudioTextModel` (CLAP, from a hub or a local folder)
  and :class:`~melscribe.audio.tagger_space.TaggerTextModel` (a music tagger's tags placed in the
  bi-encoder's space: works offline).
* :func:`tag_audio` names the closest descriptors of a vocabulary for each track; :func:`rerank_by_audio`
  scores tracks against a set of descriptors.

Other joint models that could sit behind the same interface: LAION-CLAP's own package
(``laion-clap``, ``CLAP_Module.get_text_embedding`` / ``get_audio_embedding_from_data``), Microsoft's
``msclap``, and the music-specific TTMR++ (Doh et al., 2024); none is wrapped here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from melscribe.audio.files import AudioEmbeddings, embed_audio_files
from melscribe.errors import InvalidRequestError


class AudioTextModel(Protocol):
    """A joint audio–text model: texts and audio clips embedded into one space."""

    name: str
    sample_rate: int

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Embed texts: ``(n, d)`` float32, each row L2-normalised."""
        ...

    def embed_audio(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """Embed mono float32 waveforms sampled at :attr:`sample_rate`: ``(n, d)`` float32, L2-normalised."""
        ...


@dataclass(frozen=True)
class DescribedAudio:
    """Audio files embedded and described by an audio model (:func:`describe_audio`): for each decodable
    file (``paths``, input order) its embedding in the joint space and its ``(descriptor, score)`` list, best
    first; ``failures`` lists the files that could not be decoded, with the reason."""

    paths: list
    embeddings: np.ndarray
    descriptors: list[list[tuple[str, float]]]
    failures: list


def describe_audio(model: Any, paths: Sequence[str | os.PathLike], vocabulary: list[str], *, top_k: int = 5,
                   cache_dir: str | os.PathLike | None = None) -> DescribedAudio:
    """Embed and describe audio files: by the model's own tags when it has ``describe_files``
    (:class:`~melscribe.audio.tagger_space.TaggerTextModel`), else zero-shot with the ``top_k`` closest
    descriptors of ``vocabulary`` (:func:`tag_audio`)."""
    if hasattr(model, "describe_files"):
        return model.describe_files(paths, cache_dir=cache_dir)
    embedded = embed_audio_files(model, paths, cache_dir=cache_dir)
    tags = tag_audio(model, embedded.embeddings, vocabulary, top_k=top_k) if len(embedded.paths) else []
    return DescribedAudio(embedded.paths, embedded.embeddings, tags, embedded.failures)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, np.finfo(np.float32).tiny)


def _as_matrix(embeddings: np.ndarray | AudioEmbeddings) -> np.ndarray:
    """The ``(n, d)`` float32 matrix of audio embeddings given as an array or :class:`AudioEmbeddings`."""
    matrix = embeddings.embeddings if isinstance(embeddings, AudioEmbeddings) else embeddings
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2:
        raise InvalidRequestError(f"audio embeddings must be a 2-D array, not of shape {matrix.shape}")
    return matrix


def _check_dims(audio: np.ndarray, text: np.ndarray) -> None:
    """Raise InvalidRequestError when audio and text embeddings do not share a space."""
    if audio.shape[0] and audio.shape[1] != text.shape[1]:
        raise InvalidRequestError(
            f"audio embeddings have {audio.shape[1]} dimensions, the model's text embeddings {text.shape[1]}"
        )


def tag_audio(
    model: AudioTextModel,
    embeddings: np.ndarray | AudioEmbeddings,
    vocabulary: list[str],
    top_k: int = 5,
) -> list[list[tuple[str, float]]]:
    """Zero-shot tagging: for each audio embedding, the ``top_k`` closest descriptors of ``vocabulary``.

    Each list holds ``(descriptor, cosine similarity)`` pairs, best first (ties keep vocabulary order).
    Duplicate descriptors are considered once.
    """
    if top_k < 1:
        raise InvalidRequestError(f"top_k must be at least 1, not {top_k}")
    terms = list(dict.fromkeys(vocabulary))
    if not terms:
        raise InvalidRequestError("tag_audio needs a non-empty vocabulary")
    audio = _as_matrix(embeddings)
    text = model.embed_text(terms)
    _check_dims(audio, text)
    scores = audio @ text.T if audio.shape[0] else np.zeros((0, len(terms)), dtype=np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    return [[(terms[j], float(row[j])) for j in idx] for row, idx in zip(scores, order)]


def rerank_by_audio(
    model: AudioTextModel, descriptor_texts: list[str], embeddings: np.ndarray | AudioEmbeddings
) -> np.ndarray:
    """Cosine similarity ``(n_audio,)`` of each audio embedding to the normalised mean of the embedded descriptors."""
    if not descriptor_texts:
        raise InvalidRequestError("rerank_by_audio needs at least one descriptor text")
    audio = _as_matrix(embeddings)
    text = model.embed_text(list(descriptor_texts))
    _check_dims(audio, text)
    query = l2_normalise(text.mean(axis=0))
    return (audio @ query).astype(np.float32) if audio.shape[0] else np.zeros(0, dtype=np.float32)
