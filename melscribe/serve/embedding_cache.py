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
from typing import Sequence

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


def embed(encoder, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, Path]:
    """``encoder``'s embeddings of ``texts``, chunks already in the cache read instead of encoded; returns them
    and the chunk folder (for :func:`clear`)."""
    folder = cache_dir(encoder, texts)
    parts, warned = [], False
    for start in range(0, len(texts), CHUNK):
        chunk = list(texts[start:start + CHUNK])
        path = folder / f"{start // CHUNK:06d}.npy"
        part = _read(path, len(chunk), encoder.dim)
        if part is None:
            part = encoder.encode(chunk, batch_size=batch_size, progress=True)
            problem = _write(path, part)
            if problem and not warned:
                warnings.warn(f"could not keep the embeddings of this build under {folder.parent} ({problem}): a "
                              "rebuild will encode them again", stacklevel=3)
                warned = True
        parts.append(part)
    return (np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)), folder


def clear(folder: Path) -> None:
    """Remove a build's chunks (its index is saved)."""
    shutil.rmtree(folder, ignore_errors=True)


def _read(path: Path, rows: int, dim: int) -> np.ndarray | None:
    try:
        part = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if part.shape != (rows, dim) or part.dtype != np.float32 or not np.isfinite(part).all():
        return None
    return part


def _write(path: Path, part: np.ndarray) -> str | None:
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
