"""Train the bi-encoder with several recipes that share their first stages, each in a run folder of its own.

    python experiments/recipes.py --shared RUN --out DIR gpl mnrl+gpl joint "mnrl+gpl:margin_denoise=true"

Each recipe (``NAME`` or ``NAME:FIELD=VALUE,...`` with overrides of the offline preset) gets ``DIR/<recipe>``.
Stage outputs that do not depend on the recipe (pairs, mnrl, mine, teacher, label) are copied from the run
folder ``--shared`` where it has them, with the seconds its run.json recorded, so each folder's run.json still
adds up to the preset's end-to-end time; the rest is trained here (``melscribe.train.pipeline.train``, stage
``fast`` off). Then compare them with ``python experiments/tables.py trained --run RUN --recipe-run NAME=DIR/<recipe>``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.config import use_offline_mode_without_hub  # noqa: E402

#: Stage → what it leaves in the run folder, for the stages whose output no recipe changes, in pipeline order.
SHARED = {"pairs": ["pairs"], "mnrl": ["mnrl"], "mine": ["negatives.jsonl"], "teacher": ["teacher"],
          "label": ["margins.tsv"]}
#: Stage → the preset fields (or their prefixes) it reads: overriding one retrains it and every later stage.
READS = {"pairs": ("seed", "train_sources", "docs_per_query", "drop_empty", "synthetic_per_track", "query_generation",
                   "llm_", "heldout_tracks"),
         "mnrl": ("mnrl_", "student_base", "max_seq_length", "warmup_ratio", "bf16"),
         "mine": ("miners", "mine_", "negatives_per_query"),
         "teacher": ("teacher_", "denoise_overlap"),
         "label": ("label_", "triplets_per_query")}


def parse_recipe(spec: str) -> tuple[str, dict]:
    from melscribe.train.commands import _parse_overrides

    recipe, _, rest = spec.partition(":")
    return recipe, _parse_overrides([item for item in rest.split(",") if item])


def seed_run_folder(shared: Path, out: Path, overrides: dict) -> None:
    """Copy the shared stages' outputs of ``shared`` into ``out`` (those it has), with their recorded seconds,
    up to the first stage that reads an overridden field."""
    out.mkdir(parents=True, exist_ok=True)
    info = json.loads((shared / "run.json").read_text()) if (shared / "run.json").is_file() else {}
    seconds = {}
    for stage, names in SHARED.items():
        if any(field.startswith(READS[stage]) for field in overrides):
            break
        if stage == "teacher" and overrides.get("label_teacher", "cross-encoder") != "cross-encoder":
            continue  # no cross-encoder needed
        if not all((shared / n).exists() for n in names):
            continue
        for n in names:
            src, dst = shared / n, out / n
            if dst.exists():
                continue
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints"))
            else:
                shutil.copy2(src, dst)
        if stage in info.get("seconds", {}):
            seconds[stage] = info["seconds"][stage]
    mine = out / "run.json"
    current = json.loads(mine.read_text()) if mine.is_file() else {}
    current["seconds"] = {**seconds, **current.get("seconds", {})}
    mine.write_text(json.dumps(current, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="+", help="recipe names, each optionally with :FIELD=VALUE,... overrides")
    parser.add_argument("--shared", type=Path, required=True, help="run folder whose shared stages are reused")
    parser.add_argument("--out", type=Path, required=True, help="parent folder of the recipes' run folders")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    use_offline_mode_without_hub()

    from melscribe.train.pipeline import train
    from melscribe.train.presets import get_preset

    for spec in args.recipes:
        recipe, overrides = parse_recipe(spec)
        cfg = get_preset("offline", recipe=recipe, fast_student="none", **overrides)
        out = args.out / spec.replace(":", "_").replace("=", "-").replace(",", "_")
        seed_run_folder(args.shared, out, overrides)
        print(f"== {spec} → {out}", flush=True)
        train(cfg, out, args.data_dir)


if __name__ == "__main__":
    main()
