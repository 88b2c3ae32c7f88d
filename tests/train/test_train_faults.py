"""Fault injection into training: a run killed with SIGKILL resumes from its last checkpoint and its finished
stages are not redone; a checkpoint whose state was cut short is not resumed from."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import pytest

from subprocess_support import TESTS, python, wait_for_pause


# --- training killed with SIGKILL resumes from its last checkpoint; finished stages are not redone ----------

TRAIN_CONFIG = {"recipe": "mnrl", "pairs.synthetic_per_track": 1, "mine.miners": ["bm25"], "mine.depth": 8,
                "mine.negatives_per_query": 2, "mnrl.hard_negatives": True, "mnrl.batch_size": 8, "mnrl.max_steps": 3,
                "trainer.save_steps": 1, "pairs.heldout_tracks": 8, "fast.student": "none", "trainer.bf16": False}

TRAINER = textwrap.dedent("""
    import json, os, sys
    os.environ["HF_HUB_OFFLINE"] = "1"
    from tiny_fixtures import tiny_records
    from melscribe.train.pipeline import train
    from melscribe.train.presets import get_preset

    train(get_preset("offline", json.loads(sys.argv[3])), sys.argv[2], records=tiny_records(24))
""")


@pytest.mark.subprocess
def test_training_killed_after_a_checkpoint_resumes_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import TrainerCallback

    from melscribe.train.checkpoints import last_checkpoint
    from melscribe.train.pipeline import TrainingRun, train
    from melscribe.train.presets import get_preset

    from tiny_fixtures import tiny_records

    run, checkpoints = tmp_path / "run", tmp_path / "run" / "mnrl" / "checkpoints"
    pause = tmp_path / "paused"
    proc = python(TRAINER, TESTS, run, json.dumps(TRAIN_CONFIG), pause_at="checkpoint-saved", pause_file=pause)
    wait_for_pause(proc, pause)  # the first checkpoint is on disk, the training stopped right after it
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    resume_from = last_checkpoint(checkpoints)
    assert resume_from is not None and not (run / "mnrl" / "model").exists(), "the kill came too late"
    step = int(resume_from.rsplit("-", 1)[1])
    assert step < TRAIN_CONFIG["mnrl.max_steps"]
    finished = {f: (run / f).stat().st_mtime_ns for f in ("pairs/qrels/train.tsv", "negatives.jsonl")}

    def not_again(self):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(TrainingRun, "_stage_pairs", not_again)
    monkeypatch.setattr(TrainingRun, "_stage_mine", not_again)
    seen = {"steps": []}

    class FirstSteps(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            seen["steps"].append(state.global_step)

    original = SentenceTransformerTrainer.train

    def recording_train(self, *args, **kwargs):
        seen["resume_from"] = kwargs.get("resume_from_checkpoint")
        self.add_callback(FirstSteps())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerTrainer, "train", recording_train)
    final = train(get_preset("offline", TRAIN_CONFIG), run, records=tiny_records(24))
    assert seen["resume_from"] == resume_from
    assert seen["steps"] == list(range(step, TRAIN_CONFIG["mnrl.max_steps"]))  # only the steps not yet done
    assert {f: (run / f).stat().st_mtime_ns for f in finished} == finished
    assert (final / "modules.json").is_file() and (final / "fusion.json").is_file()


def test_a_checkpoint_whose_state_was_cut_short_is_not_resumed_from(tmp_path: Path) -> None:
    from melscribe.train.checkpoints import last_checkpoint

    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_st')):  # a kill while writing checkpoint-4
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
