"""How often MNRL's in-batch negatives are false negatives: the share of requests whose batch holds another row's
descriptor set that :func:`melscribe.train.denoise.verbatim_false_negative` calls a false negative of them (the
sets ``mnrl_denoise`` leaves out), and the share whose batch holds a set sharing at least one verbatim descriptor.

    python experiments/false_negatives.py --run RUN [--batch-size 64]

Batches are those of the MNRL stage (``DistinctTrackBatchSampler`` over the run's pairs, its keys and seed, first
epoch). Prints the figures and writes ``experiments/results/false_negatives.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.evaluation.protocol import provenance  # noqa: E402
from melscribe.pairs import read_beir  # noqa: E402
from melscribe.fileio import write_text_atomic  # noqa: E402
from melscribe.train.denoise import descriptor_set, verbatim_false_negative  # noqa: E402
from melscribe.train.mnrl import batch_keys  # noqa: E402
from melscribe.train.trainer import DistinctTrackBatchSampler  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "false_negatives.json"


def main() -> None:
    """Parse the arguments, batch the run's pairs as stage mnrl does, count, write."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a training run folder (its pairs/ and run.json)")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    ds = read_beir(args.run / "pairs", split="train")
    seed = json.loads((args.run / "run.json").read_text())["config"]["seed"]
    rows = ds.pairs()
    requests, documents = [ds.queries[q] for q, _, _ in rows], [ds.corpus[d] for _, d, _ in rows]
    keys = batch_keys(list(zip(requests, documents)), [t for _, _, t in rows])
    sampler = DistinctTrackBatchSampler(keys, [len(r) for r in requests], args.batch_size, seed=seed)
    anchors = with_false = false_total = with_shared = 0
    for batch in sampler.batches():
        for i in batch:
            others = [documents[j] for j in batch if j != i]
            false = sum(verbatim_false_negative(requests[i], d) for d in others)
            low = requests[i].lower()
            shared = any(any(x in low for x in descriptor_set(d)) for d in others)
            anchors, with_false, false_total = anchors + 1, with_false + (false > 0), false_total + false
            with_shared += shared
    out = {"run": str(args.run), "batch_size": args.batch_size, "requests": anchors,
           "share_with_a_false_negative": round(with_false / anchors, 4),
           "false_negatives_per_request": round(false_total / anchors, 4),
           "share_with_a_set_sharing_a_verbatim_descriptor": round(with_shared / anchors, 4),
           "command": "python experiments/false_negatives.py " + " ".join(sys.argv[1:]), "provenance": provenance()}
    print(json.dumps(out, indent=2))
    write_text_atomic(RESULTS, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
