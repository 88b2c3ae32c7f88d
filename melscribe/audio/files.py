"""Audio files: decoding (``soundfile``, i.e. libsndfile: WAV, FLAC, OGG and MP3; ``scipy`` resamples), and
embedding many files with an audio model, cached by file content.

:func:`load_audio` decodes one file; :func:`embed_audio_files` decodes, embeds and caches a list of files,
reporting those that cannot be decoded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from melscribe.config import home_dir
from melscribe.errors import DataError, IndexCorruptError, InvalidRequestError

logger = logging.getLogger(__name__)

#: The file suffixes read as audio (by libsndfile, through ``soundfile``).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
#: Bumped whenever decoding or preprocessing changes, so that old cache entries are not reused.
CACHE_VERSION = "1"

_HASH_CHUNK = 1 << 20
#: libsndfile's log line for a WAV whose data chunk is shorter than its header says.
_DATA_SIZE_MISMATCH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
#: Data sizes that streaming writers put in a header when the length is not known in advance.
_UNKNOWN_DATA_SIZE = 0x7FFFFFFF


@dataclass
class AudioEmbeddings:
    """Embeddings of the audio files that could be decoded, and the reasons the others could not.

    ``embeddings[i]`` belongs to ``paths[i]``; paths keep their input order. With no decodable file,
    ``embeddings`` has shape ``(0, 0)``.
    """

    paths: list[Path]
    embeddings: np.ndarray
    failures: list[tuple[Path, str]] = field(default_factory=list)


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """The audio files (:data:`AUDIO_SUFFIXES`, any case) under ``folder``, recursively, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


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
    model: Any,
    paths: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
) -> AudioEmbeddings:
    """Embed audio files with ``model`` (an audio model: ``name``, ``sample_rate``, ``embed_audio``), skipping (and reporting) those that cannot be read or decoded.

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
    with tqdm(total=len(todo), desc=f"audio files ({model.name})", unit="file", disable=not todo) as bar:
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


