"""Checkpoint discovery and atomic publication of trained models."""

from __future__ import annotations

import json
import os
from pathlib import Path

from melscribe.encoding.models import MODEL_MARKER, record_weights
from melscribe.fileio import replace_dir, temp_sibling


def last_checkpoint(folder: str | os.PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` folder under ``folder``, or ``None``. The trainer writes a
    checkpoint's ``trainer_state.json`` last: a checkpoint is complete when that file reads as JSON (a run
    killed while writing it leaves it cut short)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    steps = sorted((int(p.name.split("-")[-1]), p) for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit())
    for _, p in reversed(steps):
        try:
            json.loads((p / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return str(p)
    return None


def publish_model(model, target: str | os.PathLike) -> Path:
    """Save a sentence-transformers model (bi- or cross-encoder) to ``target`` atomically: written to a
    temporary sibling folder, then renamed over ``target``."""
    tmp = temp_sibling(target)
    model.save(str(tmp))
    record_weights(tmp)
    return replace_dir(tmp, target, marker=MODEL_MARKER, what="model")
