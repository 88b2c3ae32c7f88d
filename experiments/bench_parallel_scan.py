"""Should one query's inverted-file scan be split between threads? (issue 22: ``recommend()`` at 10M tracks.)

faiss scans one query's lists on one thread by default in melscribe (``DescriptorIndex`` sets one OpenMP
thread for a single query). faiss can instead split them between every thread (``parallel_mode`` 1). Two
measurements, alternated on the same machine:

1. **The scan alone** (``--n``): ``DescriptorIndex``'s large-catalog kind (8-bit codes, re-scored on the exact
   vectors) over seeded random unit vectors of dimension 384, one query at a time, k = 40 as ``recommend()``
   asks; the codes a query reads, ``nprobe × n / nlist``, varied by the number of lists.
2. **``recommend()`` end to end** (``--work``, the working folder of ``bench_large_catalog.py``): the 10M-track
   catalog and its index, blocks of 100 fresh requests (MC_reco and MC test, shuffled, seeded), each block in
   one configuration: split or one thread, nprobe 160 (the default) or 96.

    python experiments/bench_parallel_scan.py --work /tmp/large --out experiments/results/parallel_scan
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from benchmark import machine_info, percentiles, write_measurement  # noqa: E402


@contextmanager
def split_scan(index, split: bool, nprobe: int):
    """Single queries on ``index`` (a ``DescriptorIndex`` re-scored on its exact vectors) scan ``nprobe`` lists,
    split between every OpenMP thread if ``split``, else on one thread as melscribe does."""
    import faiss

    from melscribe.serve import index as ix

    original, threads = ix.IVF_NPROBE, faiss.omp_get_max_threads()
    faiss_search = index.index.search
    ix.IVF_NPROBE = nprobe

    def search(queries, k, params=None):
        faiss.omp_set_num_threads(threads)  # melscribe set one thread for a single query: undone when splitting
        try:
            return faiss_search(queries, k, params=params)
        finally:
            faiss.omp_set_num_threads(1 if len(queries) == 1 else threads)

    index.index.parallel_mode = 1 if split else 0
    if split:
        index.index.search = search
    try:
        yield
    finally:
        ix.IVF_NPROBE = original
        index.index.parallel_mode = 0
        if split:
            del index.index.search
        faiss.omp_set_num_threads(threads)


def scan_alone(n: int, lists: list[int], nprobe: int) -> list[dict]:
    from melscribe.serve import index as ix

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.choice(n, 200, replace=False)] + 0.05 * rng.standard_normal((200, 384), dtype=np.float32)
    rows = []
    for nlist in lists:
        ivf = ix._train_ivf(vectors[rng.choice(n, min(n, 64 * nlist), replace=False)], nlist)
        ivf.add(vectors)
        index = ix.DescriptorIndex(ivf, [str(i) for i in range(n)], [], np.zeros((0, 384), np.float32), "random",
                                   np.zeros(384, np.float32), "", "ivf", exact_vectors=vectors)
        times: dict[str, list[float]] = {"one thread": [], "split": []}
        found = {}
        for _ in range(3):
            for name in times:
                with split_scan(index, name == "split", nprobe):
                    got = []
                    for q in queries:
                        t = time.perf_counter()
                        got.append(index.search(q[None, :], 40)[1][0])
                        times[name].append(time.perf_counter() - t)
                found[name] = np.vstack(got)
        row = {"nlist": nlist, "codes_per_query": int(nprobe * n / nlist),
               "same_rows": bool(np.array_equal(found["one thread"], found["split"])),
               **{name: percentiles(ts)["p50_ms"] for name, ts in times.items()}}
        row["speedup"] = round(row["one thread"] / row["split"], 2)
        print(row, flush=True)
        rows.append(row)
    return rows


def end_to_end(work: Path, blocks: int, data_dir: str | None) -> list[dict]:
    import os

    from melscribe.data import load_mc_test
    from melscribe.encoding.encoder import SERVING_BACKEND, TextEncoder
    from melscribe.serve.columnar_catalog import open_columnar
    from melscribe.serve.recommend import Recommender

    os.environ.setdefault("MELSCRIBE_HOME", str(work / "home"))
    requests = [r.text for r in load_mc_test(data_dir, rephrased=True)] + [r.text for r in load_mc_test(data_dir)]
    np.random.default_rng(0).shuffle(requests)
    rec = Recommender(TextEncoder(backend=SERVING_BACKEND), open_columnar(work / "catalog.parquet"),
                      index_dir=work / "index", auto_rebuild=False)
    for r in requests[:20]:
        rec.recommend(r)
    configs = [(split, nprobe) for nprobe in (160, 96) for split in (True, False)]
    times: dict[tuple, list[float]] = {c: [] for c in configs}
    at = 20
    for _ in range(blocks):
        for split, nprobe in configs:
            with split_scan(rec.index, split, nprobe):
                for r in requests[at:at + 100]:
                    t = time.perf_counter()
                    rec.recommend(r)
                    times[(split, nprobe)].append(time.perf_counter() - t)
            at += 100
    rows = [{"scan": "split" if split else "one thread", "nprobe": nprobe, "requests": len(ts), **percentiles(ts)}
            for (split, nprobe), ts in times.items()]
    for row in rows:
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="vectors of the scan-alone index (default 200,000)")
    parser.add_argument("--lists", type=int, nargs="+", default=[4_096, 2_048, 1_024, 512, 256],
                        help="numbers of inverted lists, one scan-alone index each")
    parser.add_argument("--nprobe", type=int, default=160, help="lists scanned in the scan-alone part")
    parser.add_argument("--work", type=Path, help="bench_large_catalog.py's working folder: measure recommend() too")
    parser.add_argument("--blocks", type=int, default=4, help="blocks of 100 requests per configuration")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "parallel_scan")
    args = parser.parse_args()

    import faiss

    info = machine_info()
    scan = scan_alone(args.n, args.lists, args.nprobe)
    served = end_to_end(args.work, args.blocks, args.data_dir) if args.work else []
    info.update(command="python " + " ".join(sys.argv), n=args.n, nprobe=args.nprobe,
                threads=faiss.omp_get_max_threads(), scan_alone=scan, recommend=served)
    body = ["## The scan alone", "",
            f"{args.n:,} random unit vectors, nprobe {args.nprobe}, k = 40, 200 queries one at a time, each setting "
            "three times, alternated.", "",
            "| lists | codes read per query | one thread p50 (ms) | split p50 (ms) | speedup | same rows |",
            "|---:|---:|---:|---:|---:|---|"]
    body += [f"| {r['nlist']:,} | {r['codes_per_query']:,} | {r['one thread']} | {r['split']} | {r['speedup']} | "
             f"{r['same_rows']} |" for r in scan]
    if served:
        body += ["", "## `recommend()` at ten million tracks", "",
                 f"{args.work} (2M descriptor sets, 8,192 lists); {args.blocks} blocks of 100 fresh requests per "
                 "configuration, the configurations alternated block by block.", "",
                 "| scan | nprobe | requests | p50 (ms) | p99 (ms) |", "|---|---:|---:|---:|---:|"]
        body += [f"| {r['scan']} | {r['nprobe']} | {r['requests']} | {r['p50_ms']} | {r['p99_ms']} |" for r in served]
    write_measurement(args.out, info, "One query's inverted-file scan: one thread or split between threads",
                      f"{faiss.omp_get_max_threads()} OpenMP threads.", body)


if __name__ == "__main__":
    main()
