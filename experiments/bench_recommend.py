"""Benchmark of melscribe's serving path per encoder backend: encoding, index build, ``recommend()`` latency,
ANN recall, HTTP throughput against a real ``melscribe serve``.

    python experiments/bench_recommend.py [--backends onnx-int8 onnx torch static] [--sizes 100000 1000000]
        [--http-levels 1 8 32] [--http-requests 400] [--model PATH] [--quick] [--kinds auto ivf hnsw] [--out PATH]

Writes ``experiments/results/bench_recommend.{md,json,png}`` (``bench_recommend_quick.*`` with ``--quick``).
The logic lives in ``experiments/benchmark.py``. Full run: MusicCaps, 100k and 1M descriptor sets, for each
embedding space (torch and onnx share one; static has its own) about 10–15 minutes on 2 CPU cores, plus the
HTTP load (3 levels × 400 requests per backend); ``--sizes 100000`` skips 1M, ``--sizes`` alone skips the
synthetic catalogs, ``--http-levels`` alone the HTTP stage; ``--quick``: 1,000 MusicCaps clips, 30k and
100k sets, 50 requests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import HTTP_LEVELS, HTTP_REQUESTS, run_benchmark, write_report  # noqa: E402

from melscribe.config import data_dir, use_offline_mode_without_hub  # noqa: E402
from melscribe.encoding.encoder import BACKENDS  # noqa: E402
from melscribe.serve.index import KINDS  # noqa: E402

RESULTS = Path(__file__).parent / "results"

NOTES = """
## Notes

- **Backends.** `torch` is the sentence-transformers model; `onnx` the same transformer exported once with
  `torch.onnx`, fused by onnxruntime's transformer optimiser and run by onnxruntime with melscribe's own
  tokenisation, pooling and normalisation (embeddings within 1e-4 cosine of torch's, so both share an index:
  its build is done once, by the first of the two); `onnx-int8` (the serving default) the same export with
  per-channel int8 weights except the feed-forward down-projections, kept fp32 (its R@10 against torch:
  `experiments/results/backends.md`), with its own index (its embeddings are close to torch's, not equal);
  it runs every text alone, several at a time on single-threaded runs, as activations are quantised per
  run (`experiments/results/encode_batches.md`); `static` the static-embedding
  student published with the bi-encoder (`melscribe train`, stage `fast`), with its own embeddings and
  indexes; `student` the published student whichever its kind (a `layers-N` transformer runs on onnx). A
  single request runs on one thread with torch, on every core (spinning threads) with onnx and onnx-int8.
- **Synthetic embeddings for 100k and 1M.** Encoding 1M descriptor sets with MiniLM on 2 CPU cores takes
  hours (see the estimate in the build table), so the synthetic sets are not encoded: each draws its
  descriptors from the real MusicCaps vocabulary (set sizes from MusicCaps) and its embedding is a
  Dirichlet(1)-weighted sum of the real embeddings of those descriptors (by the backend's encoder),
  normalised. The geometry table compares them with really encoded MusicCaps sets. Requests are real
  (MC_reco) and really encoded.
- **Index.** Exact `IndexFlatIP` up to 20,000 sets; above, HNSW (M 32, efConstruction 128, efSearch 512)
  up to 500,000 sets and an inverted file beyond (IVF, about 8√n k-means lists, 160 scanned per request),
  both over 8-bit scalar-quantised vectors whose best 2×k candidates are re-scored exactly
  (`IndexRefineFlat`). A single query is searched on one OpenMP thread.
- **Latency** is per request, one at a time. "search" is `Recommender.search` right after encoding the
  request: faiss with 4×k candidate sets, the mapping of sets to tracks, de-duplication and the
  descriptor-by-descriptor explanation.
- **HTTP.** `melscribe serve` (this checkout) runs in a subprocess on 127.0.0.1 over the MusicCaps catalog
  and index of the run; an asyncio client (httpx) keeps `concurrency` requests in flight until the bounded
  number of requests is answered, after an untimed warm-up. Client and server share the machine's cores.
  The server encodes each batch of waiting requests on one thread (with onnx-int8: each request in a run of
  its own, two runs at a time) while it ranks the previous batch on another; its onnxruntime threads sleep
  between operators (`serve` sets `MELSCRIBE_ONNX_SPIN=0` unless
  given): the row "spinning threads" is the same server with them spinning, as `recommend()` runs them.
- **Load.** The header gives the load averages. Above the number of cores (other jobs, e.g. training, ran
  alongside on this 2-core machine) every figure is inflated.
"""


def main() -> None:
    """Parse the arguments, run the benchmark, write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=["onnx-int8", "onnx", "torch", "static"],
                   help="encoder backends to measure (default: onnx-int8 onnx torch static; one that cannot load is skipped)")
    p.add_argument("--model", help="model name or folder (default: the trained bi-encoder, else all-MiniLM-L6-v2)")
    p.add_argument("--quick", action="store_true", help="smaller sizes (1k MusicCaps clips, 30k and 100k sets)")
    p.add_argument("--sizes", nargs="*", type=int, help="synthetic catalog sizes (default 100000 1000000; none: skip)")
    p.add_argument("--musiccaps-limit", type=int, help="use only the first N MusicCaps clips")
    p.add_argument("--http-levels", nargs="*", type=int, default=list(HTTP_LEVELS),
                   help="HTTP concurrency levels (default 1 8 32; none: skip the HTTP stage)")
    p.add_argument("--http-requests", type=int, default=HTTP_REQUESTS, help="timed requests per HTTP level (default 400)")
    p.add_argument("--data-dir", help="data directory (default: $MELSCRIBE_DATA)")
    p.add_argument("--requests", type=int, default=200, help="requests timed per catalog (default 200)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=["auto"],
                   help="index kinds built for the synthetic catalogs; targets use the first (default: auto)")
    p.add_argument("--out", type=Path, help="output path without suffix (default: experiments/results/bench_recommend)")
    args = p.parse_args()
    use_offline_mode_without_hub()
    result = run_benchmark(data_dir(args.data_dir), model=args.model, backends=args.backends, quick=args.quick,
                           n_requests=args.requests, kinds=args.kinds, sizes=args.sizes,
                           musiccaps_limit=args.musiccaps_limit, http_levels=args.http_levels,
                           http_requests=args.http_requests)
    out = args.out or RESULTS / ("bench_recommend_quick" if args.quick else "bench_recommend")
    md, js, png = write_report(result, out, NOTES)
    print(md.read_text())
    print(f"wrote {md}, {js} and {png}")


if __name__ == "__main__":
    main()
