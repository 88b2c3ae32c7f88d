"""``melscribe train``: the whole pipeline, or one stage of it."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from melscribe.errors import InvalidRequestError
from melscribe.train.presets import PRESETS
from melscribe.train.recipes import RECIPES
from melscribe.train.settings import parse_settings


def cmd_train(args: argparse.Namespace) -> None:
    from melscribe.config import home_dir, trained_model_path
    from melscribe.train.pipeline import TrainingRun, restart_run, train
    from melscribe.train.presets import get_preset

    with warnings.catch_warnings(record=True) as caught:  # former flat names: one plain line each
        warnings.simplefilter("always")
        overrides = parse_settings(args.set or [])
    for w in caught:
        print(f"melscribe train: {w.message}", file=sys.stderr)
    for name in ("recipe", "seed"):  # --recipe and --seed are shorthands of --set recipe=... and --set seed=...
        given = getattr(args, name)
        if given is not None and overrides.setdefault(name, given) != given:
            raise InvalidRequestError(f"--{name} {given} and --set {name}={overrides[name]} disagree")
    cfg = get_preset(args.preset, overrides)
    out = Path(args.out) if args.out else home_dir() / "runs" / f"{args.preset}-{cfg.recipe}-seed{cfg.seed}"
    if args.show_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return
    if args.restart:
        restart_run(out)
    if args.stage:
        TrainingRun(out, cfg, args.data_dir).run(args.stage)
        print(f"stage {args.stage} done in {out}")
        return
    publish = None if args.no_publish else trained_model_path()
    train(cfg, out, args.data_dir, publish_to=publish)


def register(sub) -> None:
    """Add the ``train`` sub-command to the ``melscribe`` parser."""
    from melscribe.train.pipeline import STAGES

    p = sub.add_parser(
        "train", help="train the request → descriptor-set bi-encoder (GPL recipe)",
        description="Train the bi-encoder. Recipes: mnrl (in-batch negatives; the offline default), gpl (GPL: pairs → "
                    "hard-negative mining → music cross-encoder → margins → MarginMSE distillation from the base "
                    "model), mnrl+gpl (MNRL, then GPL from it), joint (MNRL + MarginMSE summed on the same batches), "
                    "mnrl+joint (MNRL, then the joint objective). Each stage caches its output in the run folder; a "
                    "rerun resumes.",
        epilog="Example: melscribe train --preset offline --data-dir ../shared/data")
    p.add_argument("--preset", choices=sorted(PRESETS), default="offline",
                   help="hyper-parameters: offline (2 CPU cores, no hub), offline-llm (the same with requests "
                        "written by an LLM endpoint, see `melscribe rephrase`) or paper (GPU + hub)")
    p.add_argument("--recipe", choices=RECIPES, help="override the preset's recipe")
    p.add_argument("--seed", type=int, help="override the preset's seed")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override any setting by its section and name, e.g. mnrl.lr=3e-5 or teacher.loss=bce "
                        "(repeatable; --show-config lists them)")
    p.add_argument("--stage", choices=STAGES, help="run only this stage (and what it needs)")
    p.add_argument("--out", help="run folder (default: $MELSCRIBE_HOME/runs/<preset>-<recipe>-seed<seed>)")
    p.add_argument("--no-publish", action="store_true",
                   help="do not copy the model to $MELSCRIBE_HOME/models/bi-encoder (used by recommend)")
    p.add_argument("--show-config", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--restart", action="store_true",
                   help="delete the run folder's finished stages and train anew (a rerun with other settings for a "
                        "finished stage is refused without it)")
    p.add_argument("--data-dir", help="data directory (default: $MELSCRIBE_DATA)")
    p.set_defaults(func=cmd_train)
