"""faiss in the process vs Milvus Lite, behind the same ``recommend()`` (issue 23): ingest or build time, disk,
``recommend()`` p50/p99 and recall@10 of the store's search against exact search, at each size.

    python experiments/bench_milvus.py --sizes 100000 1000000 --large-requests 100 --out experiments/results/bench_milvus

(``--large-requests``: fewer requests at 1M sets and more, where Milvus Lite takes seconds a request.
``--keep-measured``: keep the rows of sizes already in ``--out``'s JSON and measure only the sizes missing
there; each row records its own commit, date and load.)

Descriptor sets are synthetic, as in ``bench_recommend.py`` (sets of MusicCaps descriptors, embeddings the
normalised Dirichlet-weighted sums of the descriptors' embeddings by the packaged all-MiniLM-L6-v2): the same
sets, embeddings and requests (MC test captions, encoded as ``recommend()`` encodes them) for both stores.
Both serve with fusion on (TF-IDF, RRF): the faiss path re-ranks its dense candidates lexically above 20k
sets; the Milvus store adds the candidates of its sparse TF-IDF index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from benchmark import machine_info, peak_memory, percentiles, synthetic_catalog, write_measurement  # noqa: E402

SET_SIZES = [3, 4, 5, 6, 7, 8, 9, 10]


def folder_size(path: Path) -> int:
    """Bytes under ``path`` (a file or a folder)."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(rec, requests, queries, truth, k: int = 10) -> dict:
    """``recommend()`` p50/p99 (each request encoded as it serves) and the store's recall@k against exact."""
    for r in requests[:5]:
        rec.recommend(r, k)
    times = []
    for r in requests:
        t = time.perf_counter()
        rec.recommend(r, k)
        times.append(time.perf_counter() - t)
    rows = np.vstack([rec.index.search(q, k)[1] for q in queries])
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, rows)]))
    return {"recommend": percentiles(times), "recall_at_10": round(recall, 4)}


def time_calls(rec, queries, requests, count: int = 50) -> dict:
    """p50 ms of each store call ``recommend()`` makes, on the same queries: the dense search of its first
    candidates, the same with an engine filter, the best-of-all search, the lexical search and fetching the
    stored vectors of 80 rows."""
    from melscribe.serve.store import SetFilter

    store, lexical = rec.index, rec._lexical
    frequent = SetFilter(exclude=frozenset({"low quality", "male vocal"}))
    rows = np.arange(0, len(store), max(1, len(store) // 80))[:80]
    calls = {"search k=40": lambda q, r: store.search(q, 40),
             "search k=40, filtered": lambda q, r: store.search(q, 40, where=frequent),
             "search k=1": lambda q, r: store.search(q, 1),
             "vectors of 80 rows": lambda q, r: store.vectors(rows)}
    if getattr(store, "sparse", None) is not None:
        calls["lexical search k=40"] = lambda q, r: store.lexical_search(*lexical.query_vector(r), 40)
    out = {}
    for name, call in calls.items():
        times = []
        for q, r in zip(queries[:count], requests[:count]):
            t = time.perf_counter()
            call(q, r)
            times.append(time.perf_counter() - t)
        out[name] = percentiles(times)["p50_ms"]
    return out


def write_results(args, info: dict, requests: list, rows: list) -> None:
    """The table of the sizes measured so far (written after each size, so a long run keeps what it measured)."""
    info = dict(info)
    info.update(command="python " + " ".join(sys.argv), sizes=args.sizes, requests=len(requests), rows=rows)
    body = ["Each size's commit, date and load average at its start:", ""]
    body += [f"- {row['descriptor_sets']:,} sets: commit `{row['measured']['git_commit']}`, {row['measured']['date']}, "
             f"load {row['measured']['load_average_start']}" for row in rows if "measured" in row]
    body += ["", "| sets | store | index | build / ingest (s) | disk (MiB) | peak RSS increase (GiB) | requests | recommend p50 (ms) "
            "| p99 (ms) | recall@10 vs exact |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for name, key, time_key in (("faiss", "faiss", "build_s"), ("Milvus Lite", "milvus_lite", "ingest_s")):
            m = row[key]
            body.append(f"| {row['descriptor_sets']:,} | {name} | {m.get('kind', m.get('index'))} | {m[time_key]} | "
                        f"{m['disk_mib']} | {m['peak_increase_gib']} | {row['requests']} | {m['recommend']['p50_ms']} | "
                        f"{m['recommend']['p99_ms']} | {m['recall_at_10']} |")
    body += ["", "p50 (ms) of each store call `recommend()` makes, on the first 50 requests (fewer where fewer "
             "were made; the filter excludes two frequent descriptors):", "",
             "| sets | store | " + " | ".join(rows[0]["milvus_lite"]["calls_p50_ms"]) + " |",
             "|---|---|" + "---|" * len(rows[0]["milvus_lite"]["calls_p50_ms"])]
    for row in rows:
        for name, key in (("faiss", "faiss"), ("Milvus Lite", "milvus_lite")):
            calls = row[key]["calls_p50_ms"]
            body.append(f"| {row['descriptor_sets']:,} | {name} | " + " | ".join(
                str(calls.get(c, "—")) for c in rows[0]["milvus_lite"]["calls_p50_ms"]) + " |")
    write_measurement(args.out, info, "faiss vs Milvus Lite behind recommend()",
                      f"Up to {len(requests)} MC test captions as requests (column requests), k = 10, fusion on (TF-IDF, RRF); synthetic "
                      "descriptor sets (see the script's docstring).", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--large-requests", type=int,
                        help="requests (and store calls timed) at sizes of 1M sets and more, where Milvus Lite is "
                             "slow (default: --requests)")
    parser.add_argument("--keep-measured", action="store_true",
                        help="keep the sizes already measured in --out's JSON (same machine) and measure the others")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_milvus")
    args = parser.parse_args()

    import faiss

    from melscribe.data import load_musiccaps
    from melscribe.encoding.encoder import SERVING_BACKEND, TextEncoder
    from melscribe.serve.catalog import Catalog
    from melscribe.serve.index import DescriptorIndex
    from melscribe.serve.milvus_store import MilvusStore
    from melscribe.serve.recommend import Recommender
    from melscribe.serve.store_setup import track_descriptors
    from melscribe.retrieval.scorers import BASELINES

    info = machine_info()
    rows = []
    if args.keep_measured and args.out.with_suffix(".json").exists():
        before = json.loads(args.out.with_suffix(".json").read_text())
        if before["machine"] != info["machine"]:
            parser.error(f"--keep-measured: {args.out}.json was measured on {before['machine']!r}, "
                         f"this is {info['machine']!r}")
        for row in before["rows"]:
            row.setdefault("measured", {k: before[k] for k in ("git_commit", "date", "load_average_start")})
        rows = [row for row in before["rows"] if row["descriptor_sets"] in args.sizes]
    measured = {row["descriptor_sets"] for row in rows}
    encoder = TextEncoder("all-MiniLM-L6-v2", backend=SERVING_BACKEND)
    mc = Catalog.from_musiccaps(args.data_dir)
    vocabulary = mc.vocabulary()
    vocab_emb = encoder.encode(vocabulary, progress=True)
    requests = [r.text for r in load_musiccaps(args.data_dir, split="test")[:args.requests]]
    queries = np.vstack([encoder.encode([r]) for r in requests])
    work = Path(tempfile.mkdtemp(prefix="bench-milvus-"))
    try:
        for n in [n for n in args.sizes if n not in measured]:
            catalog, texts, emb = synthetic_catalog(n, vocab_emb, vocabulary, SET_SIZES)
            exact = faiss.IndexFlatIP(emb.shape[1])
            exact.add(emb)
            truth = exact.search(queries, 10)[1]
            del exact
            many = args.large_requests if args.large_requests and n >= 1_000_000 else len(requests)
            reqs, qs, truth = requests[:many], queries[:many], truth[:many]
            calls = min(50, many)
            row = {"descriptor_sets": len(texts), "requests": many, "calls_timed": calls,
                   "measured": {"git_commit": info["git_commit"], "date": datetime.now(timezone.utc).isoformat(
                       timespec="seconds"), "load_average_start": [round(x, 2) for x in os.getloadavg()]}}
            with peak_memory() as mem:
                t = time.perf_counter()
                index = DescriptorIndex.from_embeddings(emb, texts, encoder, fingerprint=catalog.fingerprint(),
                                                        vocabulary=vocabulary, vocabulary_embeddings=vocab_emb)
                index.save(work / f"faiss-{n}")
                build = time.perf_counter() - t
            rec = Recommender(encoder, catalog, index=index, fusion=True)
            row["faiss"] = {"kind": index.kind, "build_s": round(build, 1), "disk_mib": round(folder_size(work / f"faiss-{n}") / 2**20, 1),
                            **mem, **measure(rec, reqs, qs, truth), "calls_p50_ms": time_calls(rec, qs, reqs, calls)}
            del rec, index
            db = work / f"milvus-{n}.db"
            with peak_memory() as mem:
                t = time.perf_counter()
                lexical = BASELINES["tfidf"]().fit(texts)
                store = MilvusStore.build(str(db), texts, encoder, fingerprint=catalog.fingerprint(), vocabulary=vocabulary,
                                          track_descriptors=track_descriptors(catalog, texts), lexical=lexical,
                                          lexical_name="tfidf", embeddings=emb, vocabulary_embeddings=vocab_emb)
                ingest = time.perf_counter() - t
            rec = Recommender(encoder, catalog, store=store, fusion=True)
            row["milvus_lite"] = {"index": store.meta["index"], "ingest_s": round(ingest, 1),
                                  "disk_mib": round(folder_size(db) / 2**20, 1),
                                  **mem, **measure(rec, reqs, qs, truth),
                                  "calls_p50_ms": time_calls(rec, qs, reqs, calls)}
            print(row, flush=True)
            rows.append(row)
            rows.sort(key=lambda r: r["descriptor_sets"])
            write_results(args, info, requests, rows)
            del rec, store
            shutil.rmtree(work / f"faiss-{n}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
