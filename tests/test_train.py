"""The training pipeline on a few dozen MusicCaps rows for a few steps, resume after a kill, raw-logit margins."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from melscribe.pairs import read_beir
from melscribe.scorers import load_cross_encoder, make_scorer
from melscribe.train.checkpoints import last_checkpoint
from melscribe.train.presets import get_preset

TINY = dict(recipe="mnrl+gpl", mine_depth=8, negatives_per_query=4, teacher_max_pairs=96, teacher_batch_size=16, mnrl_batch_size=16,
            batch_size=16, mnrl_max_steps=3, max_steps=3, save_steps=2, heldout_tracks=12, bf16=False,
            fast_student="none")  # stage fast: tests/test_encoder.py


@pytest.fixture(scope="module")
def tiny_run(real_data_dir, tmp_path_factory):
    from melscribe.data import load_musiccaps
    from melscribe.train.pipeline import train

    out = tmp_path_factory.mktemp("run")
    records = load_musiccaps(real_data_dir, split="train")[:40]
    cfg = get_preset("offline", **TINY)
    final = train(cfg, out, records=records, publish_to=out / "published")
    return out, final, cfg, records


def test_each_stage_writes_what_the_next_reads(tiny_run):
    out, final, cfg, records = tiny_run
    ds = read_beir(out / "pairs", split="train")
    assert len(ds.queries) > 40 and all(rel for rel in ds.qrels.values())
    negatives = [json.loads(line) for line in (out / "negatives.jsonl").read_text().splitlines()]
    assert {n["query_id"] for n in negatives} == set(ds.queries)
    for n in negatives:
        assert 0 < len(n["negatives"]) <= cfg.negatives_per_query
        assert not set(n["negatives"]) & set(ds.qrels[n["query_id"]]), "a positive was mined as a negative"
        assert set(n["negatives"]) <= set(ds.corpus)
    rows = (out / "margins.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["query-id", "positive-id", "negative-id", "track-id", "margin"]
    assert len(rows) - 1 == pytest.approx(len(ds.queries) * cfg.triplets_per_query, rel=0.2)
    for q, p, n, t, m in (r.split("\t") for r in rows[1:]):
        assert q in ds.queries and p in ds.qrels[q] and n not in ds.qrels[q] and ds.query_tracks[q] == t
    assert (out / "teacher" / "model" / "config.json").is_file()
    assert (out / "mnrl" / "model" / "modules.json").is_file()
    fusion = json.loads((out / "fusion.json").read_text())
    assert fusion["method"] in ("rrf", "weighted") and len(fusion["weights"]) == 2
    from melscribe.train.pipeline import TrainingRun

    trained_on, held_out = TrainingRun(out, cfg, records=records).records()
    held = {r.track_id for r in held_out}
    assert len(held) == cfg.heldout_tracks and not held & set(ds.query_tracks.values()), \
        "the clips the fusion is tuned on must be unseen by the bi-encoder"
    assert fusion["tuning"]["queries"] > 0
    assert json.loads((out / "run.json").read_text())["seconds"].keys() >= {"pairs", "mine", "teacher", "label",
                                                                             "mnrl", "distil", "fusion"}
    for folder in (final, out / "published"):
        scorer = make_scorer(f"fused:{folder}")
        scores = scorer.fit(["steel drums, tropical", "sad, piano"]).score(["tropical steel drums"])
        assert scores.shape == (1, 2) and scores[0, 0] > scores[0, 1]


def test_margins_match_raw_teacher_logits(tiny_run):
    import torch

    out, *_ = tiny_run
    ds = read_beir(out / "pairs", split="train")
    q, p, n, _, m = (out / "margins.tsv").read_text().splitlines()[1].split("\t")
    ce = load_cross_encoder(str(out / "teacher" / "model"))
    raw = ce.predict([(ds.queries[q], ds.corpus[p]), (ds.queries[q], ds.corpus[n])], activation_fn=torch.nn.Identity())
    assert float(m) == pytest.approx(float(raw[0] - raw[1]), abs=1e-3)


def test_margin_labels_are_not_squashed_by_a_sigmoid():
    import torch

    from melscribe.train.teacher import margin_labels

    ce = load_cross_encoder("all-MiniLM-L6-v2")
    head = ce.model.classifier
    torch.manual_seed(0)
    with torch.no_grad():
        head.weight.mul_(200.0)
    triplets = [("upbeat tropical steel drums", "steel drums, tropical", "sad, piano"),
                ("a sad piano ballad", "sad, piano, ballad", "heavy metal"),
                ("smooth jazz", "jazz, saxophone", "techno, fast")]
    margins = margin_labels(ce, triplets, show_progress_bar=False)
    assert np.abs(margins).max() > 1.0, "margins look squashed into [-1, 1]"
    squashed = ce.predict([(q, p) for q, p, _ in triplets]) - ce.predict([(q, n) for q, _, n in triplets])
    assert np.abs(squashed).max() <= 1.0 and not np.allclose(squashed, margins)


RESUME_SCRIPT = textwrap.dedent("""
    import os, sys, time
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import TrainerCallback
    from melscribe.train.distill import train_mnrl

    class StallAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            open(sys.argv[2], "w").write(str(state.global_step))
            time.sleep(600)

    pairs = [(f"request number {i} about {w}", f"{w}, descriptor {i}") for i, w in
             enumerate(["rock", "jazz", "pop", "metal", "folk", "blues", "funk", "soul"] * 4)]
    train_mnrl(pairs, [str(i) for i in range(len(pairs))], sys.argv[1], max_steps=6, save_steps=2, batch_size=4,
               callbacks=[StallAfterSave()] if sys.argv[3] == "stall" else [])
""")


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    from transformers import TrainerCallback

    from melscribe.train.distill import train_mnrl

    script, marker = tmp_path / "train.py", tmp_path / "saved"
    script.write_text(RESUME_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"), str(marker), "stall"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker.read_text() == "2", "training did not reach its first checkpoint"
    assert last_checkpoint(tmp_path / "run" / "checkpoints").endswith("checkpoint-2")
    assert not (tmp_path / "run" / "model").exists()

    first_steps = []

    class Record(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            first_steps.append(state.global_step)

    pairs = [(f"request number {i} about {w}", f"{w}, descriptor {i}") for i, w in
             enumerate(["rock", "jazz", "pop", "metal", "folk", "blues", "funk", "soul"] * 4)]
    model_dir = train_mnrl(pairs, [str(i) for i in range(len(pairs))], tmp_path / "run", max_steps=6, save_steps=2,
                           batch_size=4, callbacks=[Record()])
    assert first_steps[0] == 2, f"resumed at step {first_steps[0]}, expected 2"
    assert first_steps[-1] == 5
    assert (model_dir / "modules.json").is_file()
    state = json.loads((tmp_path / "run" / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
