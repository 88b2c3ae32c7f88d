"""Encoding the server's batches with onnx-int8: one padded run per batch against each text in a run of its own.

    python experiments/bench_encode_batches.py [--batch 8] [--batches 150] [--agreement 400]

int8 graphs quantise their activations with one scale per run, so in a shared run each request's embedding
depends on the others. For ``--batches`` seeded batches of ``--batch`` MC_reco requests, each mode is timed
twice, interleaved (onnxruntime threads sleeping, as under ``melscribe serve``): CPU ms per request and wall ms
per batch. Then, for the first ``--agreement`` of those requests, the embedding each gets in its batch is
compared with the one it gets alone (``recommend()``'s): 1 − cosine, and the share whose top 10 on the
MusicCaps catalog is the same list. Writes ``experiments/results/encode_batches.{md,json}``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import machine_info, musiccaps_catalog, write_measurement  # noqa: E402

from melscribe.config import trained_model_path, use_offline_mode_without_hub  # noqa: E402
from melscribe.data import load_mc_test  # noqa: E402
from melscribe.encoding.onnx_backend import SPIN_ENV  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "encode_batches"
#: mode → whether the int8 backend runs each text alone (``OnnxBackend.text_per_run``).
MODES = {"one padded run per batch (before)": False, "each text in a run of its own (now)": True}


def encode_batches(encoder, batches: list[list[str]], text_per_run: bool) -> np.ndarray:
    """The embeddings of every batch's requests, each batch encoded in one call, in the given mode."""
    encoder._impl.text_per_run = text_per_run  # the backend's switch: experiment code may reach inside
    return np.concatenate([encoder.encode(b, batch_size=len(b)) for b in batches])


def main() -> None:
    """Parse the arguments, time both modes, measure their agreement with single requests, write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="model folder (default: the trained bi-encoder)")
    p.add_argument("--batch", type=int, default=8, help="requests per server batch (default 8)")
    p.add_argument("--batches", type=int, default=150)
    p.add_argument("--agreement", type=int, default=400, help="requests compared with their single encoding")
    p.add_argument("--data-dir")
    args = p.parse_args()
    use_offline_mode_without_hub()
    os.environ.setdefault(SPIN_ENV, "0")  # as melscribe serve runs it
    from melscribe.encoding.encoder import TextEncoder
    from melscribe.serve.recommend import Recommender

    encoder = TextEncoder(args.model or str(trained_model_path()), backend="onnx-int8")
    texts = [r.text for r in load_mc_test(args.data_dir, rephrased=True)]
    rng = random.Random(0)
    batches = [rng.sample(texts, args.batch) for _ in range(args.batches)]
    rows = []
    for mode, per_run in list(MODES.items()) * 2:
        encode_batches(encoder, batches[:2], per_run)  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        encode_batches(encoder, batches, per_run)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rows.append({"mode": mode, "cpu_ms_per_request": round(cpu / (args.batches * args.batch) * 1000, 2),
                     "wall_ms_per_batch": round(wall / args.batches * 1000, 2)})
        print(rows[-1])

    n_batches = -(-args.agreement // args.batch)
    requests = [t for b in batches[:n_batches] for t in b]
    with tempfile.TemporaryDirectory() as work:
        catalog, _ = musiccaps_catalog(args.data_dir, None, Path(work))
        rec = Recommender(encoder, catalog, index_dir=Path(work) / "index")
        alone = np.stack([encoder.encode([t])[0] for t in requests])
        top_alone = [[r.track_id for r in rec.search(q, 10)] for q in alone]
        agreement = []
        for mode, per_run in MODES.items():
            batched = encode_batches(encoder, batches[:n_batches], per_run)
            drift = 1 - (alone * batched).sum(axis=1)
            same = np.mean([[r.track_id for r in rec.search(q, 10)] == top for q, top in zip(batched, top_alone)])
            agreement.append({"mode": mode, "mean_1_minus_cos": float(drift.mean()), "max_1_minus_cos": float(drift.max()),
                              "same_top10": round(float(same), 4)})
            print(agreement[-1])
    info = {**machine_info(), "backend": "onnx-int8", "batch": args.batch, "batches": args.batches,
            "requests_compared": len(requests),
            "command": "python experiments/bench_encode_batches.py " + " ".join(sys.argv[1:]), "rows": rows,
            "agreement": agreement}
    body = ["| mode | CPU ms per request | wall ms per batch |", "|---|---:|---:|"]
    body += [f"| {r['mode']} | {r['cpu_ms_per_request']} | {r['wall_ms_per_batch']} |" for r in rows]
    body += ["", f"Each of {len(requests)} requests in its batch against the same request alone (as `recommend()` "
             "encodes it), top 10 on the MusicCaps catalog:", "",
             "| mode | mean 1 − cos | max 1 − cos | same top-10 list |", "|---|---:|---:|---:|"]
    body += [f"| {a['mode']} | {a['mean_1_minus_cos']:.2g} | {a['max_1_minus_cos']:.2g} | {100 * a['same_top10']:.1f} % |"
             for a in agreement]
    write_measurement(RESULTS, info, f"Encoding a server batch of {args.batch} requests with onnx-int8",
                      f"{args.batches} seeded batches of MC_reco requests, onnxruntime threads sleeping as under "
                      "`melscribe serve`; each mode timed twice, interleaved. \"Each text in a run of its own\" runs "
                      "two texts at a time on a single-threaded session.", body)


if __name__ == "__main__":
    main()
