"""One query's inverted-file scan on one thread against its lists split between every OpenMP thread (faiss'
``parallel_mode`` 1), by the number of codes the query reads: where :data:`melscribe.serve.index.
PARALLEL_SCAN_MIN_CODES` should lie on this machine.

    python experiments/bench_parallel_scan.py --out experiments/results/parallel_scan

The index is ``DescriptorIndex``'s large-catalog kind (8-bit codes, re-scored on the exact vectors) over
seeded random unit vectors of dimension 384; the codes a query reads are ``nprobe × n / nlist``, varied by
the number of lists. Searches are one query at a time, k = 40 as ``recommend()`` asks, each setting timed on
the same 200 queries, alternated three times; the split search must return the same rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from benchmark import machine_info, percentiles, write_measurement  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400_000, help="vectors indexed (default 400,000)")
    parser.add_argument("--lists", type=int, nargs="+", default=[16_384, 8_192, 4_096, 2_048, 1_024, 512],
                        help="numbers of inverted lists, one index each")
    parser.add_argument("--nprobe", type=int, default=160)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "parallel_scan")
    args = parser.parse_args()

    import time

    import faiss

    from melscribe.serve import index as ix

    info = machine_info()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.n, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.choice(args.n, 200, replace=False)] + 0.05 * rng.standard_normal((200, 384), dtype=np.float32)
    rows = []
    for nlist in args.lists:
        ivf = ix._train_ivf(vectors[rng.choice(args.n, min(args.n, 64 * nlist), replace=False)], nlist)
        ivf.add(vectors)
        index = ix.DescriptorIndex(ivf, [str(i) for i in range(args.n)], [], np.zeros((0, 384), np.float32), "random",
                                   np.zeros(384, np.float32), "", "ivf", exact_vectors=vectors)
        codes = args.nprobe * args.n / nlist
        times = {"one thread": [], "split": []}
        found = {}
        for _ in range(3):
            for name, threshold in (("one thread", 10**15), ("split", 0)):
                ix.PARALLEL_SCAN_MIN_CODES = threshold
                got = []
                for q in queries:
                    t = time.perf_counter()
                    got.append(index.search(q[None, :], 40, nprobe=args.nprobe)[1][0])
                    times[name].append(time.perf_counter() - t)
                found[name] = np.vstack(got)
        same = bool(np.array_equal(found["one thread"], found["split"]))
        row = {"nlist": nlist, "codes_per_query": int(codes), "same_rows": same,
               **{name: percentiles(ts)["p50_ms"] for name, ts in times.items()}}
        row["speedup"] = round(row["one thread"] / row["split"], 2)
        print(row, flush=True)
        rows.append(row)
    info.update(command="python " + " ".join(sys.argv), n=args.n, nprobe=args.nprobe, threads=faiss.omp_get_max_threads(),
                rows=rows)
    body = ["| lists | codes read per query | one thread p50 (ms) | split p50 (ms) | speedup | same rows |",
            "|---:|---:|---:|---:|---:|---|"]
    body += [f"| {r['nlist']:,} | {r['codes_per_query']:,} | {r['one thread']} | {r['split']} | {r['speedup']} | "
             f"{r['same_rows']} |" for r in rows]
    write_measurement(args.out, info, "One query's inverted-file scan: one thread or split between threads",
                      f"{args.n:,} random unit vectors (dim 384), nprobe {args.nprobe}, k = 40, 200 queries one at a "
                      f"time, each setting three times alternated; {faiss.omp_get_max_threads()} OpenMP threads.", body)


if __name__ == "__main__":
    main()
