"""Atomic file and folder writes: a crash never leaves a half-written artifact in place."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling file and a rename."""
    path = Path(path)
    tmp = temp_sibling(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def replace_dir(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Move folder ``src`` to ``dst``, replacing ``dst`` if it exists (renames only, same file system)."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
    return dst


def temp_sibling(path: str | os.PathLike) -> Path:
    """A fresh temporary path beside ``path`` (same file system, so a rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
