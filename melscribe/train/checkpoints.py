"""Checkpoint discovery and atomic publication of trained models."""

from __future__ import annotations

import os
from pathlib import Path

from ..fileio import replace_dir, temp_sibling


def last_checkpoint(folder: str | os.PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` folder under ``folder`` (one with a trainer state), or ``None``."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
            and (p / "trainer_state.json").is_file()]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


def publish_model(model, target: str | os.PathLike) -> Path:
    """Save a sentence-transformers model (bi- or cross-encoder) to ``target`` atomically: written to a
    temporary sibling folder, then renamed over ``target``."""
    tmp = temp_sibling(target)
    model.save(str(tmp))
    return replace_dir(tmp, target)
