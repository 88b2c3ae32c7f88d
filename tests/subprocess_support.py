"""Child Python processes for the fault-injection tests (``serve/test_index_faults.py``,
``train/test_train_faults.py``): a script run with ``python -c``, the test helpers importable there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def python(script: str, *args: object) -> subprocess.Popen:
    """``script`` in a child Python, the test helpers (``tests/``) importable there through ``PYTHONPATH``."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": path})
