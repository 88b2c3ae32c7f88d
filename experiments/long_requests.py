"""Long requests: truncation (today), a longer window, and windows pooled, on long variants of the track-level
requests and on the ordinary splits; encoding latency per request. The logic is in
``melscribe/evaluation/long_requests.py``.

    python experiments/long_requests.py                      # writes experiments/results/long_requests.md/.json
    python experiments/long_requests.py --n 100 --out /tmp/lr   # a quick run
    python experiments/long_requests.py --latency-only          # re-time the encoding, keep the recall figures
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.config import use_offline_mode_without_hub  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model name or folder (default: the trained bi-encoder, else the packaged MiniLM)")
    parser.add_argument("--backend", default="onnx", help="backend of the quality figures (default onnx: torch's embeddings)")
    parser.add_argument("--windows", nargs="+", type=int, default=[256, 96],
                        help="windows to measure at (the model's own is always first)")
    parser.add_argument("--n", type=int, default=500, help="requests per split made long (per variant)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-backends", nargs="+", default=["onnx-int8", "onnx"])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=RESULTS / "long_requests", help="output stem")
    parser.add_argument("--latency-only", action="store_true",
                        help="measure the latency again and keep the recall figures of OUT.json (their command and "
                             "provenance are kept beside the new ones)")
    args = parser.parse_args()
    use_offline_mode_without_hub()

    from melscribe.evaluation.long_requests import evaluate, format_report, retime
    from melscribe.fileio import write_text_atomic

    command = "python " + " ".join(sys.argv)
    if args.latency_only:
        previous = json.loads(args.out.with_suffix(".json").read_text())
        result = retime(previous, args.data_dir, model=args.model, latency_backends=args.latency_backends,
                        command=command)
        command = previous["command"]
    else:
        result = evaluate(args.data_dir, model=args.model, backend=args.backend, windows=args.windows, n=args.n,
                          seed=args.seed, latency_backends=args.latency_backends)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(dict(result, command=command), indent=2))
    write_text_atomic(args.out.with_suffix(".md"), format_report(result, command))
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
