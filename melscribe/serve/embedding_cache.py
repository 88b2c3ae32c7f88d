"""The embeddings of an index build, kept in chunks until the index is saved: a build that cannot save its
index (a full disk), or that is killed, leaves the chunks it finished, and the next build reuses them instead
of encoding again.

Chunks live under ``<MELSCRIBE_HOME>/embedding-cache/<key>/``, where the key hashes the encoder's name, its
probe embedding (the weights) and the texts; each chunk (:data:`CHUNK` texts) is written atomically and read
back only when its shape and values are sound. A chunk that cannot be written (no space, read-only) is
skipped with one warning: the build goes on in memory. :func:`clear` removes the chunks once the index is saved.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from melscribe.config import home_dir
from melscribe.fileio import os_error_reason, temp_sibling

#: Texts per chunk: a killed or unsaved build loses at most this many texts' encoding.
CHUNK = 8192


def cache_dir(encoder, texts: Sequence[str]) -> Path:
    """The chunk folder of ``texts`` embedded by ``encoder``."""
    h = hashlib.sha256(f"{encoder.name}\0".encode())
    h.update(np.asarray(encoder.probe, dtype=np.float32).tobytes())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass") + b"\0")
    return home_dir() / "embedding-cache" / h.hexdigest()[:20]


def chunk_count(n: int) -> int:
    """Number of chunks of ``n`` texts."""
    return -(-n // CHUNK)


def chunk_path(folder: Path, i: int) -> Path:
    """The file of chunk ``i`` (texts ``i × CHUNK`` to ``(i + 1) × CHUNK``) in a chunk folder."""
    return folder / f"{i:06d}.npy"


def chunk_texts(texts: Sequence[str], i: int) -> list[str]:
    """The texts of chunk ``i``."""
    return list(texts[i * CHUNK:(i + 1) * CHUNK])


def missing_chunks(encoder, texts: Sequence[str]) -> list[int]:
    """The chunks of ``texts`` not yet in the cache (or unsound there), in order."""
    folder = cache_dir(encoder, texts)
    return [i for i in range(chunk_count(len(texts)))
            if read_chunk(chunk_path(folder, i), len(chunk_texts(texts, i)), encoder.dim) is None]


def chunks(encoder, texts: Sequence[str], batch_size: int = 64) -> Iterator[np.ndarray]:
    """``encoder``'s embeddings of ``texts``, chunk by chunk (:data:`CHUNK` rows each, the last fewer): each
    read from the cache, or encoded and written there first. Holds one chunk at a time."""
    folder = cache_dir(encoder, texts)
    warned = False
    for i in range(chunk_count(len(texts))):
        chunk = chunk_texts(texts, i)
        path = chunk_path(folder, i)
        part = read_chunk(path, len(chunk), encoder.dim)
        if part is None:
            part = encoder.encode(chunk, batch_size=batch_size, progress=True)
            problem = write_chunk(path, part)
            if problem and not warned:
                warnings.warn(f"could not keep the embeddings of this build under {folder.parent} ({problem}): a "
                              "rebuild will encode them again", stacklevel=3)
                warned = True
        yield part


def embed(encoder, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, Path]:
    """``encoder``'s embeddings of ``texts``, chunks already in the cache read instead of encoded; returns them
    and the chunk folder (for :func:`clear`)."""
    parts = list(chunks(encoder, texts, batch_size))
    return ((np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)),
            cache_dir(encoder, texts))


def clear(folder: Path) -> None:
    """Remove a build's chunks (its index is saved)."""
    shutil.rmtree(folder, ignore_errors=True)


def read_chunk(path: Path, rows: int, dim: int) -> np.ndarray | None:
    """The chunk at ``path`` if it is sound (``rows`` × ``dim`` finite float32), else ``None``."""
    try:
        part = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if part.shape != (rows, dim) or part.dtype != np.float32 or not np.isfinite(part).all():
        return None
    return part


def write_chunk(path: Path, part: np.ndarray) -> str | None:
    """Write a chunk atomically; the reason it could not be written, or ``None``."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_sibling(path)
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(part, dtype=np.float32))
        os.replace(tmp, path)
        return None
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return os_error_reason(e)
