"""Child Python processes for the fault-injection tests (``serve/test_index_faults.py``,
``train/test_train_faults.py``): a script run with ``python -c``, the test helpers importable there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from melscribe.fileio import PAUSE_AT_ENV, PAUSE_FILE_ENV

TESTS = Path(__file__).parent


def python(script: str, *args: object, pause_at: str | None = None, pause_file: Path | None = None) -> subprocess.Popen:
    """``script`` in a child Python, the test helpers (``tests/``) importable there through ``PYTHONPATH``; with
    ``pause_at``, the child stops at that :func:`melscribe.fileio.pause_point`, after writing ``pause_file``."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    if pause_at:
        env.update({PAUSE_AT_ENV: pause_at, PAUSE_FILE_ENV: str(pause_file)})
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_pause(proc: subprocess.Popen, pause_file: Path, timeout: float = 180) -> None:
    """Wait until the child reached its pause point (it wrote ``pause_file``), failing if it exits first."""
    deadline = time.monotonic() + timeout
    while not pause_file.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"the child did not reach its pause point in {timeout:g} s"
        time.sleep(0.02)
