"""CPU cost of encoding the server's batches whole or in length-sorted runs (padding against per-run overhead).

    python experiments/bench_encode_batches.py [--backend onnx-int8] [--batch 8] [--batches 150] [--runs 32 4 2]

Encodes ``--batches`` random batches of ``--batch`` MC_reco requests (seeded) with the encoder's ``batch_size``
set to each of ``--runs`` (32: one padded run per batch, as the server does; 4: two runs of similar lengths),
onnxruntime threads sleeping as under ``melscribe serve``, each setting measured twice, interleaved. Writes
``experiments/results/encode_batches.{md,json}``: CPU ms per request and wall ms per batch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import machine_info  # noqa: E402

from melscribe.config import trained_model_path, use_offline_mode_without_hub  # noqa: E402
from melscribe.data import load_mc_test  # noqa: E402
from melscribe.onnx_backend import SPIN_ENV  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "encode_batches"


def main() -> None:
    """Parse the arguments, time each run size, write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="onnx-int8")
    p.add_argument("--model", help="model folder (default: the trained bi-encoder)")
    p.add_argument("--batch", type=int, default=8, help="requests per server batch (default 8)")
    p.add_argument("--batches", type=int, default=150)
    p.add_argument("--runs", nargs="+", type=int, default=[32, 4, 2], help="encoder batch sizes to compare")
    p.add_argument("--data-dir")
    args = p.parse_args()
    use_offline_mode_without_hub()
    os.environ.setdefault(SPIN_ENV, "0")  # as melscribe serve runs it
    from melscribe.encoder import TextEncoder

    encoder = TextEncoder(args.model or str(trained_model_path()), backend=args.backend)
    texts = [r.text for r in load_mc_test(args.data_dir, rephrased=True)]
    rng = random.Random(0)
    batches = [rng.sample(texts, args.batch) for _ in range(args.batches)]
    rows = []
    for size in list(args.runs) * 2:
        encoder.encode(batches[0], batch_size=size)  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in batches:
            encoder.encode(batch, batch_size=size)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rows.append({"run_size": size, "cpu_ms_per_request": round(cpu / (args.batches * args.batch) * 1000, 2),
                     "wall_ms_per_batch": round(wall / args.batches * 1000, 2)})
        print(rows[-1])
    info = {**machine_info(), "backend": args.backend, "batch": args.batch, "batches": args.batches,
            "command": "python experiments/bench_encode_batches.py " + " ".join(sys.argv[1:]), "rows": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(info, indent=2))
    lines = [f"# Encoding a server batch of {args.batch} requests whole or in runs ({args.backend})", "",
             f"Command: `{info['command'].strip()}`", "",
             f"Commit `{info['git_commit']}`, {info['date']}, {info['machine']}, load average "
             f"{info['load_average_start']} at start; {args.batches} seeded batches of MC_reco requests, onnxruntime "
             "threads sleeping as under `melscribe serve`; each run size measured twice, interleaved.", "",
             "| encoder batch_size (runs per batch) | CPU ms per request | wall ms per batch |", "|---:|---:|---:|"]
    lines += [f"| {r['run_size']} | {r['cpu_ms_per_request']} | {r['wall_ms_per_batch']} |" for r in rows]
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}.md")


if __name__ == "__main__":
    main()
