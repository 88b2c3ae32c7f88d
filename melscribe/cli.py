"""The ``melscribe`` command line: ``prepare``, ``evaluate``, ``train``, ``index``, ``recommend``, ``serve``,
``rephrase``, ``audio``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from melscribe.errors import MelscribeError


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (default: $MELSCRIBE_DATA)")


def cmd_prepare(args: argparse.Namespace) -> None:
    from melscribe.data import load_musiccaps, load_test_split
    from melscribe.pairs import build_pairs, write_beir

    if args.split == "train":
        records, split_name = load_musiccaps(args.data_dir, split="train"), "train"
    else:
        records, split_name = load_test_split(args.split, args.data_dir), "test"
    ds = build_pairs(records, seed=args.seed, docs_per_query=args.docs_per_query, drop_empty=args.drop_empty)
    folder = write_beir(ds, args.out, split=split_name)
    print(f"{len(ds.queries)} requests, {len(ds.corpus)} descriptor sets → {folder}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from functools import partial

    from melscribe.evaluation.protocol import evaluate_table, format_table, write_results
    from melscribe.retrieval.scorers import make_scorer

    scorers = {}
    for spec in args.scorer:
        label, _, body = spec.rpartition("=") if "=" in spec.split(":", 1)[0] else ("", "", spec)
        scorers[label or body] = partial(make_scorer, body)
    result = evaluate_table(scorers, args.splits, args.seeds, args.data_dir, drop_empty=args.drop_empty)
    print(format_table(result))
    if args.out:
        md, js = write_results(result, args.out, args.title, "melscribe " + " ".join(sys.argv[1:]))
        print(f"wrote {md} and {js}")
    for label, reason in result["skipped"].items():
        print(f"melscribe: scorer {label} could not run: {reason}", file=sys.stderr)
    return 1 if result["skipped"] else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``melscribe`` command."""
    parser = argparse.ArgumentParser(
        prog="melscribe", description="Natural-language music recommendation through song descriptors.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="build (request, descriptor-set) pairs and write them as BeIR files",
                       description="Build the paper's (request, descriptor-set) pairs and write a BeIR folder.")
    p.add_argument("split", help="train (MusicCaps train) or a test split: MC, MC_reco, MTT, MSD")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--docs-per-query", type=int, default=None,
                   help="descriptor sets per sentence (default: 3 for train, 1 for test)")
    p.add_argument("--drop-empty", action="store_true", help="drop sentences with no verbatim descriptor")
    _add_data_dir(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("evaluate", help="Recall@k table of scorers over test splits and seeds",
                       description="Evaluate scorers on test splits (mean ± std over seeds) and write the table.",
                       epilog="Scorer specs: tfidf, tfidf-bigrams (words and word pairs), bm25, all-MiniLM-L6-v2, "
                              "a model folder, dense:NAME, "
                              "fused:FOLDER, rrf:A+B, weighted:W*A+W*B, rerank:CE_FOLDER@FIRST_STAGE, "
                              "clap:NAME|FOLDER|FILE.pt (CLAP's text tower), ttmr:CHECKPOINT (TTMR/TTMR++ text tower); "
                              "prefix LABEL= to name a row. A model folder, dense: or fused: spec takes a suffix "
                              "@BACKEND (torch, onnx, onnx-int8, static, student), e.g. dense:FOLDER@onnx or "
                              "fused:FOLDER@static.")
    p.add_argument("--scorer", action="append", required=True, help="a scorer spec (repeatable)")
    p.add_argument("--splits", nargs="+", default=["MC", "MC_reco"], help="test splits: the paper's MC, MC_reco, MTT, MSD (sampled descriptor sets, "
                        "one run per seed) and the track-level track_MC, track_MC_reco (every MusicCaps clip's full "
                        "aspect list is a document, the MC test rows whole are the requests) (default: MC MC_reco)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--drop-empty", action="store_true", help="drop sentences with no verbatim descriptor")
    p.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    p.add_argument("--title", default="Recall@10 on the LP-MusicCaps test splits")
    _add_data_dir(p)
    p.set_defaults(func=cmd_evaluate)

    for module in ("melscribe.train.commands", "melscribe.serve.commands", "melscribe.llm.commands",
                   "melscribe.audio.commands"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``melscribe`` command."""
    from melscribe.config import use_offline_mode_without_hub

    use_offline_mode_without_hub()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "docs_per_query", 0) is None:
        args.docs_per_query = 3 if args.split == "train" else 1
    try:
        rc = args.func(args)  # a command may return an exit status (rephrase: 1 when some rows failed)
    except MelscribeError as e:
        print(f"melscribe: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a write that failed: say what and where, not a traceback
        from melscribe.fileio import os_error_reason

        where = f" {e.filename}" if e.filename else ""
        print(f"melscribe: error: cannot write{where}: {os_error_reason(e)}", file=sys.stderr)
        return 2
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
