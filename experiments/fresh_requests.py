"""A run folder for GPL on new rows: requests the MNRL stage never saw, with that stage's model.

    python experiments/fresh_requests.py --shared RUN --out FRESH            # 3 new template requests per track
    melscribe train --preset offline --recipe mnrl+gpl --stage mine --out FRESH --no-publish
    python experiments/recipes.py --shared FRESH --out DIR "mnrl+gpl:label_teacher=fused,lr=5e-6"

``FRESH/pairs/`` holds only new template requests (GPL step 1, :func:`melscribe.train.queries.template_requests`
with another seed) for the same training tracks as RUN (the same held-out clips stay out), and ``FRESH/mnrl/``
is RUN's MNRL bi-encoder. The GPL stages that follow (mine, label, distil) then work on requests the bi-encoder
has not been trained on, as in GPL, where the generated queries are new to the model being adapted, instead of
a second pass over the MNRL stage's own requests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.config import use_offline_mode_without_hub  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, required=True, help="run folder of the offline preset (its mnrl/)")
    parser.add_argument("--out", type=Path, required=True, help="the new run folder")
    parser.add_argument("--per-track", type=int, default=3, help="new template requests per training track")
    parser.add_argument("--seed-offset", type=int, default=1000,
                        help="the templates' seed is the preset's seed plus this (0 would repeat the MNRL stage's)")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    use_offline_mode_without_hub()

    from melscribe.pairs import build_pairs, write_beir
    from melscribe.train.pipeline import TrainingRun
    from melscribe.train.presets import get_preset
    from melscribe.train.queries import template_requests

    if not args.seed_offset:
        raise SystemExit("--seed-offset 0 writes the MNRL stage's own requests again")
    if not (args.shared / "mnrl" / "model").is_dir():
        raise SystemExit(f"{args.shared} has no mnrl/model: train its stage mnrl first")
    if (args.out / "pairs").exists():
        raise SystemExit(f"{args.out} already has pairs/")
    cfg = get_preset("offline")
    records, _ = TrainingRun(args.out, cfg, args.data_dir).records()
    fresh = template_requests(records, args.per_track, seed=cfg.seed + args.seed_offset)
    ds = build_pairs(fresh, seed=cfg.seed, docs_per_query=cfg.pairs.docs_per_query,
                     drop_empty=cfg.pairs.drop_empty)
    write_beir(ds, args.out / "pairs", split="train")
    shutil.copytree(args.shared / "mnrl", args.out / "mnrl", ignore=shutil.ignore_patterns("checkpoints"))
    seconds = json.loads((args.shared / "run.json").read_text()).get("seconds", {})
    (args.out / "run.json").write_text(json.dumps({"seconds": {k: seconds[k] for k in ("mnrl",) if k in seconds},
                                                   "fresh_requests": {"per_track": args.per_track,
                                                                      "seed_offset": args.seed_offset}}, indent=2))
    print(f"{len(ds.queries)} new requests over {len(ds.corpus)} descriptor sets written to {args.out / 'pairs'}")


if __name__ == "__main__":
    main()
