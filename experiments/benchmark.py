"""Benchmark of the serving path: index build time and memory, ``recommend()`` latency, ANN recall.

Sizes: the MusicCaps catalog (really encoded) and synthetic catalogs of 100k and 1M descriptor sets. Encoding
a million descriptor sets with MiniLM on two CPU cores takes hours, so synthetic sets get *synthetic
embeddings*: each set draws descriptors from the real MusicCaps vocabulary (set sizes drawn from MusicCaps'),
and its embedding is a Dirichlet(1)-weighted sum of the real MiniLM embeddings of its descriptors,
normalised. On MusicCaps this reproduces the geometry of real encoded sets (mean pairwise cosine and the
request-to-set similarity profile, reported as ``calibration``), which is what ANN recall and speed depend on.

Requests are real: the MC_reco requests (``lp-musiccaps-mc/mc_rephrased.csv``). Latency is measured request by
request, split into encoding (the bi-encoder), search (faiss + tracks + explanations) and end to end
(``Recommender.recommend``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import faiss
import numpy as np
import psutil
from tqdm.auto import tqdm

from ..data import load_mc_test
from .catalog import Catalog, Track, set_text
from ..encoder import TextEncoder
from .index import (HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, REFINE_K_FACTOR, DescriptorIndex, default_nprobe,
                    resolve_kind)
from .recommend import Recommender

#: Search breadths swept for the ANN recall/speed trade-off: HNSW efSearch and IVF nprobe.
EF_SWEEP = (128, 256, 384, 512, 768)
NPROBE_SWEEP = (16, 32, 64, 96, 128, 160, 192, 256)


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, load, library versions, git commit and date."""
    import sentence_transformers
    import torch

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": commit, "cpu": cpu,
            "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_start": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "faiss": faiss.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "sentence_transformers": sentence_transformers.__version__}


@contextmanager
def peak_memory(interval: float = 0.02) -> Iterator[dict[str, float]]:
    """Samples the process's resident memory while the block runs; afterwards the dict holds
    ``peak_rss_gib`` and ``peak_increase_gib`` (peak minus the RSS on entry)."""
    proc = psutil.Process()
    start = proc.memory_info().rss
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], proc.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out: dict[str, float] = {}
    try:
        yield out
    finally:
        done.set()
        thread.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        out.update(peak_rss_gib=round(peak[0] / 2**30, 3), peak_increase_gib=round((peak[0] - start) / 2**30, 3))


def synthetic_sets(n: int, vocabulary_embeddings: np.ndarray, set_sizes: Sequence[int],
                   seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """``n`` synthetic descriptor sets: descriptor indices (sizes drawn from ``set_sizes``) and embeddings
    (normalised Dirichlet(1)-weighted sums of the descriptors' embeddings), as ``(embeddings, indices)``."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice(np.asarray(set_sizes), size=n)
    emb = np.empty((n, vocabulary_embeddings.shape[1]), dtype=np.float32)
    members: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * n
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        for start in range(0, len(rows), 20_000):
            chunk = rows[start:start + 20_000]
            idx = rng.integers(0, len(vocabulary_embeddings), size=(len(chunk), size))
            while True:  # redraw the sets that repeat a descriptor
                s = np.sort(idx, axis=1)
                bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
                if not len(bad):
                    break
                idx[bad] = rng.integers(0, len(vocabulary_embeddings), size=(len(bad), size))
            weights = rng.dirichlet(np.ones(size), size=len(chunk)).astype(np.float32)
            emb[chunk] = np.einsum("ns,nsd->nd", weights, vocabulary_embeddings[idx])
            for r, i in zip(chunk.tolist(), idx):
                members[r] = i
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb, members


def geometry(embeddings: np.ndarray, queries: np.ndarray, sample: int = 3000, seed: int = 0) -> dict[str, float]:
    """Mean pairwise cosine of (a sample of) ``embeddings``, and the mean cosine of ``queries`` to their
    1st, 10th and 100th nearest set and to all sets: the statistics the synthetic sets are calibrated on."""
    rng = np.random.default_rng(seed)
    x = embeddings[rng.choice(len(embeddings), size=min(sample, len(embeddings)), replace=False)]
    pair = x @ x.T
    sims = np.sort(queries @ x.T, axis=1)[:, ::-1]
    return {"pairwise": round(float(pair[~np.eye(len(x), dtype=bool)].mean()), 3),
            "request_top1": round(float(sims[:, 0].mean()), 3), "request_top10": round(float(sims[:, 9].mean()), 3),
            "request_top100": round(float(sims[:, 99].mean()), 3), "request_mean": round(float(sims.mean()), 3)}


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of durations, in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def measure_latency(rec: Recommender, requests: Sequence[str], k: int = 10) -> dict[str, Any]:
    """Per-request latency, as p50/p99 in ms: ``recommend()`` end to end; the same work split into encoding
    the request and searching (``Recommender.search``: faiss, tracks, explanations); and faiss alone. Every
    timed search follows the encoding of its request, as in ``recommend()`` (encoding evicts the index from
    the CPU caches, so a search right after another of the same query would read warm caches)."""
    for r in requests[:5]:  # warm-up
        rec.recommend(r, k)
    encode, faiss_only, search, total = [], [], [], []
    for r in requests:
        q = rec.encoder.encode([r])[0]
        t0 = time.perf_counter()
        rec.index.search(q, k)
        faiss_only.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        q = rec.encoder.encode([r])[0]
        t1 = time.perf_counter()
        rec.search(q, k)
        t2 = time.perf_counter()
        rec.recommend(r, k)
        t3 = time.perf_counter()
        encode.append(t1 - t0)
        search.append(t2 - t1)
        total.append(t3 - t2)
    return {"requests": len(requests), "encode": percentiles(encode), "faiss_search": percentiles(faiss_only),
            "search": percentiles(search), "end_to_end": percentiles(total)}


def measure_recall(index: DescriptorIndex, embeddings: np.ndarray, encoder: TextEncoder, requests: Sequence[str],
                   k: int = 10) -> dict[str, Any]:
    """Recall@k of the index against exact search for ``requests`` (embedded by ``encoder``), and for an
    approximate index a sweep of its search breadth (HNSW efSearch, IVF nprobe) with the faiss time per
    query. Each timed search follows the encoding of its request, as in ``recommend()``: encoding evicts the
    index from the CPU caches, which costs a graph walk about 0.5 ms per query at 1M sets."""
    queries = encoder.encode(requests)
    exact = faiss.IndexFlatIP(embeddings.shape[1])
    exact.add(embeddings)
    _, truth = exact.search(queries, k)
    del exact

    def recall(rows: np.ndarray) -> float:
        return round(float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, rows)])), 4)

    out: dict[str, Any] = {"k": k, "queries": len(queries),
                           "recall": recall(np.vstack([index.search(q, k)[1] for q in queries]))}
    if index.kind == "flat":
        return out
    param, keyword, values = (("nprobe", "nprobe", [v for v in NPROBE_SWEEP if v <= index.nlist]) if index.kind == "ivf"
                              else ("efSearch", "ef_search", list(EF_SWEEP)))
    sweep = []
    for value in values:
        rows, times = [], []
        for request in requests:
            q = encoder.encode([request])[0]
            t = time.perf_counter()
            rows.append(index.search(q, k, **{keyword: value})[1])
            times.append(time.perf_counter() - t)
        sweep.append({param: value, "recall": recall(np.vstack(rows)), **percentiles(times)})
    out["sweep"] = {"parameter": param, "rows": sweep}
    return out


def index_settings(index: DescriptorIndex) -> str:
    """The build and search settings of ``index``, in words."""
    if index.kind == "ivf":
        return (f"IVF-SQ8, {index.nlist} lists, nprobe {default_nprobe(index.nlist)}, exact re-scoring of the best "
                f"{REFINE_K_FACTOR}×k")
    if index.kind == "hnsw":
        return (f"HNSW-SQ8, M {HNSW_M}, efConstruction {HNSW_EF_CONSTRUCTION}, efSearch {HNSW_EF_SEARCH}, exact "
                f"re-scoring of the best {REFINE_K_FACTOR}×k")
    return "exact inner product"


def _musiccaps_stage(encoder: TextEncoder, data_dir: str | os.PathLike | None, limit: int | None,
                     requests: list[str]) -> tuple[dict[str, Any], DescriptorIndex, np.ndarray]:
    catalog = Catalog.from_musiccaps(data_dir)
    if limit:
        catalog = Catalog(catalog.tracks[:limit], source=f"MusicCaps (first {limit})")
    texts, vocabulary = list(catalog.descriptor_sets), catalog.vocabulary()
    with peak_memory() as mem:
        t0 = time.perf_counter()
        emb = encoder.encode(texts, progress=True)
        ta = time.perf_counter()
        vocab_emb = encoder.encode(vocabulary, progress=True)
        t1 = time.perf_counter()
        index = DescriptorIndex.from_embeddings(emb, texts, encoder, fingerprint=catalog.fingerprint(),
                                                vocabulary=vocabulary, vocabulary_embeddings=vocab_emb)
        t2 = time.perf_counter()
    rec = Recommender(encoder, catalog, index=index)
    stage = {"name": catalog.source, "descriptor_sets": len(texts), "tracks": len(catalog), "vocabulary": len(vocabulary),
             "embeddings": "real (MiniLM)", "index_kind": index.kind, "index_settings": index_settings(index),
             "build": {"encode_s": round(t1 - t0, 2), "encode_sets_s": round(ta - t0, 2),
                       "encode_vocabulary_s": round(t1 - ta, 2), "faiss_s": round(t2 - t1, 2),
                       "encode_sets_per_s": round(len(texts) / (ta - t0), 1), **mem},
             "latency": measure_latency(rec, requests)}
    return stage, index, emb


def _synthetic_stages(n: int, kinds: Sequence[str], encoder: TextEncoder, base: DescriptorIndex,
                      set_sizes: list[int], requests: list[str], queries: np.ndarray,
                      encode_rate: float) -> list[dict[str, Any]]:
    """One stage per index kind over the same ``n`` synthetic descriptor sets (a kind that ``"auto"``
    already chose is built once); the stage of the first kind is marked ``primary``."""
    t0 = time.perf_counter()
    emb, members = synthetic_sets(n, base.vocabulary_embeddings, set_sizes, seed=n)
    vocab = base.vocabulary
    texts = list(dict.fromkeys(set_text(vocab[i] for i in m) for m in members))
    if len(texts) != n:  # a repeated set keeps its first embedding
        first = {}
        for i, m in enumerate(members):
            first.setdefault(set_text(vocab[j] for j in m), i)
        emb = emb[list(first.values())]
    catalog = Catalog((Track(f"syn-{i:07d}", (tuple(t.split(", ")),)) for i, t in enumerate(texts)),
                      source=f"synthetic {n:,}")
    synthesis_s = round(time.perf_counter() - t0, 2)
    shape = geometry(emb, queries)
    stages = []
    for kind in dict.fromkeys(resolve_kind(k, len(texts)) for k in kinds):
        with peak_memory() as mem:
            t2 = time.perf_counter()
            index = DescriptorIndex.from_embeddings(emb, texts, encoder, fingerprint=catalog.fingerprint(), kind=kind,
                                                    vocabulary=vocab, vocabulary_embeddings=base.vocabulary_embeddings)
            t3 = time.perf_counter()
        rec = Recommender(encoder, catalog, index=index)
        stages.append({"name": catalog.source, "descriptor_sets": len(texts), "tracks": len(catalog),
                       "vocabulary": len(vocab), "embeddings": "synthetic (calibrated, see notes)",
                       "index_kind": index.kind, "index_settings": index_settings(index), "primary": not stages,
                       "build": {"synthesis_and_catalog_s": synthesis_s, "faiss_s": round(t3 - t2, 2),
                                 "encode_estimate_h": round(len(texts) / encode_rate / 3600, 2), **mem},
                       "geometry": shape, "latency": measure_latency(rec, requests),
                       "ann": measure_recall(index, emb, encoder, requests)})
        del rec, index
    return stages


def run_benchmark(data_dir: str | os.PathLike | None = None, *, quick: bool = False, n_requests: int = 200,
                  model: Any = None, kinds: Sequence[str] = ("auto",), sizes: Sequence[int] | None = None,
                  musiccaps_limit: int | None = None) -> dict[str, Any]:
    """Run every stage and return the figures (see the module doc). ``quick``: the first 1,000 MusicCaps
    clips, synthetic catalogs of 30k and 100k sets and 50 requests instead of all of MusicCaps, 100k and
    1M; ``sizes`` and ``musiccaps_limit`` override either. ``kinds``: the index kinds built for the
    synthetic catalogs; the targets are checked on the first."""
    info = machine_info()
    encoder = model if isinstance(model, TextEncoder) else TextEncoder(model)
    requests = [r.text for r in load_mc_test(data_dir, rephrased=True)][: (min(50, n_requests) if quick else n_requests)]
    queries = encoder.encode(requests)
    mc, base, mc_emb = _musiccaps_stage(encoder, data_dir, musiccaps_limit or (1000 if quick else None), requests)
    mc["geometry"] = geometry(mc_emb, queries)
    stages = [mc]
    set_sizes = [len(t.split(", ")) for t in base.texts]
    sizes = sizes or ((30_000, 100_000) if quick else (100_000, 1_000_000))
    for n in tqdm(sizes, desc="synthetic sizes"):
        stages += _synthetic_stages(n, kinds, encoder, base, set_sizes, requests, queries,
                                    mc["build"]["encode_sets_per_s"])
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return {"machine": info, "model": encoder.name, "quick": quick, "kinds": list(kinds), "stages": stages}


def targets(result: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """(target, measured value, limit, higher is better) for the largest catalog (the index of the first
    kind asked for) and MusicCaps."""
    mc = result["stages"][0]
    largest = [s for s in result["stages"] if s.get("primary")][-1]
    where = f"{largest['name']} ({largest['index_kind']})"
    return [(f"ANN recall@10, {where}", largest["ann"]["recall"], 0.98, True),
            (f"faiss search p50 (ms), {where}", largest["latency"]["faiss_search"]["p50_ms"], 2.0, False),
            (f"search p50 (faiss + tracks + explanation, ms), {where}", largest["latency"]["search"]["p50_ms"], 2.0, False),
            (f"recommend() p50 (ms), {where}", largest["latency"]["end_to_end"]["p50_ms"], 25.0, False),
            (f"recommend() p50 (ms), {mc['name']}", mc["latency"]["end_to_end"]["p50_ms"], 25.0, False)]


def format_report(result: dict[str, Any]) -> str:
    """The figures as a Markdown report."""
    m = result["machine"]
    lines = [f"# `recommend()` benchmark{' (quick)' if result['quick'] else ''}", "",
             f"- date {m['date']}, git commit `{m['git_commit'][:12]}`", f"- machine: {m['cpu']}, {m['cores']} cores, "
             f"{m['memory_gib']} GiB; load average {m['load_average_start']} at start, {m['load_average_end']} at end",
             f"- faiss {m['faiss']}, torch {m['torch']} ({m['torch_threads']} threads), sentence-transformers "
             f"{m['sentence_transformers']}; model {result['model']}", "- indexes: "
             + "; ".join(sorted({f"{s['index_kind']}: {s['index_settings']}" for s in result["stages"]})), "",
             "## Index build", "", "| catalog | sets | index | encoding (s) | faiss build (s) | peak RSS increase (GiB) |",
             "|---|---:|---|---:|---:|---:|"]
    for s in result["stages"]:
        b = s["build"]
        enc = f"{b['encode_s']}" if "encode_s" in b else f"(not run; ≈ {b['encode_estimate_h']} h)"
        lines.append(f"| {s['name']} | {s['descriptor_sets']:,} | {s['index_kind']} | {enc} | {b['faiss_s']} | "
                     f"{b['peak_increase_gib']} |")
    lines += ["", "## Latency per request (ms, p50 / p99)", "",
              "| catalog | index | encoding | faiss search | search (faiss + tracks + explanation) | recommend() end to end |",
              "|---|---|---:|---:|---:|---:|"]
    for s in result["stages"]:
        lat = s["latency"]
        cell = lambda key: f"{lat[key]['p50_ms']:.2f} / {lat[key]['p99_ms']:.2f}"  # noqa: E731
        lines.append(f"| {s['name']} | {s['index_kind']} | {cell('encode')} | {cell('faiss_search')} | {cell('search')} | "
                     f"{cell('end_to_end')} |")
    lines += ["", "## ANN recall@10 against exact search", "",
              "Sweep timings are faiss alone, each search right after encoding its request (as in `recommend()`).", ""]
    for s in result["stages"]:
        if "ann" in s:
            a = s["ann"]
            lines.append(f"- {s['name']} ({s['index_kind']}): recall@10 **{a['recall']}** over {a['queries']} requests")
            sweep = a.get("sweep")
            for row in sweep["rows"] if sweep else []:
                p = sweep["parameter"]
                lines.append(f"  - {p} {row[p]}: recall {row['recall']}, faiss p50 {row['p50_ms']:.2f} ms, "
                             f"p99 {row['p99_ms']:.2f} ms")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---:|---|"]
    for name, value, limit, higher in targets(result):
        lines.append(f"| {name} {'≥' if higher else '≤'} {limit} | {value} | {'yes' if (value >= limit if higher else value <= limit) else '**no**'} |")
    lines += ["", "## Geometry of the sets (calibration of the synthetic embeddings)", "",
              "| catalog | mean pairwise cos | request→top-1 | →top-10 | →top-100 | →all |", "|---|---:|---:|---:|---:|---:|"]
    for s in {s["name"]: s for s in result["stages"]}.values():
        g = s["geometry"]
        lines.append(f"| {s['name']} | {g['pairwise']} | {g['request_top1']} | {g['request_top10']} | "
                     f"{g['request_top100']} | {g['request_mean']} |")
    return "\n".join(lines) + "\n"


def write_report(result: dict[str, Any], out: str | os.PathLike, notes: str = "") -> tuple[Path, Path]:
    """Write ``out``.md (the report, then ``notes``) and ``out``.json; returns both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md, js = out.with_suffix(".md"), out.with_suffix(".json")
    md.write_text(format_report(result) + (f"\n{notes.strip()}\n" if notes.strip() else ""))
    js.write_text(json.dumps(result, indent=2) + "\n")
    return md, js
