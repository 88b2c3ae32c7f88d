"""Evaluate scorers (baselines or trained models) on the test splits; same as `melscribe evaluate`.

    python eval/evaluate.py --scorer tfidf --scorer bm25 --scorer MODEL_FOLDER --splits MC MC_reco --out OUT

Writes OUT.md and OUT.json (mean ± std over seeds 0, 1, 2). See `--help` for scorer specs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
