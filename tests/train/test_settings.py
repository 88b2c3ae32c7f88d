"""The training settings (``melscribe/train/settings.py``): sections by stage, names, types, ranges, and the
former flat names; the recipe table (``melscribe/train/recipes.py``): stages and schedules per recipe."""

import json
import warnings

import pytest

from melscribe.errors import InvalidRequestError
from melscribe.train.presets import PRESETS, get_preset
from melscribe.train.recipes import RECIPE_TABLE, STAGE_SETTINGS, stage_settings
from melscribe.train.schedule import Schedule
from melscribe.train.settings import (FLAT_NAMES, MNRLSettings, TrainConfig, canonical_name,
                                      parse_settings, setting_types)


@pytest.mark.parametrize("setting, message", [
    ("mnrl.max_steps=abc", "expected a whole number"),
    ("trainer.bf16=maybe", "expected true or false"),
    ("distil.lr=-1", "distil.lr=-1.0: must be positive"),
    ("mnrl.batch_size=0", "mnrl.batch_size=0: must be at least 1"),
    ("distil.similarity=foo", "choose one of cos_sim, dot"),
    ("recipe=nosuch", "choose one of mnrl, gpl"),
    ("nosuch=1", "NAME one of recipe, seed, pairs.sources"),
    ("mnrl.nosuch=1", "NAME one of recipe, seed, pairs.sources"),
    ("trainer.warmup_ratio=1.5", "must lie in [0, 1)"),
    ("lr=-1", "distil.lr=-1.0: must be positive"),  # a former flat name, mapped
])
def test_train_settings_are_typed_and_checked(setting: str, message: str, capsys) -> None:
    from melscribe.cli import main

    assert main(["train", "--set", setting, "--show-config"]) == 2
    assert message in capsys.readouterr().err


def test_every_setting_can_be_set_by_name(capsys) -> None:
    from melscribe.cli import main

    assert main(["train", "--set", "recipe=gpl", "--set", "seed=1", "--set", "mine.queries=none",
                 "--set", "trainer.bf16=false", "--set", "mine.miners=bm25,tfidf", "--set", "distil.lr=3e-5",
                 "--show-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["recipe"], cfg["seed"], cfg["mine"]["queries"], cfg["trainer"]["bf16"], cfg["mine"]["miners"],
            cfg["distil"]["lr"]) == ("gpl", 1, None, False, ["bm25", "tfidf"], 3e-5)
    assert main(["train", "--recipe", "mnrl", "--set", "recipe=gpl", "--show-config"]) == 2
    assert "disagree" in capsys.readouterr().err


def test_the_former_flat_names_still_work_with_a_warning(capsys) -> None:
    from melscribe.cli import main

    assert main(["train", "--set", "mnrl_lr=3e-5", "--set", "teacher_loss=bce", "--show-config"]) == 0
    out, err = capsys.readouterr()
    cfg = json.loads(out)
    assert cfg["mnrl"]["lr"] == 3e-5 and cfg["teacher"]["loss"] == "bce"
    assert err.splitlines() == [
        "melscribe train: training setting 'mnrl_lr' is now named 'mnrl.lr'; the flat name will be removed in a later release",
        "melscribe train: training setting 'teacher_loss' is now named 'teacher.loss'; the flat name will be removed "
        "in a later release"]
    with pytest.warns(FutureWarning, match="'mnrl_lr' is now named 'mnrl.lr'"):
        assert parse_settings(["mnrl_lr=3e-5"]) == {"mnrl.lr": 3e-5}
    # every flat name of the former configuration maps to an existing setting of the same type
    types = setting_types()
    assert len(FLAT_NAMES) == 53 and set(FLAT_NAMES.values()) <= set(types)
    assert set(FLAT_NAMES.values()) | {"recipe", "seed"} == set(types), "a setting without its former name"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert canonical_name("mnrl.lr") == "mnrl.lr" and canonical_name("mnrl-lr", warn=False) == "mnrl.lr"
    with pytest.warns(FutureWarning):
        assert TrainConfig().with_settings({"mnrl_denoise": True}).mnrl.denoise is True


def test_sections_check_their_values_when_made() -> None:
    with pytest.raises(InvalidRequestError, match=r"mnrl.lr=0: must be positive"):
        MNRLSettings(lr=0)
    with pytest.raises(InvalidRequestError, match=r"teacher.denoise_overlap=1.5: must lie in \(0, 1\]"):
        TrainConfig().with_settings({"teacher.denoise_overlap": 1.5})
    with pytest.raises(InvalidRequestError, match="unknown training setting 'mnrl.nosuch'"):
        TrainConfig().with_settings({"mnrl.nosuch": 1})
    cfg = TrainConfig().with_settings({"mine.miners": ["bm25"]})  # a list, as JSON gives
    assert cfg.mine.miners == ("bm25",) and hash(cfg)
    assert parse_settings(["trainer.max_seq_length=none"]) == {"trainer.max_seq_length": None}


def test_presets_are_config_objects_with_every_section() -> None:
    paper = PRESETS["paper"]
    assert (paper.recipe, paper.teacher.loss, paper.trainer.max_seq_length, paper.distil.max_steps,
            paper.mine.queries) == ("gpl", "bce", 512, 140_000, None)
    assert PRESETS["offline"] == TrainConfig()
    assert PRESETS["offline-llm"].llm.model == "smollm2" and PRESETS["offline-llm"].pairs.query_generation == "llm"
    assert get_preset("offline", {"mnrl.lr": 1e-5}).mnrl == MNRLSettings(lr=1e-5)


@pytest.mark.parametrize("recipe, stages", [
    ("mnrl", ["pairs", "mnrl", "fusion", "fast"]),
    ("gpl", ["pairs", "mnrl", "mine", "teacher", "label", "distil", "fusion", "fast"]),
    ("mnrl+joint", ["pairs", "mnrl", "mine", "teacher", "label", "distil", "fusion", "fast"]),
])
def test_each_recipe_names_its_stages(recipe: str, stages: list[str]) -> None:
    cfg = TrainConfig(recipe=recipe)
    assert RECIPE_TABLE[recipe].stages(cfg) == stages
    # no MNRL model needed when neither the teacher nor a miner starts from it; no teacher with a fused label teacher
    other = cfg.with_settings({"teacher.base": "cross-encoder/x", "mine.miners": ("bm25",), "label.teacher": "fused",
                               "fast.student": "none"})
    if recipe == "mnrl":
        assert RECIPE_TABLE[recipe].stages(other.with_settings({"mnrl.hard_negatives": True})) == \
            ["pairs", "mine", "mnrl", "fusion"]
    else:
        assert RECIPE_TABLE[recipe].stages(other) == ["pairs", "mine", "label", "distil", "fusion"]


def test_the_distil_stage_schedule_follows_the_recipe() -> None:
    cfg = TrainConfig().with_settings({"mnrl.batch_size": 64, "mnrl.epochs": 2.0, "mnrl.lr": 5e-5,
                                       "distil.batch_size": 32, "distil.epochs": 1.0, "distil.lr": 2e-5})
    assert RECIPE_TABLE["gpl"].distil_schedule(cfg) == Schedule(32, 1.0, -1, 2e-5)
    assert RECIPE_TABLE["mnrl+gpl"].distil_schedule(cfg) == Schedule(32, 1.0, -1, 2e-5)
    assert RECIPE_TABLE["joint"].distil_schedule(cfg) == Schedule(64, 2.0, -1, 5e-5)  # MNRL's, from the base model
    assert RECIPE_TABLE["mnrl+joint"].distil_schedule(cfg) == Schedule(64, 1.0, -1, 2e-5)  # MNRL's batches


def test_stage_settings_are_what_each_stage_reads() -> None:
    cfg = TrainConfig()
    mnrl = stage_settings(cfg, "mnrl")
    assert mnrl["mnrl.lr"] == 5e-5 and mnrl["trainer.max_seq_length"] == 96 and mnrl["seed"] == 42
    assert not any(k.startswith(("teacher.", "distil.", "fast.")) for k in mnrl)
    assert set(stage_settings(cfg, "mine")) == {"seed", "mine.miners", "mine.depth", "mine.negatives_per_query",
                                                "mine.queries"}
    names = set(cfg.flat())
    for stage, selected in STAGE_SETTINGS.items():
        for s in selected:
            assert s in names or any(n.startswith(s + ".") for n in names), f"{stage}: no setting {s}"
