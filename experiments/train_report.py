"""Time the offline training preset end to end and record it.

    python experiments/train_report.py --run RUN_DIR [--train]

With ``--train`` it first runs ``melscribe train --preset offline --out RUN_DIR`` (stages already done in
RUN_DIR are skipped, so time a fresh folder). It then writes experiments/results/train_offline.md and .json:
seconds per stage (from RUN_DIR/run.json), the total, the configuration, commit, date and machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.evaluation.protocol import provenance  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--train", action="store_true", help="run the offline preset into --run first")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    wall = None
    if args.train:
        cmd = [sys.executable, "-m", "melscribe.cli", "train", "--preset", "offline", "--out", str(args.run)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
    info = json.loads((args.run / "run.json").read_text())
    seconds = info["seconds"]
    total = sum(seconds.values())
    result = {"provenance": provenance(), "seconds": seconds, "stage_total_seconds": total,
              "wall_seconds": wall, "config": info["config"]}
    md = ["# The offline preset, end to end", "",
          "Command: `python experiments/train_report.py --run RUN --train` "
          "(= `melscribe train --preset offline --out RUN`)", "",
          f"Commit `{result['provenance']['commit']}`, {result['provenance']['date']}, {result['provenance']['machine']}.",
          "", "| stage | minutes |", "|---|---|"]
    md += [f"| {stage} | {s / 60:.1f} |" for stage, s in seconds.items()]
    md += [f"| **total (stages)** | **{total / 60:.1f}** |"]
    if wall is not None:
        md += [f"| wall clock of the command | {wall / 60:.1f} |"]
    md += ["", "Configuration:", "", "```json", json.dumps(info["config"], indent=2), "```"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_offline.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "train_offline.md").write_text("\n".join(md) + "\n")
    print("\n".join(md[:len(seconds) + 9]))


if __name__ == "__main__":
    main()
