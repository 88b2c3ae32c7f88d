"""How one training optimises, whatever its stage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """How one training optimises: batch size, epochs (or ``max_steps`` when not -1) and learning rate."""

    batch_size: int
    epochs: float
    max_steps: int
    lr: float
