"""Tracks known only by their audio, reached through a joint audio–text model (CLAP-style).

* :class:`AudioTextModel` is the interface: text and audio embedded into one space, L2-normalised.
* :class:`ClapAudioTextModel` implements it over transformers' ``ClapModel`` + ``ClapProcessor``
  (default checkpoint :data:`melscribe.config.DEFAULT_CLAP`, any hub name or local folder works).
* :func:`embed_audio_files` decodes, embeds and caches a list of audio files; :func:`tag_audio` names the
  closest descriptors of a vocabulary for each track; :func:`rerank_by_audio` scores tracks against a
  set of descriptors.

Other joint models that could sit behind the same interface: LAION-CLAP's own package
(``laion-clap``, ``CLAP_Module.get_text_embedding`` / ``get_audio_embedding_from_data``), Microsoft's
``msclap``, and the music-specific TTMR++ (Doh et al., 2024); none is wrapped here.

The audio helpers need the ``soundfile`` and ``scipy`` packages, the CLAP adapter ``torch`` and
``transformers``; all are imported only when used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..config import DEFAULT_CLAP, home_dir
from ..errors import DataError, IndexCorruptError, InvalidRequestError

if TYPE_CHECKING:
    import torch
    from transformers import ClapModel, ClapProcessor

logger = logging.getLogger(__name__)

#: Bumped whenever decoding or preprocessing changes, so that old cache entries are not reused.
CACHE_VERSION = "1"

_HASH_CHUNK = 1 << 20
#: libsndfile's log line for a WAV whose data chunk is shorter than its header says.
_DATA_SIZE_MISMATCH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
#: Data sizes that streaming writers put in a header when the length is not known in advance.
_UNKNOWN_DATA_SIZE = 0x7FFFFFFF


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


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, np.finfo(np.float32).tiny)


def _pooled(output: Any) -> torch.Tensor:
    """The embedding tensor from ``get_*_features``: a tensor (transformers 4) or an output's ``pooler_output`` (5)."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClapAudioTextModel:
    """:class:`AudioTextModel` over a transformers ``ClapModel`` and its ``ClapProcessor``."""

    def __init__(self, model: ClapModel, processor: ClapProcessor, name: str, batch_size: int = 8) -> None:
        """Wrap a loaded model (put in eval mode) and processor; ``name`` identifies it in caches."""
        if batch_size < 1:
            raise InvalidRequestError(f"batch_size must be at least 1, not {batch_size}")
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.batch_size = batch_size
        self.sample_rate: int = int(processor.feature_extractor.sampling_rate)
        text_config = model.config.text_config
        # Position ids are RoBERTa-style: they start after the padding index.
        position_limit = text_config.max_position_embeddings - (text_config.pad_token_id or 0) - 1
        self._max_text_tokens = min(int(processor.tokenizer.model_max_length), position_limit)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike = DEFAULT_CLAP, *, batch_size: int = 8, device: str | None = None
    ) -> ClapAudioTextModel:
        """Load a CLAP checkpoint: a hub name (needs the hub or its local cache) or a folder from ``save_pretrained``.

        ``device`` defaults to CUDA when available, else CPU. A checkpoint that cannot be loaded raises
        :class:`~melscribe.errors.DataError`.
        """
        import torch
        from transformers import ClapModel, ClapProcessor

        path = Path(name_or_path).expanduser()
        source = str(path.resolve()) if path.is_dir() else str(name_or_path)
        try:
            model = ClapModel.from_pretrained(source)
            processor = ClapProcessor.from_pretrained(source)
        except OSError as e:
            raise DataError(
                f"cannot load the CLAP checkpoint {source!r}: {e}. Without hub access, pass a local folder "
                "written by save_pretrained"
            ) from e
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model, processor, name=source, batch_size=batch_size)

    @property
    def dim(self) -> int:
        """Size of the joint embedding space."""
        return int(self.model.config.projection_dim)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Embed texts in batches: ``(n, d)`` float32, L2-normalised."""
        import torch

        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequestError("embed_text takes a list of strings")
        device = self.model.device
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.processor.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self._max_text_tokens,
                    return_tensors="pt",
                )
                features = self.model.get_text_features(
                    input_ids=tokens["input_ids"].to(device), attention_mask=tokens["attention_mask"].to(device)
                )
                out.append(_pooled(features).float().cpu().numpy())
        return _l2_normalise(np.concatenate(out))

    def embed_audio(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """Embed mono float32 waveforms at :attr:`sample_rate` in batches: ``(n, d)`` float32, L2-normalised."""
        import torch

        clips = []
        for i, w in enumerate(waveforms):
            w = np.asarray(w, dtype=np.float32)
            if w.ndim != 1 or w.size == 0 or not np.isfinite(w).all():
                raise InvalidRequestError(f"waveform {i} is not a non-empty, finite, mono (1-D) array")
            clips.append(w)
        device = self.model.device
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(clips), self.batch_size):
                mels, is_longer = self._audio_features(clips[start : start + self.batch_size])
                features = self.model.get_audio_features(
                    input_features=torch.from_numpy(mels).to(device), is_longer=torch.from_numpy(is_longer).to(device)
                )
                out.append(_pooled(features).float().cpu().numpy())
        return _l2_normalise(np.concatenate(out))

    def _audio_features(self, clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mel features ``(n, channels, frames, mels)`` and ``is_longer`` ``(n, 1)``, each clip independent of the rest.

        ``ClapFeatureExtractor`` draws from NumPy's global generator (random crop of a long clip, and in
        fusion mode a random clip of the batch flagged as long when none is). Each clip is featurised on
        its own with the generator seeded (its state restored afterwards), and ``is_longer`` is recomputed
        from the clip's length, so that a clip's embedding depends neither on chance nor on its batch.
        """
        extractor = self.processor.feature_extractor
        hop = extractor.hop_length
        mels, is_longer = [], []
        state = np.random.get_state()
        try:
            for clip in clips:
                np.random.seed(0)
                features = extractor(clip, sampling_rate=self.sample_rate, return_tensors="np")
                mels.append(np.asarray(features["input_features"][0], dtype=np.float32))
                is_longer.append([len(clip) // hop > extractor.nb_max_samples // hop])
        finally:
            np.random.set_state(state)
        return np.stack(mels), np.asarray(is_longer, dtype=bool)


@dataclass
class AudioEmbeddings:
    """Embeddings of the audio files that could be decoded, and the reasons the others could not.

    ``embeddings[i]`` belongs to ``paths[i]``; paths keep their input order. With no decodable file,
    ``embeddings`` has shape ``(0, 0)``.
    """

    paths: list[Path]
    embeddings: np.ndarray
    failures: list[tuple[Path, str]] = field(default_factory=list)


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode an audio file to a mono float32 waveform at ``sample_rate`` (channels averaged, polyphase resampling).

    Raises :class:`~melscribe.errors.DataError` naming the file when it cannot be read or decoded, is
    empty, holds non-finite samples, or is a WAV file shorter than its header declares (truncated).
    """
    import soundfile as sf
    from scipy.signal import resample_poly

    if sample_rate < 1:
        raise InvalidRequestError(f"sample_rate must be positive, not {sample_rate}")
    path = Path(path)
    try:
        with sf.SoundFile(path) as f:
            _check_not_truncated(path, f)
            data = f.read(dtype="float32", always_2d=True)
            source_rate = f.samplerate
    except (sf.SoundFileError, OSError) as e:
        raise DataError(f"cannot decode audio file {path}: {e}") from e
    if data.shape[0] == 0:
        raise DataError(f"audio file {path} holds no samples")
    if not np.isfinite(data).all():
        raise DataError(f"audio file {path} holds non-finite samples")
    mono = data.mean(axis=1)
    if source_rate != sample_rate:
        g = np.gcd(source_rate, sample_rate)
        mono = resample_poly(mono, sample_rate // g, source_rate // g)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _check_not_truncated(path: Path, f: Any) -> None:
    """Raise DataError when libsndfile reports a WAV data chunk shorter than its header declares."""
    if f.format not in ("WAV", "WAVEX", "RF64", "W64"):
        return
    mismatch = _DATA_SIZE_MISMATCH.search(f.extra_info)
    if mismatch:
        declared, present = int(mismatch.group(1)), int(mismatch.group(2))
        if present < declared < _UNKNOWN_DATA_SIZE:
            raise DataError(f"audio file {path} is truncated: {present} of {declared} bytes of audio data present")


def _file_hash(path: Path) -> str:
    """SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_folder(cache_dir: Path, model_name: str) -> Path:
    """The cache sub-folder for one model (and cache version)."""
    key = hashlib.sha256(f"{CACHE_VERSION}\0{model_name}".encode()).hexdigest()[:16]
    return cache_dir / key


def _read_cached(path: Path) -> np.ndarray | None:
    """A cached embedding, or None when absent or unusable."""
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if vector.ndim != 1 or vector.dtype != np.float32 or vector.size == 0 or not np.isfinite(vector).all():
        return None
    return vector


def _write_cached(path: Path, vector: np.ndarray) -> None:
    """Write an embedding atomically (temporary file + rename); a failure only logs a warning."""
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            tmp_name = tmp.name
            np.save(tmp, vector)
        os.replace(tmp_name, path)
    except OSError as e:
        logger.warning("could not write the audio embedding cache %s: %s", path, e)
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


def embed_audio_files(
    model: AudioTextModel,
    paths: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
) -> AudioEmbeddings:
    """Embed audio files with ``model``, skipping (and reporting) those that cannot be read or decoded.

    Embeddings are cached as ``.npy`` files under ``cache_dir`` (default ``home_dir()/audio-cache``), keyed
    by the file's content hash and ``model.name``, so a second call on the same files computes nothing.
    Files with identical content are decoded and embedded once. At most ``batch_size`` decoded files are
    held in memory at a time.
    """
    if batch_size < 1:
        raise InvalidRequestError(f"batch_size must be at least 1, not {batch_size}")
    folder = _cache_folder(Path(cache_dir) if cache_dir is not None else home_dir() / "audio-cache", model.name)
    files = [Path(p) for p in paths]
    by_index: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    pending: dict[str, list[int]] = {}  # content hash -> indices of files with that content, not cached
    for i, path in enumerate(files):
        try:
            digest = _file_hash(path)
        except OSError as e:
            failures[i] = f"cannot read audio file {path}: {e.strerror or e}"
            continue
        cached = None if digest in pending else _read_cached(folder / f"{digest}.npy")
        if cached is not None:
            by_index[i] = cached
        else:
            pending.setdefault(digest, []).append(i)

    todo = list(pending.items())
    with tqdm(total=len(todo), desc="embedding audio", unit="file", disable=not todo) as bar:
        for start in range(0, len(todo), batch_size):
            batch_keys, waveforms = [], []
            for digest, indices in todo[start : start + batch_size]:
                try:
                    waveforms.append(load_audio(files[indices[0]], model.sample_rate))
                    batch_keys.append((digest, indices))
                except DataError as e:
                    failures.update((i, str(e)) for i in indices)
            if waveforms:
                for (digest, indices), vector in zip(batch_keys, model.embed_audio(waveforms), strict=True):
                    vector = np.ascontiguousarray(vector, dtype=np.float32)
                    _write_cached(folder / f"{digest}.npy", vector)
                    by_index.update((i, vector) for i in indices)
            bar.update(len(todo[start : start + batch_size]))

    kept = sorted(by_index)
    dims = {by_index[i].shape[0] for i in kept}
    if len(dims) > 1:
        raise IndexCorruptError(
            f"the audio cache {folder} mixes embedding sizes {sorted(dims)}: clear it, or give each model its own name"
        )
    embeddings = np.stack([by_index[i] for i in kept]) if kept else np.zeros((0, 0), dtype=np.float32)
    return AudioEmbeddings(
        paths=[files[i] for i in kept],
        embeddings=embeddings,
        failures=[(files[i], failures[i]) for i in sorted(failures)],
    )


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
    query = _l2_normalise(text.mean(axis=0))
    return (audio @ query).astype(np.float32) if audio.shape[0] else np.zeros(0, dtype=np.float32)
