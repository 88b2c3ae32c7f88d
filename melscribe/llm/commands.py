"""``melscribe rephrase``: requests written by a language model behind any OpenAI-compatible endpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Requests written by a language model, through the `openai` client and any OpenAI-compatible endpoint
(the hosted API, vLLM, llama.cpp's server, Ollama). Two jobs:

  rephrase  captions -> recommendation requests ("I'm looking for ..."), written as a CSV in the
            mc_rephrased.csv layout (caption_id,caption,caption_rephrased); by default the MC test
            captions of the data directory, or any CSV with a caption column (--input).
  generate  requests from the descriptor sets of training clips (GPL's query generation, the alternative
            to the template requests of `melscribe train`; there: --preset offline-llm, or
            --set pairs.query_generation=llm --set llm.base_url=URL --set llm.model=NAME).

Every answer is appended to a cache (JSONL, fsync'ed per row, keyed by model, prompt and input), so a
killed run resumes where it stopped without asking twice. 429, 5xx, timeouts and malformed replies are
retried with exponential backoff; 401/403/404 stop the run at once. Exit status: 0 when every row was
answered, 1 when some failed (listed at the end), 2 on an error that stops the run.
The key comes from $OPENAI_API_KEY (any placeholder works for local servers), the endpoint from
--base-url or $OPENAI_BASE_URL."""

EPILOG = """\
examples:
  # a local llama.cpp server with SmolLM2-135M-Instruct (see the README), 5 MC captions:
  python -m llama_cpp.server --model "$(python -c 'from melscribe.llm.local import smollm2_gguf; print(smollm2_gguf())')" \\
      --model_alias smollm2 --host 127.0.0.1 --port 8011 --n_threads 1 --n_threads_batch 1 &
  melscribe rephrase rephrase --base-url http://127.0.0.1:8011/v1 --model smollm2 --limit 5 --out mc_smollm2.csv
  # the hosted API:
  OPENAI_API_KEY=... melscribe rephrase generate --model gpt-4o-mini --per-track 3 --out requests.csv"""


def add_endpoint_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("endpoint")
    g.add_argument("--base-url", default="", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8011/v1 "
                                                  "(default: $OPENAI_BASE_URL, else the hosted OpenAI API)")
    g.add_argument("--model", required=True, help="model name as the endpoint knows it")
    g.add_argument("--concurrency", type=int, default=4, help="requests in flight at most (default 4)")
    g.add_argument("--max-retries", type=int, default=5,
                   help="retries per row on 429, 5xx, timeouts and malformed replies (default 5)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    g.add_argument("--backoff", type=float, default=1.0,
                   help="first wait before a retry in seconds, doubled at each retry (default 1, at most 30)")
    g.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    g.add_argument("--max-tokens", type=int, default=160, help="longest reply in tokens (default 160)")
    g = p.add_argument_group("files")
    g.add_argument("--out", required=True, type=Path, help="output CSV (written atomically at the end)")
    g.add_argument("--cache", type=Path,
                   help="answers cache, JSONL (default: $MELSCRIBE_HOME/llm-cache/<job>.jsonl); "
                        "rerun with the same cache to resume")
    g.add_argument("--prompt", help="prompt file (default: the packaged one of the job, melscribe/llm/prompts/)")
    g.add_argument("--data-dir", help="data directory (default: $MELSCRIBE_DATA)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_job_parsers(sub) -> None:
    """The ``rephrase`` and ``generate`` sub-commands, on a sub-parser collection."""
    p = sub.add_parser("rephrase", help="captions -> requests, CSV in the mc_rephrased.csv layout",
                       description="Rewrite captions as recommendation requests. Output columns: "
                                   "caption_id,caption,caption_rephrased (rows that failed are left out "
                                   "and listed).", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path,
                   help="CSV with a caption column and an id column (caption_id, track_id, ytid or id); "
                        "default: the MC test captions, <data>/lp-musiccaps-mc/mc_rephrased.csv")
    p.add_argument("--limit", type=int, help="only the first N captions")
    add_endpoint_arguments(p)
    p.set_defaults(func=cmd_rephrase, job="rephrase")

    p = sub.add_parser("generate", help="descriptor sets of training clips -> requests (GPL query generation)",
                       description="Write requests from random subsets (1 to 6 descriptors, seeded) of the "
                                   "descriptors of training clips. Output columns: "
                                   "track_id,source,descriptors,asked,request.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", action="append",
                   help="training source: musiccaps (train split, default), lp-musiccaps-mtt, lp-musiccaps-msd "
                        "(repeatable)")
    p.add_argument("--per-track", type=int, default=3, help="requests per clip (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the descriptor subsets (default 0)")
    p.add_argument("--limit", type=int, help="only the first N clips")
    add_endpoint_arguments(p)
    p.set_defaults(func=cmd_generate, job="generate")


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub = p.add_subparsers(dest="job", required=True, metavar="JOB")
    add_job_parsers(sub)
    return p


def build_parser(prog: str = "melscribe rephrase") -> argparse.ArgumentParser:
    """A stand-alone parser (for ``data_prep/rephrase.py``), the same as ``melscribe rephrase``."""
    return configure_parser(argparse.ArgumentParser(prog=prog, description=DESCRIPTION,
                                                    formatter_class=argparse.RawDescriptionHelpFormatter))


def register(sub) -> None:
    """Add the ``rephrase`` command to the ``melscribe`` parser."""
    p = sub.add_parser("rephrase", help="requests written by an LLM: rephrase captions, or generate from descriptors",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure_parser(p)


def settings_from_args(args: argparse.Namespace):
    from melscribe.llm.client import LLMSettings

    return LLMSettings(model=args.model, base_url=args.base_url, concurrency=args.concurrency,
                       max_retries=args.max_retries, timeout=args.timeout, backoff=args.backoff,
                       temperature=args.temperature, max_tokens=args.max_tokens)


def _cache_path(args: argparse.Namespace) -> Path:
    from melscribe.config import home_dir

    return args.cache or home_dir() / "llm-cache" / f"{args.job}.jsonl"


def _finish(report, out: Path, rows: int) -> int:
    print(f"{report.summary()}; {rows} rows -> {out}", file=sys.stderr)
    if report.failures:
        print(f"{len(report.failures)} rows failed (rerun the same command to retry only those):", file=sys.stderr)
        print("\n".join(report.failure_lines()), file=sys.stderr)
        return 1
    return 0


def cmd_rephrase(args: argparse.Namespace) -> int:
    from melscribe.llm.jobs import mc_captions, read_captions, rephrase_captions, write_rephrased_csv

    rows = read_captions(args.input, args.limit) if args.input else mc_captions(args.data_dir, args.limit)
    done, report = rephrase_captions(rows, settings_from_args(args), _cache_path(args),
                                     prompt=args.prompt or "rephrase", progress=not args.no_progress)
    write_rephrased_csv(args.out, done)
    return _finish(report, args.out, len(done))


def cmd_generate(args: argparse.Namespace) -> int:
    from melscribe.data import load_training_records
    from melscribe.llm.jobs import llm_requests, write_requests_csv

    records = load_training_records(args.source or ["musiccaps"], args.data_dir)
    records = records[: args.limit] if args.limit is not None else records
    out, report = llm_requests(records, args.per_track, settings_from_args(args), _cache_path(args), seed=args.seed,
                               prompt=args.prompt or "generate", progress=not args.no_progress)
    write_requests_csv(args.out, out)
    return _finish(report, args.out, len(out))


def main(argv: list[str] | None = None, prog: str = "melscribe rephrase") -> int:
    """Run a job from the command line (used by ``data_prep/rephrase.py``)."""
    from melscribe.errors import MelscribeError

    args = build_parser(prog).parse_args(argv)
    try:
        return args.func(args)
    except MelscribeError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
