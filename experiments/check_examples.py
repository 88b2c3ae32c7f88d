"""Where known tracks land for example requests, on the MusicCaps catalog.

    python experiments/check_examples.py [--model MODEL] [--fusion]

Writes experiments/results/examples.md: for each request, the rank of the track whose aspects it
describes and the top 5 with their matched descriptors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.evaluation.protocol import provenance  # noqa: E402

EXAMPLES = [
    ("This pop song features a teen female vocal delivering melodic singing over an acoustic guitar and simple "
     "drum track that evoke a melancholic, emotional vibe", "1RhYdQnZ_hw"),
    ("I'd love more upbeat tropical music with a steel drum melody in a higher register", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="bi-encoder (default: the trained one, else the packaged MiniLM)")
    parser.add_argument("--fusion", action="store_true")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "examples.md")
    args = parser.parse_args()
    from melscribe import Recommender

    rec = Recommender(args.model, data_dir=args.data_dir, fusion=args.fusion)
    prov = provenance()
    lines = ["# Example requests on the MusicCaps catalog", "",
             f"Command: `python {' '.join(sys.argv)}`", "",
             f"Model `{rec.encoder.name}`, fusion {args.fusion}. Commit `{prov['commit']}`, {prov['date']}, "
             f"{prov['machine']}.", ""]
    for request, expected in EXAMPLES:
        results = rec.recommend(request, k=50)
        lines += [f"## \"{request}\"", ""]
        if expected:
            rank = next((r.rank for r in results if r.track_id == expected), None)
            lines += [f"Expected track `{expected}`: rank **{rank if rank else '> 50'}**.", ""]
        lines += ["| rank | track | score | matched descriptors |", "|---|---|---|---|"]
        lines += [f"| {r.rank} | {r.track_id} | {r.score:.3f} | {', '.join(r.matched_descriptors)} |" for r in results[:5]]
        lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
