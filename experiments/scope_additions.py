"""What the learned negation scope (``melscribe/intent/scope_model.py``, off by default) adds to the rules on
requests that reject nothing: the MC and MC_reco test requests (issue 25). The forum report
(``forum_intent_report.py``) shows what those additions cost in track-level Recall; this lists them.

    python experiments/scope_additions.py --out experiments/results/scope_additions
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import machine_info, write_measurement  # noqa: E402

from melscribe.data import load_mc_test  # noqa: E402
from melscribe.intent.rejections import find_rejections  # noqa: E402
from melscribe.intent.scope_model import default_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scope_additions")
    args = parser.parse_args()
    info = machine_info()
    model = default_model()
    splits = {"MC": [r.text for r in load_mc_test(args.data_dir)],
              "MC_reco": [r.text for r in load_mc_test(args.data_dir, rephrased=True)]}
    rows, body = {}, ["| split | requests | requests with a learned rejection | phrases added |", "|---|---:|---:|---|"]
    for name, texts in splits.items():
        added = [(t, [r.phrase for r in model.rejections(t, find_rejections(t))]) for t in texts]
        added = [(t, phrases) for t, phrases in added if phrases]
        rows[name] = {"requests": len(texts), "with_additions": len(added), "added": added}
        body.append(f"| {name} | {len(texts):,} | {len(added)} | "
                    + ", ".join(sorted({p for _, ps in added for p in ps})) + " |")
    info.update(command="python " + " ".join(sys.argv), splits=rows)
    write_measurement(args.out, info, "What the learned negation scope adds to requests that reject nothing",
                      "The default learned scope model (trained on the packaged examples) over the rules' rejections "
                      "of each MC and MC_reco test request.", body)


if __name__ == "__main__":
    main()
