"""The recipes: what each trains, the stages it runs, and the settings each stage's output depends on.
Functions here take a :class:`melscribe.train.settings.TrainConfig` (not imported: the settings import the
recipe names from here)."""

from __future__ import annotations

from dataclasses import dataclass

from melscribe.train.schedule import Schedule


@dataclass(frozen=True)
class Recipe:
    """What a recipe trains after the pairs: ``distil``, the objective of stage ``distil`` (``"margin-mse"``:
    GPL's MarginMSE distillation; ``"joint"``: MNRL + MarginMSE on the same batches) or ``None`` (the MNRL
    stage's model is the result); ``continues``: whether that stage starts from this run's MNRL bi-encoder
    rather than from ``trainer.student_base``."""

    distil: str | None
    continues: bool = False

    def stages(self, config) -> list[str]:
        """The stages a run of ``config`` computes, in order (stage ``fast`` last unless ``fast.student`` is
        ``none``)."""
        if self.distil is None:
            stages = ["pairs"] + (["mine"] if config.mnrl.hard_negatives else []) + ["mnrl", "fusion"]
        else:
            uses_mnrl = "mnrl" in (config.teacher.base, *config.mine.miners)
            stages = ["pairs"] + (["mnrl"] if uses_mnrl else []) + ["mine"] + (
                ["teacher"] if config.label.teacher == "cross-encoder" else []) + ["label", "distil", "fusion"]
        return stages + (["fast"] if config.fast.student != "none" else [])

    def distil_schedule(self, config) -> Schedule:
        """How stage ``distil`` optimises: the distillation's schedule; for ``joint``, MNRL's batch size, and
        MNRL's epochs and learning rate when it starts from the base model."""
        if self.distil != "joint":
            return config.distil.schedule
        if not self.continues:
            return config.mnrl.schedule
        return Schedule(config.mnrl.batch_size, config.distil.epochs, config.distil.max_steps, config.distil.lr)


#: Recipe name -> what it trains: the one place a recipe's name is read.
RECIPE_TABLE: dict[str, Recipe] = {
    "mnrl": Recipe(None),
    "gpl": Recipe("margin-mse"),
    "mnrl+gpl": Recipe("margin-mse", continues=True),
    "joint": Recipe("joint"),
    "mnrl+joint": Recipe("joint", continues=True),
}
RECIPES = tuple(RECIPE_TABLE)

#: The settings each stage's output depends on (besides the stages it reads), as dotted names or whole
#: sections: recorded with the output, and compared on a rerun (:class:`melscribe.train.pipeline.TrainingRun`).
STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    "pairs": ("seed", "pairs", "llm.base_url", "llm.model"),
    "mine": ("seed", "mine"),
    "mnrl": ("seed", "mnrl", "trainer"),
    "teacher": ("seed", "teacher", "trainer.save_steps", "trainer.bf16"),
    "label": ("seed", "label", "fusion.lexical", "distil.margin_scale"),
    "distil": ("seed", "recipe", "distil", "mnrl.batch_size", "mnrl.epochs", "mnrl.max_steps", "mnrl.lr", "trainer"),
    "fusion": ("seed", "recipe", "fusion", "pairs.heldout_tracks", "llm.base_url", "llm.model"),
    "fast": ("seed", "recipe", "fast", "trainer.max_seq_length", "trainer.save_steps", "trainer.bf16"),
}


def stage_settings(config, stage: str) -> dict[str, object]:
    """The settings ``stage`` depends on, by dotted name, as JSON values."""
    flat = config.flat()
    return {name: value for name, value in flat.items()
            if any(name == s or name.startswith(s + ".") for s in STAGE_SETTINGS[stage])}
