"""Bar chart of Recall@10 (mean ± std over seeds) for the rows of one or more result tables, with the
paper's figures as black ticks.

    python experiments/plot_results.py experiments/results/baselines.json experiments/results/trained.json \
        --out experiments/results/recall_at_10.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from melscribe.evaluation.protocol import PAPER_RECALL_AT_10

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows: dict[str, dict] = {}
    splits: list[str] = []
    for path in args.tables:
        table = json.loads(path.read_text())
        splits += [s for s in table["splits"] if s not in splits]
        rows.update(table["rows"])
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(rows), 4.5))
    width = 0.8 / len(splits)
    x = np.arange(len(rows))
    for i, split in enumerate(splits):
        means = [100 * r.get(split, {}).get("recall@10", {}).get("mean", np.nan) for r in rows.values()]
        stds = [100 * r.get(split, {}).get("recall@10", {}).get("std", 0) for r in rows.values()]
        pos = x + (i - (len(splits) - 1) / 2) * width
        bars = ax.bar(pos, means, width, yerr=stds, label=split, capsize=2)
        for b, m in zip(bars, means):
            if not np.isnan(m):
                ax.annotate(f"{m:.1f}", (b.get_x() + b.get_width() / 2, m), ha="center", va="bottom", fontsize=7)
        for p, label in zip(pos, rows):
            ref = PAPER_RECALL_AT_10.get(label, {}).get(split)
            if ref is not None:
                ax.plot([p - width / 2, p + width / 2], [ref, ref], color="black", lw=2)
    ax.set_xticks(x, [label if len(label) < 28 else label[:26] + "…" for label in rows], rotation=20, ha="right",
                  fontsize=8)
    ax.set_ylabel("Recall@10 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Recall@10 on the LP-MusicCaps MC test splits (black: the paper)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
