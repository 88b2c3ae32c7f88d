"""``argparse`` types that check a number and name the allowed range when it is not in it."""

from __future__ import annotations

import argparse
import math
from typing import Callable


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An ``int`` type accepting ``low`` to ``high`` (no upper bound for ``None``)."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if n < low or (high is not None and n > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: {_range(low, high)}")
        return n

    parse.__name__ = "integer"  # what argparse names in its "invalid integer value" message
    return parse


def float_in(low: float, high: float | None = None) -> Callable[[str], float]:
    """A finite ``float`` type accepting ``low`` to ``high`` (no upper bound for ``None``); ``nan`` and
    ``inf`` are refused."""
    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not math.isfinite(x) or x < low or (high is not None and x > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: {_range(low, high)}")
        return x

    parse.__name__ = "number"
    return parse


def _range(low: float, high: float | None) -> str:
    return f"at least {low:g}" if high is None else f"{low:g} to {high:g}"
