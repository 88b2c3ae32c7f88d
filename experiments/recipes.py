"""Train the bi-encoder with several recipes that share their first stages, each in a run folder of its own.

    python experiments/recipes.py --shared RUN --out DIR gpl mnrl+gpl joint "mnrl+gpl:label.margin_denoise=true"

Each recipe (``NAME`` or ``NAME:SETTING=VALUE,...`` with settings of the offline preset) gets ``DIR/<recipe>``.
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


def parse_recipe(spec: str) -> tuple[str, dict]:
    """``NAME`` or ``NAME:SETTING=VALUE,...`` → the recipe and its settings by dotted name."""
    from melscribe.train.settings import parse_settings

    recipe, _, rest = spec.partition(":")
    return recipe, parse_settings([item for item in rest.split(",") if item])


def reads(stage: str, name: str) -> bool:
    """Whether ``stage``'s output depends on setting ``name`` (dotted)."""
    from melscribe.train.recipes import STAGE_SETTINGS

    return any(name == s or name.startswith(s + ".") for s in STAGE_SETTINGS[stage])


def seed_run_folder(shared: Path, out: Path, overrides: dict) -> None:
    """Copy the shared stages' outputs of ``shared`` into ``out`` (those it has), with their recorded seconds,
    up to the first stage that reads an overridden field."""
    out.mkdir(parents=True, exist_ok=True)
    info = json.loads((shared / "run.json").read_text()) if (shared / "run.json").is_file() else {}
    seconds = {}
    for stage, names in SHARED.items():
        if any(reads(stage, name) for name in overrides):
            break
        if stage == "teacher" and overrides.get("label.teacher", "cross-encoder") != "cross-encoder":
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
    parser.add_argument("recipes", nargs="+", help="recipe names, each optionally with :SETTING=VALUE,... settings (e.g. mnrl.lr=3e-5)")
    parser.add_argument("--shared", type=Path, required=True, help="run folder whose shared stages are reused")
    parser.add_argument("--out", type=Path, required=True, help="parent folder of the recipes' run folders")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    use_offline_mode_without_hub()

    from melscribe.train.pipeline import train
    from melscribe.train.presets import get_preset

    for spec in args.recipes:
        recipe, overrides = parse_recipe(spec)
        cfg = get_preset("offline", {"recipe": recipe, "fast.student": "none", **overrides})
        out = args.out / spec.replace(":", "_").replace("=", "-").replace(",", "_")
        seed_run_folder(args.shared, out, overrides)
        print(f"== {spec} → {out}", flush=True)
        train(cfg, out, args.data_dir)


if __name__ == "__main__":
    main()
