"""Latency of ``recommend(..., rerank=N)``: the music cross-encoder re-scoring the best N descriptor sets.

    python experiments/bench_rerank.py --reranker RUN/teacher/model [--model PATH] [--depths 0 20 50] [--requests 100]

One request at a time over the MusicCaps catalog, MC_reco requests, the recommender's defaults otherwise;
writes ``experiments/results/bench_rerank.{md,json}`` with the commit, machine and load. Quality of the
re-ranking: ``python experiments/tables.py teacher``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import percentiles  # noqa: E402

from melscribe.config import use_offline_mode_without_hub  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reranker", required=True, help="music cross-encoder folder (a run's teacher/model)")
    parser.add_argument("--model", help="bi-encoder (default: the trained one, else the packaged MiniLM)")
    parser.add_argument("--depths", nargs="+", type=int, default=[0, 20, 50])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_rerank")
    args = parser.parse_args()
    use_offline_mode_without_hub()

    from melscribe.data import load_mc_test
    from melscribe.evaluation.protocol import provenance
    from melscribe.fileio import write_text_atomic
    from melscribe.serve.recommend import Recommender

    rec = Recommender(args.model, data_dir=args.data_dir, reranker=args.reranker)
    requests = [r.text for r in load_mc_test(args.data_dir, rephrased=True)][:args.requests]
    load_start = os.getloadavg()
    rows = {}
    for depth in args.depths:
        for r in requests[:5]:  # warm-up (and the cross-encoder's first load)
            rec.recommend(r, 10, rerank=depth)
        times = []
        for r in requests:
            t0 = time.perf_counter()
            rec.recommend(r, 10, rerank=depth)
            times.append(time.perf_counter() - t0)
        rows[depth] = percentiles(times, (50, 90, 99))
        print(depth, rows[depth], flush=True)
    prov = dict(provenance(), load_average_start=[round(x, 2) for x in load_start],
                load_average_end=[round(x, 2) for x in os.getloadavg()])
    md = ["# `recommend(..., rerank=N)` latency", "", f"Command: `python {' '.join(sys.argv)}`", "",
          f"Commit `{prov['commit']}`, {prov['date']}, {prov['machine']}; load {prov['load_average_start']} → "
          f"{prov['load_average_end']}. Bi-encoder `{rec.encoder.name}` ({rec.encoder.backend}), cross-encoder "
          f"`{args.reranker}` (bf16 autocast: {rec.reranker.bf16}); MusicCaps catalog, {len(requests)} MC_reco "
          "requests one at a time, k = 10, the recommender's defaults otherwise.", "",
          "| rerank N | p50 ms | p90 ms | p99 ms |", "|---:|---:|---:|---:|"]
    md += [f"| {d} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} |" for d, r in rows.items()]
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(md) + "\n")
    write_text_atomic(args.out.with_suffix(".json"), json.dumps({"rows": rows, "provenance": prov,
                                                                 "command": "python " + " ".join(sys.argv)}, indent=2))
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
