"""Requests written by a language model: ``melscribe rephrase`` as a script (same options, same ``--help``).

    python data_prep/rephrase.py rephrase --base-url http://127.0.0.1:8011/v1 --model smollm2 --limit 5 --out mc.csv
    python data_prep/rephrase.py generate --model gpt-4o-mini --per-track 3 --out requests.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.llm.commands import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="data_prep/rephrase.py"))
