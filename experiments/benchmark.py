"""Benchmark of the serving path, per encoder backend: encoding, index build, ``recommend()`` latency, ANN
recall, and HTTP throughput against a real ``melscribe serve``.

Experiment code, not part of the library (it uses ``psutil`` and ``httpx`` when installed: the ``bench``
and ``test`` extras). ``experiments/bench_recommend.py`` is its command line; ``tests/test_bench.py`` runs it
small.

Backends (``torch``, ``onnx``, ``onnx-int8``, ``static``, ``student``: :mod:`melscribe.encoding.encoder`) whose
embeddings are the same (torch and onnx) share one *embedding space*: its indexes are built once and each
backend is timed on them; a backend with its own embeddings (static, ...) gets its own indexes.

Sizes: the MusicCaps catalog (really encoded) and synthetic catalogs (100k and 1M descriptor sets by
default). Encoding a million descriptor sets with MiniLM on two CPU cores takes hours, so synthetic sets
get *synthetic embeddings*: each set draws descriptors from the real MusicCaps vocabulary (set sizes drawn
from MusicCaps'), and its embedding is a Dirichlet(1)-weighted sum of the real embeddings of its
descriptors (by the space's encoder), normalised. On MusicCaps this reproduces the geometry of really
encoded sets (mean pairwise cosine and the request-to-set similarity profile, reported as ``geometry``),
which is what ANN recall and speed depend on.

Requests are real: the MC_reco requests (``lp-musiccaps-mc/mc_rephrased.csv``). Latency is measured request
by request, split into encoding, search (faiss + tracks + explanations) and end to end
(``Recommender.recommend``). HTTP: ``melscribe serve`` on 127.0.0.1 in a subprocess, over the MusicCaps
catalog and index of the run, loaded at each concurrency level with a bounded number of ``POST
/recommend`` (asyncio + httpx; every request is timed from send to full response).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import faiss
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from melscribe.data import load_mc_test
from melscribe.encoding.encoder import SERVING_BACKEND, TextEncoder
from melscribe.errors import ModelUnavailableError
from melscribe.encoding.onnx_backend import SPIN_ENV
from melscribe.serve.catalog import Catalog, Track, set_text
from melscribe.serve.index import (HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, REFINE_K_FACTOR, DescriptorIndex,
                                   default_nprobe, resolve_kind)
from melscribe.serve.recommend import Recommender

REPO = Path(__file__).resolve().parents[1]
#: Search breadths swept for the ANN recall/speed trade-off: HNSW efSearch and IVF nprobe.
EF_SWEEP = (128, 256, 384, 512, 768)
NPROBE_SWEEP = (16, 32, 64, 96, 128, 160, 192, 256)
#: Concurrency levels of the HTTP load and requests sent per level (after a warm-up).
HTTP_LEVELS = (1, 8, 32)
HTTP_REQUESTS = 400
#: Acceptance targets of issue 11 (checked per backend).
RECOMMEND_P50_MS = 5.0
HTTP_MIN_RPS, HTTP_P95_MS, HTTP_TARGET_LEVEL = 300.0, 50.0, 8
ANN_MIN_RECALL = 0.98


def machine_info() -> dict[str, Any]:
    """Commit (``+dirty`` when the tree has changes), date, CPU, cores, memory, load, library versions."""
    import onnxruntime
    import sentence_transformers
    import torch

    from melscribe.evaluation.protocol import provenance

    prov = provenance()
    try:
        import psutil

        memory = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory = None
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": prov["commit"],
            "machine": prov["machine"], "cores": os.cpu_count(), "memory_gib": memory,
            "load_average_start": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "faiss": faiss.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__, "sentence_transformers": sentence_transformers.__version__}


@contextmanager
def peak_memory(interval: float = 0.02) -> Iterator[dict[str, float]]:
    """Samples the process's resident memory while the block runs; afterwards the dict holds
    ``peak_rss_gib`` and ``peak_increase_gib`` (peak minus the RSS on entry). Empty without psutil."""
    try:
        import psutil
    except ImportError:
        yield {}
        return
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
    at = lambda i: round(float(sims[:, min(i, sims.shape[1] - 1)].mean()), 3)  # noqa: E731
    return {"pairwise": round(float(pair[~np.eye(len(x), dtype=bool)].mean()), 3), "request_top1": at(0),
            "request_top10": at(9), "request_top100": at(99), "request_mean": round(float(sims.mean()), 3)}


def percentiles(seconds: Sequence[float], qs: Sequence[int] = (50, 99)) -> dict[str, float]:
    """Percentiles of durations, in milliseconds (``p50_ms``, ``p99_ms`` by default)."""
    ms = np.asarray(seconds) * 1000
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 3) for q in qs}


def measure_encode(encoder: TextEncoder, requests: Sequence[str], sets: Sequence[str]) -> dict[str, Any]:
    """One request at a time: encoding p50/p99; and the throughput of encoding ``sets`` in batches."""
    for r in requests[:5]:
        encoder.encode([r])
    times = []
    for r in requests:
        t0 = time.perf_counter()
        encoder.encode([r])
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    encoder.encode(list(sets))
    rate = len(sets) / max(time.perf_counter() - t0, 1e-9)
    return {"requests": len(requests), "encode": percentiles(times), "batch_sets": len(sets),
            "batch_sets_per_s": round(rate, 1)}


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
    query. Each request is encoded alone, as in ``recommend()`` (an int8 backend quantises activations per
    batch, so a batch-encoded request would be a slightly different query), and each timed search follows
    the encoding of its request."""
    queries = np.vstack([encoder.encode([request]) for request in requests])
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


# ---- catalogs -------------------------------------------------------------------------------------
def musiccaps_catalog(data_dir: str | os.PathLike | None, limit: int | None, folder: Path) -> tuple[Catalog, Path]:
    """The MusicCaps catalog (its first ``limit`` clips if given), written to ``folder/catalog.jsonl`` and
    read back: the server of the HTTP stage loads the same file, so its catalog fingerprint matches."""
    catalog = Catalog.from_musiccaps(data_dir)
    tracks = catalog.tracks[:limit] if limit else catalog.tracks
    rows = [{"track_id": t.id, "descriptors": list(s), "url": t.metadata.get("url", "")}
            for t in tracks for s in t.descriptor_sets]
    path = folder / "catalog.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    read = Catalog.from_file(path)
    return Catalog(read.tracks, source="MusicCaps" + (f" (first {limit})" if limit else "")), path


def synthetic_catalog(n: int, vocab_emb: np.ndarray, vocabulary: list[str], set_sizes: list[int]
                      ) -> tuple[Catalog, list[str], np.ndarray]:
    """``n`` synthetic descriptor sets (a repeated set keeps its first embedding): catalog, texts, embeddings."""
    emb, members = synthetic_sets(n, vocab_emb, set_sizes, seed=n)
    first: dict[str, int] = {}
    for i, m in enumerate(members):
        first.setdefault(set_text(vocabulary[j] for j in m), i)
    texts = list(first)
    if len(texts) != n:
        emb = emb[list(first.values())]
    catalog = Catalog((Track(f"syn-{i:07d}", (tuple(t.split(", ")),)) for i, t in enumerate(texts)),
                      source=f"synthetic {n:,}")
    return catalog, texts, emb


# ---- HTTP -----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(model: str, backend: str, catalog_file: Path, index_dir: Path, log_file: Path,
                   timeout: float = 600, env: dict[str, str] | None = None, options: Sequence[str] = ()) -> Iterator[str]:
    """``melscribe serve`` (this checkout, with ``env`` added to its environment and ``options`` to its command
    line) on a free loopback port, until its ``/health`` answers; yields its base URL and stops it (by its own
    pid) afterwards."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "melscribe.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--model", model,
           "--backend", backend, "--catalog", str(catalog_file), "--index-dir", str(index_dir), *options]
    env = {**os.environ, **(env or {}),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"melscribe serve exited with {proc.returncode}:\n{log_file.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"melscribe serve did not answer within {timeout:.0f} s:\n{log_file.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def http_load(url: str, requests: Sequence[str], concurrency: int, k: int) -> tuple[list[float], dict[int, int], float]:
    """``POST /recommend`` each of ``requests`` with ``concurrency`` in flight (httpx): the latency of each
    (s), the count of each HTTP status (0: no response) and the wall time (s)."""
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def worker() -> None:
            while not queue.empty():
                body = {"request": queue.get_nowait(), "k": k}
                t0 = time.perf_counter()
                try:
                    status = (await client.post("/recommend", json=body)).status_code
                except httpx.HTTPError:
                    status = 0  # connection refused or reset, timeout
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return latencies, statuses, wall


def measure_http(url: str, requests: Sequence[str], levels: Sequence[int] = HTTP_LEVELS,
                 n_requests: int = HTTP_REQUESTS, k: int = 10) -> list[dict[str, Any]]:
    """For each concurrency level: ``n_requests`` ``POST /recommend`` (requests cycled), after a warm-up of
    ``2 × level`` (at least 5) untimed ones; throughput over the wall time and latency p50/p95/p99 (ms) of
    every request, and the count of each HTTP status (0: no response)."""
    rows = []
    for level in levels:
        cycle = [requests[i % len(requests)] for i in range(n_requests + max(5, 2 * level))]
        asyncio.run(http_load(url, cycle[n_requests:], level, k))  # warm-up
        lat, statuses, wall = asyncio.run(http_load(url, cycle[:n_requests], level, k))
        ok = statuses.get(200, 0)
        rows.append({"concurrency": level, "requests": n_requests, "ok": ok, "statuses": {str(s): c for s, c in sorted(statuses.items())},
                     "wall_s": round(wall, 3), "throughput_rps": round(ok / wall, 1), **percentiles(lat, (50, 95, 99))})
    return rows


# ---- the run --------------------------------------------------------------------------------------
def run_benchmark(data_dir: str | os.PathLike | None = None, *, model: Any = None, backends: Sequence[str] = ("torch",),
                  quick: bool = False, n_requests: int = 200, kinds: Sequence[str] = ("auto",),
                  sizes: Sequence[int] | None = None, musiccaps_limit: int | None = None,
                  http_levels: Sequence[int] = HTTP_LEVELS, http_requests: int = HTTP_REQUESTS,
                  work_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run every stage for every backend and return the figures (see the module doc).

    ``model``: a model name or folder (default: the trained bi-encoder, else the packaged MiniLM), or a
    :class:`TextEncoder` (then its own backend is the only one). ``backends`` that cannot load (no static
    student...) are reported as skipped. ``quick``: the first 1,000 MusicCaps clips, synthetic catalogs of
    30k and 100k sets and 50 requests, instead of all of MusicCaps, 100k and 1M; ``sizes`` (``()``: none)
    and ``musiccaps_limit`` override either. ``kinds``: the index kinds built for the synthetic catalogs
    (the targets use the first). ``http_levels`` (``()``: no HTTP stage) and ``http_requests``: the load
    against the server. ``work_dir``: where catalog files, saved indexes and server logs go (default: a
    temporary folder, removed afterwards)."""
    info = machine_info()
    if isinstance(model, TextEncoder):
        encoders, skipped = {model.backend: model}, {}
        source = model.source
    else:
        from melscribe.encoding.encoder import default_model

        source = str(model or default_model())
        encoders, skipped = {}, {}
        for b in dict.fromkeys(backends):
            try:
                encoders[b] = TextEncoder(source, backend=b)
            except ModelUnavailableError as e:
                skipped[b] = str(e)
                tqdm.write(f"skipped backend {b}: {e}")
    if not encoders:
        raise ModelUnavailableError(f"no backend could load {source}: {skipped}")
    requests = [r.text for r in load_mc_test(data_dir, rephrased=True)][: (min(50, n_requests) if quick else n_requests)]
    sizes = ((30_000, 100_000) if quick else (100_000, 1_000_000)) if sizes is None else tuple(sizes)
    temp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="melscribe-bench-")) if temp else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        catalog, catalog_file = musiccaps_catalog(data_dir, musiccaps_limit or (1000 if quick else None), work)
        texts, vocabulary = list(catalog.descriptor_sets), catalog.vocabulary()
        set_sizes = [len(t.split(", ")) for t in texts]
        encoding = {b: measure_encode(e, requests, texts[:1000]) for b, e in encoders.items()}
        spaces: dict[str, list[str]] = {}  # embedding space (encoder name) -> backends
        for b, e in encoders.items():
            spaces.setdefault(e.name, []).append(b)
        stages, http = [], {}
        for s, (space, members) in enumerate(spaces.items()):
            builder = encoders[members[0]]
            with peak_memory() as mem:
                t0 = time.perf_counter()
                emb = builder.encode(texts, progress=True)
                ta = time.perf_counter()
                vocab_emb = builder.encode(vocabulary, progress=True)
                t1 = time.perf_counter()
                index = DescriptorIndex.from_embeddings(emb, texts, builder, fingerprint=catalog.fingerprint(),
                                                        vocabulary=vocabulary, vocabulary_embeddings=vocab_emb)
                t2 = time.perf_counter()
            index_dir = index.save(work / f"index-{s}")
            queries = builder.encode(requests)
            mc_geometry = geometry(emb, queries)
            build = {"encode_s": round(t1 - t0, 2), "encode_sets_s": round(ta - t0, 2),
                     "encode_vocabulary_s": round(t1 - ta, 2), "faiss_s": round(t2 - t1, 2),
                     "encode_sets_per_s": round(len(texts) / max(ta - t0, 1e-9), 1), "built_by": members[0], **mem}
            for b in members:
                rec = Recommender(encoders[b], catalog, index=index)
                stages.append({"name": catalog.source, "backend": b, "space": space, "descriptor_sets": len(texts),
                               "tracks": len(catalog), "vocabulary": len(vocabulary), "embeddings": "real",
                               "index_kind": index.kind, "index_settings": index_settings(index), "build": build,
                               "geometry": mc_geometry, "latency": measure_latency(rec, requests)})
                del rec
            for n in tqdm(sizes, desc=f"synthetic sizes ({space})"):
                stages += _synthetic_stages(n, kinds, {b: encoders[b] for b in members}, index, vocab_emb, set_sizes,
                                            requests, queries, build["encode_sets_per_s"])
            for b in members if http_levels else ():
                with running_server(encoders[b].source, b, catalog_file, index_dir, work / f"server-{b}.log") as url:
                    http[b] = measure_http(url, requests, http_levels, http_requests)
                if b == SERVING_BACKEND and HTTP_TARGET_LEVEL in http_levels:  # serve's choice of sleeping threads
                    with running_server(encoders[b].source, b, catalog_file, index_dir, work / f"server-{b}-spin.log",
                                        env={SPIN_ENV: "1"}) as url:
                        http[f"{b}, spinning threads"] = measure_http(url, requests, [HTTP_TARGET_LEVEL], http_requests)
            del index
    finally:
        if temp:
            shutil.rmtree(work, ignore_errors=True)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    first = next(iter(encoders.values()))
    return {"machine": info, "model": first.name.split("@")[0], "source": source, "backends": list(encoders),
            "skipped_backends": skipped, "default_backend": SERVING_BACKEND, "quick": quick, "kinds": list(kinds),
            "sizes": list(sizes), "encoding": encoding, "stages": stages, "http": http}


def _synthetic_stages(n: int, kinds: Sequence[str], encoders: dict[str, TextEncoder], base: DescriptorIndex,
                      vocab_emb: np.ndarray, set_sizes: list[int], requests: list[str], queries: np.ndarray,
                      encode_rate: float) -> list[dict[str, Any]]:
    """One stage per index kind and backend over the same ``n`` synthetic descriptor sets (a kind that
    ``"auto"`` already chose is built once; the index is shared by the backends of the space); the stages of
    the first kind are marked ``primary``."""
    t0 = time.perf_counter()
    catalog, texts, emb = synthetic_catalog(n, vocab_emb, base.vocabulary, set_sizes)
    synthesis_s = round(time.perf_counter() - t0, 2)
    shape = geometry(emb, queries)
    builder = next(iter(encoders.values()))
    stages = []
    for i, kind in enumerate(dict.fromkeys(resolve_kind(k, len(texts)) for k in kinds)):
        with peak_memory() as mem:
            t2 = time.perf_counter()
            index = DescriptorIndex.from_embeddings(emb, texts, builder, fingerprint=catalog.fingerprint(), kind=kind,
                                                    vocabulary=base.vocabulary, vocabulary_embeddings=vocab_emb)
            t3 = time.perf_counter()
        ann = measure_recall(index, emb, builder, requests)
        for b, encoder in encoders.items():
            rec = Recommender(encoder, catalog, index=index)
            stages.append({"name": catalog.source, "backend": b, "space": builder.name, "descriptor_sets": len(texts),
                           "tracks": len(catalog), "vocabulary": len(base.vocabulary),
                           "embeddings": "synthetic (calibrated, see notes)", "index_kind": index.kind,
                           "index_settings": index_settings(index), "primary": i == 0,
                           "build": {"synthesis_and_catalog_s": synthesis_s, "faiss_s": round(t3 - t2, 2),
                                     "encode_estimate_h": round(len(texts) / encode_rate / 3600, 2), **mem},
                           "geometry": shape, "latency": measure_latency(rec, requests), "ann": ann})
            del rec
        del index
    return stages


# ---- targets and report ---------------------------------------------------------------------------
def targets(result: dict[str, Any], backend: str | None = None) -> list[tuple[str, float, float, bool]]:
    """(target, measured value, limit, higher is better) for ``backend`` (default: the first of the run):
    ANN recall and ``recommend()`` p50 on the largest catalog (index of the first kind) and MusicCaps, and
    the HTTP load at concurrency 8 when it was run."""
    backend = backend or result["backends"][0]
    mine = [s for s in result["stages"] if s["backend"] == backend]
    mc = mine[0]
    primary = [s for s in mine if s.get("primary")]
    out = []
    if primary:
        largest = primary[-1]
        where = f"{largest['name']} ({largest['index_kind']})"
        out += [(f"ANN recall@10, {where}", largest["ann"]["recall"], ANN_MIN_RECALL, True),
                (f"recommend() p50 (ms), {where}", largest["latency"]["end_to_end"]["p50_ms"], RECOMMEND_P50_MS, False)]
    out.append((f"recommend() p50 (ms), {mc['name']}", mc["latency"]["end_to_end"]["p50_ms"], RECOMMEND_P50_MS, False))
    level = next((r for r in result.get("http", {}).get(backend, []) if r["concurrency"] == HTTP_TARGET_LEVEL), None)
    if level:
        out += [(f"HTTP requests/s at concurrency {HTTP_TARGET_LEVEL}", level["throughput_rps"], HTTP_MIN_RPS, True),
                (f"HTTP p95 (ms) at concurrency {HTTP_TARGET_LEVEL}", level["p95_ms"], HTTP_P95_MS, False)]
    return out


def _met(value: float, limit: float, higher: bool) -> bool:
    return value >= limit if higher else value <= limit


def format_report(result: dict[str, Any]) -> str:
    """The figures as a Markdown report."""
    m = result["machine"]
    cell = lambda d: f"{d['p50_ms']:.2f} / {d['p99_ms']:.2f}"  # noqa: E731
    lines = [f"# `recommend()` benchmark per encoder backend{' (quick)' if result['quick'] else ''}", "",
             f"- date {m['date']}, commit `{m['git_commit']}`",
             f"- machine: {m['machine']}, {m['memory_gib']} GiB; load average {m['load_average_start']} at start, "
             f"{m['load_average_end']} at end",
             f"- faiss {m['faiss']}, torch {m['torch']} ({m['torch_threads']} threads), onnxruntime {m['onnxruntime']}, "
             f"sentence-transformers {m['sentence_transformers']}",
             f"- model {result['model']}; backends {', '.join(result['backends'])} (default: {result['default_backend']})",
             "- indexes: " + "; ".join(sorted({f"{s['index_kind']}: {s['index_settings']}" for s in result["stages"]}))]
    for b, reason in result.get("skipped_backends", {}).items():
        lines.append(f"- backend {b} skipped: {reason}")
    lines += ["", "## Encoding", "", "One request at a time (ms, p50 / p99); descriptor sets encoded in batches.", "",
              "| backend | request encoding | sets per second (batches) |", "|---|---:|---:|"]
    for b, e in result["encoding"].items():
        lines.append(f"| {b} | {cell(e['encode'])} | {e['batch_sets_per_s']:,} |")
    lines += ["", "## Targets", "", "| backend | target | measured | met |", "|---|---|---:|---|"]
    for b in result["backends"]:
        for name, value, limit, higher in targets(result, b):
            lines.append(f"| {b} | {name} {'≥' if higher else '≤'} {limit} | {value} | "
                         f"{'yes' if _met(value, limit, higher) else '**no**'} |")
    lines += ["", "## Latency per request (ms, p50 / p99)", "",
              "| catalog | index | backend | encoding | faiss search | search (faiss + tracks + explanation) | recommend() end to end |",
              "|---|---|---|---:|---:|---:|---:|"]
    for s in result["stages"]:
        lat = s["latency"]
        lines.append(f"| {s['name']} | {s['index_kind']} | {s['backend']} | {cell(lat['encode'])} | "
                     f"{cell(lat['faiss_search'])} | {cell(lat['search'])} | {cell(lat['end_to_end'])} |")
    if result.get("http"):
        lines += ["", "## HTTP (`melscribe serve` on loopback, `POST /recommend`, k = 10)", "",
                  "| backend | concurrency | requests | answered 200 | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | statuses |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for b, rows in result["http"].items():
            for r in rows:
                lines.append(f"| {b} | {r['concurrency']} | {r['requests']} | {r['ok']} | {r['throughput_rps']} | "
                             f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                             + ", ".join(f"{k}: {v}" for k, v in r["statuses"].items()) + " |")
    lines += ["", "## Index build", "", "| catalog | embeddings of | sets | index | encoding (s) | faiss build (s) | peak RSS increase (GiB) |",
              "|---|---|---:|---|---:|---:|---:|"]
    seen = set()
    for s in result["stages"]:
        key = (s["name"], s["index_kind"], s["space"])
        if key in seen:
            continue
        seen.add(key)
        b = s["build"]
        enc = f"{b['encode_s']} ({b['built_by']})" if "encode_s" in b else f"(not run; ≈ {b['encode_estimate_h']} h)"
        lines.append(f"| {s['name']} | {s['space']} | {s['descriptor_sets']:,} | {s['index_kind']} | {enc} | {b['faiss_s']} | "
                     f"{b.get('peak_increase_gib', '—')} |")
    lines += ["", "## ANN recall@10 against exact search", "",
              "Sweep timings are faiss alone, each search right after encoding its request (as in `recommend()`).", ""]
    seen = set()
    for s in result["stages"]:
        key = (s["name"], s["index_kind"], s["space"])
        if "ann" not in s or key in seen:
            continue
        seen.add(key)
        a = s["ann"]
        lines.append(f"- {s['name']} ({s['index_kind']}, embeddings of {s['space']}): recall@10 **{a['recall']}** over "
                     f"{a['queries']} requests")
        sweep = a.get("sweep")
        for row in sweep["rows"] if sweep else []:
            p = sweep["parameter"]
            lines.append(f"  - {p} {row[p]}: recall {row['recall']}, faiss p50 {row['p50_ms']:.2f} ms, "
                         f"p99 {row['p99_ms']:.2f} ms")
    lines += ["", "## Geometry of the sets (calibration of the synthetic embeddings)", "",
              "| catalog | embeddings of | mean pairwise cos | request→top-1 | →top-10 | →top-100 | →all |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for s in {(s["name"], s["space"]): s for s in result["stages"]}.values():
        g = s["geometry"]
        lines.append(f"| {s['name']} | {s['space']} | {g['pairwise']} | {g['request_top1']} | {g['request_top10']} | "
                     f"{g['request_top100']} | {g['request_mean']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """A PNG: ``recommend()`` p50 (bars) and p99 (ticks) per catalog and backend, with the 5 ms target; and,
    if run, HTTP throughput per concurrency and backend, annotated with p95."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = result["backends"]
    catalogs = list(dict.fromkeys((s["name"], s["index_kind"]) for s in result["stages"]
                                  if s.get("primary", True)))
    panels = 2 if result.get("http") else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    ax = axes[0][0]
    width = 0.8 / max(1, len(backends))
    for j, b in enumerate(backends):
        by = {(s["name"], s["index_kind"]): s["latency"]["end_to_end"] for s in result["stages"] if s["backend"] == b}
        xs = [i + j * width for i, c in enumerate(catalogs) if c in by]
        p50 = [by[c]["p50_ms"] for c in catalogs if c in by]
        p99 = [by[c]["p99_ms"] for c in catalogs if c in by]
        ax.bar(xs, p50, width, label=b)
        ax.scatter(xs, p99, marker="_", s=200, color="black", zorder=3)
    ax.axhline(RECOMMEND_P50_MS, color="red", linestyle="--", linewidth=1, label=f"{RECOMMEND_P50_MS:g} ms target")
    ax.set_xticks([i + width * (len(backends) - 1) / 2 for i in range(len(catalogs))])
    ax.set_xticklabels([f"{n}\n({k})" for n, k in catalogs], fontsize=8)
    ax.set_ylabel("recommend() latency, ms (bar p50, tick p99)")
    ax.set_yscale("log")
    worst = max([RECOMMEND_P50_MS] + [s["latency"]["end_to_end"]["p99_ms"] for s in result["stages"]])
    ax.set_ylim(top=worst * 6)  # room for the legend
    ax.set_title("One request at a time")
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    if panels == 2:
        ax = axes[0][1]
        levels = sorted({r["concurrency"] for rows in result["http"].values() for r in rows})
        for j, (b, rows) in enumerate(result["http"].items()):
            by = {r["concurrency"]: r for r in rows}
            xs = [i + j * width for i, c in enumerate(levels) if c in by]
            bars = ax.bar(xs, [by[c]["throughput_rps"] for c in levels if c in by], width, label=b)
            for bar, c in zip(bars, [c for c in levels if c in by]):
                ax.annotate(f"p95 {by[c]['p95_ms']:.0f} ms", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7, rotation=90)
        ax.axhline(HTTP_MIN_RPS, color="red", linestyle="--", linewidth=1, label=f"{HTTP_MIN_RPS:g} requests/s target")
        top = max([HTTP_MIN_RPS] + [r["throughput_rps"] for rows in result["http"].values() for r in rows])
        ax.set_ylim(0, top * 1.45)  # room for the p95 labels
        ax.set_xticks([i + width * (len(result["http"]) - 1) / 2 for i in range(len(levels))])
        ax.set_xticklabels([f"concurrency {c}" for c in levels], fontsize=8)
        ax.set_ylabel("requests/s (MusicCaps)")
        ax.set_title("HTTP, melscribe serve on loopback")
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.suptitle(f"{result['model']} on {result['machine']['machine'].split(',')[0]}, "
                 f"commit {result['machine']['git_commit']}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_measurement(stem: Path, info: dict[str, Any], title: str, setting: str, body: Sequence[str]) -> Path:
    """Write ``info`` (with :func:`machine_info`'s fields and ``command``) to ``stem.json``, and ``stem.md``: the
    title, the command, the commit, date, machine and load, ``setting`` (what was measured, how), then ``body``
    (Markdown lines). Returns the Markdown path."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(info, indent=2))
    lines = [f"# {title}", "", f"Command: `{info['command'].strip()}`", "",
             f"Commit `{info['git_commit']}`, {info['date']}, {info['machine']}, load average "
             f"{info['load_average_start']} at start. {setting}", "", *body]
    md = stem.with_suffix(".md")
    md.write_text("\n".join(lines) + "\n")
    print(f"wrote {md}")
    return md


def write_report(result: dict[str, Any], out: str | os.PathLike, notes: str = "") -> tuple[Path, Path, Path]:
    """Write ``out``.md (the report, the plot, then ``notes``), ``out``.json and ``out``.png; returns them."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md, js, png = out.with_suffix(".md"), out.with_suffix(".json"), out.with_suffix(".png")
    plot(result, png)
    text = format_report(result) + f"\n![latency per backend and size]({png.name})\n"
    md.write_text(text + (f"\n{notes.strip()}\n" if notes.strip() else ""))
    js.write_text(json.dumps(result, indent=2) + "\n")
    return md, js, png


def rejections_at(rev: str):
    """``melscribe/intent/rejections.py`` as it was at commit ``rev``, imported as a module of its own (that file
    alone, with the package's other modules as they are now: it imports none of them but ``words`` and its
    helpers at the revisions measured)."""
    import importlib.util

    source = subprocess.run(["git", "show", f"{rev}:melscribe/intent/rejections.py"], cwd=Path(__file__).parents[1],
                            capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"rejections_{rev}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"rejections_{rev}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return module
