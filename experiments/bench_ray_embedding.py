"""Embedding descriptor sets with the local engine against the Ray engine (issue 22, item 2).

    python experiments/bench_ray_embedding.py [--sets 16384] [--workers 1 2]

The texts: every MusicCaps descriptor set, then sets sampled from the MusicCaps vocabulary (``benchmark.py``'s
``synthetic_catalog``, set sizes drawn from MusicCaps') up to ``--sets`` unique texts. Each engine fills an
empty embedding cache with the packaged all-MiniLM-L6-v2 on onnx-int8 (the serving backend): the local engine
(``embedding_cache.embed``, this process) and ``embed_with_ray`` on a local Ray with each ``--workers`` actor
count, its wall time including Ray's start, the actors' start and encoder load, and the shutdown. That fixed
cost is measured alone too (one chunk of one text), and the cost of bringing one chunk back to the driver and
writing it (what the Ray engine does instead of writing in the workers). The Ray engine's embeddings are
compared with the local engine's (max |difference|). Writes ``experiments/results/ray_embedding.{md,json}``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from benchmark import machine_info, peak_memory, synthetic_catalog, write_measurement  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ray_embedding"


def cached(encoder, texts) -> np.ndarray:
    """The embeddings of ``texts`` read from the cache (every chunk must be there)."""
    from melscribe.serve import embedding_cache

    folder = embedding_cache.cache_dir(encoder, texts)
    parts = [embedding_cache.read_chunk(embedding_cache.chunk_path(folder, i), len(embedding_cache.chunk_texts(texts, i)),
                                        encoder.dim) for i in range(embedding_cache.chunk_count(len(texts)))]
    assert all(p is not None for p in parts), "a chunk is missing"
    return np.concatenate(parts)


def timed(run) -> dict:
    """Wall time and the driver's peak RSS of ``run()``."""
    with peak_memory() as mem:
        t = time.perf_counter()
        run()
        wall = time.perf_counter() - t
    return {"wall_s": round(wall, 2), "driver": mem}


def chunk_transfer_ms(dim: int, folder: Path) -> float:
    """Median ms to bring one full chunk (CHUNK × dim float32) made by a Ray actor to the driver and write it."""
    import ray

    from melscribe.serve import embedding_cache

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        make = ray.remote(lambda: np.random.default_rng(0).random((embedding_cache.CHUNK, dim), dtype=np.float32))
        times = []
        for i in range(6):
            ref = make.remote()
            ray.wait([ref])
            t = time.perf_counter()
            embedding_cache.write_chunk(folder / f"{i}.npy", ray.get(ref))
            times.append(time.perf_counter() - t)
        return round(float(np.median(times[1:])) * 1000, 1)
    finally:
        ray.shutdown()
        embedding_cache.clear(folder)


def main() -> None:
    """Build the texts, time each engine on an empty cache, compare the embeddings, write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", type=int, default=2 * 8192,
                   help="unique descriptor-set texts (default 16384: two chunks, one for each of two actors)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray actor counts (default 1 2)")
    p.add_argument("--data-dir")
    args = p.parse_args()
    from melscribe.config import use_offline_mode_without_hub
    from melscribe.encoding.encoder import SERVING_BACKEND, TextEncoder
    from melscribe.serve import embedding_cache
    from melscribe.serve.catalog import Catalog
    from melscribe.serve.ray_embedding import embed_with_ray

    use_offline_mode_without_hub()
    info = machine_info()
    encoder = TextEncoder("all-MiniLM-L6-v2", backend=SERVING_BACKEND)
    mc = Catalog.from_musiccaps(args.data_dir)
    texts = mc.set_texts()
    vocabulary = mc.vocabulary()
    sizes = [len(t.split(", ")) for t in texts]
    _, sampled, _ = synthetic_catalog(args.sets, encoder.encode(vocabulary), vocabulary, sizes)
    known = set(texts)
    texts = (texts + [t for t in sampled if t not in known])[:args.sets]
    folder = embedding_cache.cache_dir(encoder, texts)
    embedding_cache.clear(folder)

    runs, runs_chunk = [], embedding_cache.CHUNK
    local = timed(lambda: embedding_cache.embed(encoder, texts))
    reference = cached(encoder, texts)
    runs.append({"engine": "local", "actors": None, **local})
    embedding_cache.clear(folder)
    for workers in args.workers:
        run = timed(lambda: embed_with_ray(encoder, texts, workers=workers))
        got = cached(encoder, texts)
        runs.append({"engine": "ray", "actors": workers, **run, "max_abs_diff": float(np.abs(got - reference).max()),
                     "bit_identical": bool(np.array_equal(got, reference))})
        embedding_cache.clear(folder)
        print(runs[-1], flush=True)
    fixed = {}
    embedding_cache.CHUNK = 1  # one text per chunk, so that each actor gets one (the driver alone reads CHUNK)
    for w in args.workers:
        few = [f"melscribe fixed-cost probe {j}" for j in range(w)]
        fixed[w] = timed(lambda: embed_with_ray(encoder, few, workers=w))["wall_s"]
        embedding_cache.clear(embedding_cache.cache_dir(encoder, few))
    embedding_cache.CHUNK = runs_chunk
    for r in runs:
        r["texts_per_s"] = round(len(texts) / r["wall_s"], 1)
        if r["engine"] == "ray":
            r["fixed_s"] = fixed[r["actors"]]
            r["texts_per_s_without_fixed"] = round(len(texts) / (r["wall_s"] - r["fixed_s"]), 1)
    transfer = chunk_transfer_ms(encoder.dim, folder.parent / "transfer-probe")
    per_chunk_s = embedding_cache.CHUNK / runs[0]["texts_per_s"]
    info.update({"command": "python experiments/bench_ray_embedding.py " + " ".join(sys.argv[1:]),
                 "backend": SERVING_BACKEND, "model": encoder.name, "texts": len(texts),
                 "musiccaps_sets": min(len(known), len(texts)), "chunk": embedding_cache.CHUNK, "runs": runs,
                 "chunk_transfer_ms": transfer, "local_chunk_encode_s": round(per_chunk_s, 1)})
    body = ["| engine | actors × onnx threads | wall s | texts/s | fixed cost s | texts/s without it | driver peak RSS GiB | max abs diff vs local |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    cores = info["cores"]
    for r in runs:
        ray_run = r["engine"] == "ray"
        shape = f"{r['actors']} × {max(1, cores // r['actors'])}" if ray_run else f"this process × {cores}"
        body.append(f"| {r['engine']} | {shape} | {r['wall_s']} | {r['texts_per_s']} | {r.get('fixed_s', '–')} | "
                    f"{r.get('texts_per_s_without_fixed', '–')} | {r['driver'].get('peak_rss_gib', '–')} | "
                    f"{r['max_abs_diff'] if ray_run else '–'} |")
    body += ["", f"Fixed cost: `embed_with_ray` on one text per actor (Ray start, actors start and load the encoder, shutdown). "
             f"Bringing one chunk ({embedding_cache.CHUNK} × {encoder.dim} float32, "
             f"{embedding_cache.CHUNK * encoder.dim * 4 / 1e6:.1f} MB) from an actor to the driver and writing it: "
             f"{transfer} ms (median of 5), against {per_chunk_s:.1f} s to encode it here."]
    write_measurement(RESULTS, info, "Embedding descriptor sets: the local engine against Ray Data",
                      f"{len(texts):,} unique descriptor-set texts ({info['musiccaps_sets']:,} MusicCaps sets, the rest sampled "
                      f"from its vocabulary), {encoder.name}, chunks of {embedding_cache.CHUNK}, each engine on an "
                      "empty embedding cache, one after the other; Ray: a local Ray started by the call, the driver "
                      "writing each chunk the actors return.", body)


if __name__ == "__main__":
    main()
