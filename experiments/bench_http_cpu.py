"""Where the two cores go under HTTP load: CPU per request of the server and of the load client, idle share,
and the server's in-process stages.

    python experiments/bench_http_cpu.py [--backend onnx-int8] [--requests 1500] [--repeats 3] [--concurrency 8]
                                         [--max-batch N --out experiments/results/http_cpu_max_batch_N]

Starts ``melscribe serve`` (this checkout) over the MusicCaps catalog, sends ``--requests`` MC_reco requests
(200 distinct ones, cycled) ``--repeats`` times at ``--concurrency`` with the benchmark's httpx client, and
reads the CPU time of the server process (psutil) and of this process (the client) around each load. Then,
in this process, the same 200 requests through the server's stages one by one (each timed over all of them,
the second of two passes: the intent cache warm, as under the cycled load): ``Recommender.prepare``,
``embed_requests`` (batches of 8), ``rank_embedded``, ``Recommendation.to_dict`` and ``json.dumps``. Writes
``experiments/results/http_cpu.{md,json}``. Client and server share the machine's cores, as in
``bench_recommend.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import http_load, machine_info, musiccaps_catalog, running_server, write_measurement  # noqa: E402

from melscribe.config import trained_model_path, use_offline_mode_without_hub  # noqa: E402
from melscribe.data import load_mc_test  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "http_cpu"
DISTINCT = 200


def own_cpu() -> float:
    """CPU seconds of this process so far (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stage_costs(rec, requests: list[str], batch: int = 8) -> dict[str, float]:
    """CPU ms per request of each server stage, in this process (second of two passes)."""
    import numpy as np

    costs: dict[str, float] = {}
    for _ in range(2):
        t = time.process_time()
        prepared = [rec.prepare(r, 10) for r in requests]
        costs["prepare"] = time.process_time() - t
        t = time.process_time()
        queries = np.concatenate([rec.embed_requests(prepared[i:i + batch]) for i in range(0, len(prepared), batch)])
        costs["embed_requests (batches of 8)"] = time.process_time() - t
        t = time.process_time()
        answers = [a for i in range(0, len(prepared), batch)
                   for a in rec.rank_embedded(queries[i:i + batch], prepared[i:i + batch])]
        costs["rank_embedded"] = time.process_time() - t
        t = time.process_time()
        dicts = [[r.to_dict() for r in answer] for answer in answers]
        costs["to_dict"] = time.process_time() - t
        t = time.process_time()
        for d in dicts:
            json.dumps(d)
        costs["json.dumps"] = time.process_time() - t
    return {name: round(1000 * s / len(requests), 3) for name, s in costs.items()}


def main() -> None:
    """Parse the arguments, run the loads and the stages, write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="onnx-int8")
    p.add_argument("--model", help="model folder (default: the trained bi-encoder)")
    p.add_argument("--requests", type=int, default=1500, help="timed requests per load (default 1500)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-batch", type=int, help="the server's --max-batch (default: its own)")
    p.add_argument("--out", type=Path, help=f"output stem (default: {RESULTS})")
    p.add_argument("--data-dir")
    args = p.parse_args()
    use_offline_mode_without_hub()
    import psutil

    from melscribe.encoding.encoder import TextEncoder
    from melscribe.serve.recommend import Recommender

    info = machine_info()
    model = args.model or str(trained_model_path())
    requests = [r.text for r in load_mc_test(args.data_dir, rephrased=True)][:DISTINCT]
    cycle = [requests[i % len(requests)] for i in range(args.requests)]
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog, catalog_file = musiccaps_catalog(args.data_dir, None, work)
        rec = Recommender(TextEncoder(model, backend=args.backend), catalog, index_dir=work / "index")
        with running_server(model, args.backend, catalog_file, work / "index", work / "server.log",
                            options=["--max-batch", str(args.max_batch)] if args.max_batch else ()) as url:
            server = psutil.Process().children()[0]
            asyncio.run(http_load(url, cycle[:4 * args.concurrency], args.concurrency, 10))  # warm-up
            for _ in range(args.repeats):
                s0, c0 = server.cpu_times(), own_cpu()
                _, statuses, wall = asyncio.run(http_load(url, cycle, args.concurrency, 10))
                s1, c1 = server.cpu_times(), own_cpu()
                server_s = (s1.user + s1.system) - (s0.user + s0.system)
                client_s = c1 - c0
                cores = psutil.cpu_count()
                loads.append({"requests_per_s": round(statuses.get(200, 0) / wall, 1), "statuses": statuses,
                              "server_cpu_ms_per_request": round(1000 * server_s / args.requests, 2),
                              "client_cpu_ms_per_request": round(1000 * client_s / args.requests, 2),
                              "idle_share": round(1 - (server_s + client_s) / (cores * wall), 3)})
                print(loads[-1])
        stages = stage_costs(rec, requests)
        print(stages)
    info.update(backend=args.backend, concurrency=args.concurrency, max_batch=args.max_batch, requests=args.requests, loads=loads,
                stages_cpu_ms_per_request=stages,
                command="python experiments/bench_http_cpu.py " + " ".join(sys.argv[1:]))
    body = ["| load | requests/s | server CPU ms per request | client CPU ms per request | cores idle |",
            "|---:|---:|---:|---:|---:|"]
    body += [f"| {i} | {x['requests_per_s']} | {x['server_cpu_ms_per_request']} | {x['client_cpu_ms_per_request']} | "
             f"{100 * x['idle_share']:.1f} % |" for i, x in enumerate(loads, 1)]
    body += ["", "The server's stages in one process (CPU ms per request, the same requests; what the server spends "
             "beyond their sum goes to uvicorn, FastAPI, pydantic and the hand-offs between threads):", "",
             "| stage | CPU ms per request |", "|---|---:|"]
    body += [f"| {name} | {ms} |" for name, ms in stages.items()]
    body += [f"| sum | {sum(stages.values()):.3f} |"]
    option = f"--max-batch {args.max_batch}" if args.max_batch else ""
    write_measurement(args.out or RESULTS, info,
                      f"Where the CPU goes under HTTP load ({args.backend}, concurrency {args.concurrency}"
                      f"{', ' + option if option else ''})",
                      f"`melscribe serve{' ' + option if option else ''}` over the MusicCaps catalog; {args.requests} requests per load ({DISTINCT} "
                      "distinct MC_reco requests, cycled); client (httpx) and server share the cores.", body)


if __name__ == "__main__":
    main()
