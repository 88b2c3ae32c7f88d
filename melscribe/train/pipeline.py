"""The training pipeline, stage by stage. Each stage writes its output under the run folder and is
skipped when that output exists, so a killed run restarts where it stopped:

================  ============================  ==============================================
stage             output                        function
================  ============================  ==============================================
pairs             ``pairs/`` (BeIR)             :func:`melscribe.pairs.build_pairs` (+ :mod:`.queries`)
mine              ``negatives.jsonl``           :func:`melscribe.train.mine.mine_negatives`
mnrl              ``mnrl/model``                :func:`melscribe.train.mnrl.train_mnrl`
teacher           ``teacher/model``             :func:`melscribe.train.teacher.train_teacher`
                                                (negatives denoised by :mod:`melscribe.train.denoise`)
label             ``margins.tsv``               :func:`melscribe.train.label.margin_labels`
distil            ``distil/model``              :func:`melscribe.train.distil.distil_margin_mse`
                                                (recipe ``joint``: :func:`melscribe.train.distil.train_joint`)
fusion            ``fusion.json``               :func:`melscribe.train.fusion.tune_fusion` (held-out clips)
fast              ``fast/<kind>/model``         :func:`melscribe.train.fast.train_fast_student`
================  ============================  ==============================================

The final bi-encoder is copied to ``model/`` (with ``fusion.json`` beside it, and for the GPL recipes the
teacher as ``model/teacher/``, the re-ranker of ``recommend(..., rerank=N)``). Stage ``fast`` trains the
fast student that ``fast.student`` names (``static-distill``, ``static-mnrl`` or ``layers-N``; none
with ``none``) from the final bi-encoder; its output folder is named after the kind, so students of several
kinds can be trained in one run folder for comparison. :func:`train` publishes it inside the bi-encoder's
folder, as ``model/fast/`` (:data:`melscribe.encoding.models.STUDENT_DIR`), where the ``static`` and ``student``
encoder backends find it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from melscribe.encoding.models import MODEL_MARKER, STUDENT_DIR, TEACHER_DIR, record_weights
from melscribe.fileio import replace_dir, temp_sibling, write_text_atomic
from melscribe.encoding.static_backend import STUDENT_INFO
from melscribe.data import Record, load_training_records
from melscribe.errors import InvalidRequestError
from melscribe.pairs import PairDataset, build_pairs, read_beir, write_beir
from melscribe.train.recipes import RECIPE_TABLE, stage_settings
from melscribe.train.settings import FLAT_NAMES, TrainConfig

STAGES = ("pairs", "mine", "mnrl", "teacher", "label", "distil", "fusion", "fast")


def _write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2))


def _write_lines_atomic(path: Path, lines) -> None:
    write_text_atomic(path, "".join(lines))


class TrainingRun:
    """A run folder and its stages. ``run(stage)`` computes a stage unless its output exists."""

    def __init__(self, out_dir: str | os.PathLike, config: TrainConfig, data_dir=None, records: list[Record] | None = None):
        self.out, self.config, self.data_dir, self._records = Path(out_dir), config, data_dir, records
        self._pairs: PairDataset | None = None
        self.out.mkdir(parents=True, exist_ok=True)
        self.info_path = self.out / "run.json"
        self.info = json.loads(self.info_path.read_text()) if self.info_path.is_file() else {}
        self.info["config"] = config.to_dict()
        self._check_settings()

    def _check_settings(self) -> None:
        """Refuse to reuse a finished stage whose output was made with other settings than this run's: the rerun
        would skip it and publish a model of the old settings. :func:`restart_run` starts the folder anew."""
        recorded = self.info.get("stage_settings", {})
        differ = {}
        for stage in STAGES:
            if stage in recorded and self._done(stage):
                now = stage_settings(self.config, stage)
                then = {FLAT_NAMES.get(k, k): v for k, v in recorded[stage].items()}  # runs before the sections
                differ.update({k: (v, now.get(k)) for k, v in then.items() if now.get(k) != v})
        if differ:
            listed = ", ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in sorted(differ.items()))
            raise InvalidRequestError(f"the run folder {self.out} holds stages trained with other settings ({listed}); "
                                      "a rerun would reuse them. Train into another folder (--out), or start this "
                                      "one anew with --restart")

    # ---- stage outputs -------------------------------------------------------------------------
    @property
    def pairs_dir(self) -> Path:
        return self.out / "pairs"

    def pairs(self) -> PairDataset:
        """The training pairs (stage ``pairs``), read from disk once per run object."""
        if self._pairs is None:
            self.run("pairs")
            self._pairs = read_beir(self.pairs_dir, split="train")
        return self._pairs

    def negatives(self) -> dict[str, list[str]]:
        """Mined hard negatives per query id (stage ``mine``)."""
        self.run("mine")
        rows = [json.loads(line) for line in (self.out / "negatives.jsonl").read_text().splitlines() if line]
        return {r["query_id"]: r["negatives"] for r in rows}

    def triplets(self) -> list[tuple[str, str, str, str]]:
        """(query id, positive id, negative id, track id): ``triplets_per_query`` per request, seeded."""
        ds, negs = self.pairs(), self.negatives()
        rng = random.Random(self.config.seed)
        out = []
        for qid in ds.queries:
            pos = [d for d in ds.qrels.get(qid, {}) if d in ds.corpus]
            cands = negs.get(qid, [])
            if not pos or not cands:
                continue
            for neg in rng.sample(cands, min(self.config.label.triplets_per_query, len(cands))):
                out.append((qid, rng.choice(pos), neg, ds.query_tracks.get(qid, "")))
        return out

    # ---- stages --------------------------------------------------------------------------------
    def _done(self, stage: str) -> bool:
        return {
            "pairs": (self.pairs_dir / "qrels" / "train.tsv").is_file(),
            "mine": (self.out / "negatives.jsonl").is_file(),
            "mnrl": (self.out / "mnrl" / "model" / "modules.json").is_file(),
            "teacher": (self.out / "teacher" / "model" / "config.json").is_file(),
            "label": (self.out / "margins.tsv").is_file(),
            "distil": (self.out / "distil" / "model" / "modules.json").is_file(),
            "fusion": (self.out / "fusion.json").is_file(),
            "fast": (self.fast_dir() / "model" / STUDENT_INFO).is_file(),
        }[stage]

    def run(self, stage: str) -> None:
        """Compute ``stage`` (and what it needs) unless its output already exists."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
        if self._done(stage):
            return
        tqdm.write(f"[melscribe train] stage {stage}")
        t0 = time.perf_counter()
        getattr(self, f"_stage_{stage}")()
        self.info.setdefault("seconds", {})[stage] = round(time.perf_counter() - t0, 1)
        self.info.setdefault("stage_settings", {})[stage] = stage_settings(self.config, stage)
        _write_json_atomic(self.info_path, self.info)

    def records(self) -> tuple[list[Record], list[Record]]:
        """The training records, split into those the bi-encoder trains on and those of
        ``pairs.heldout_tracks`` tracks (a seeded sample) held out for the fusion stage."""
        c = self.config
        records = self._records if self._records is not None else load_training_records(c.pairs.sources, self.data_dir)
        tracks = sorted({r.track_id for r in records})
        held = set(random.Random(c.seed).sample(tracks, min(c.pairs.heldout_tracks, len(tracks) // 2)))
        return [r for r in records if r.track_id not in held], [r for r in records if r.track_id in held]

    def _stage_pairs(self) -> None:
        c, p = self.config, self.config.pairs
        records, _ = self.records()
        if p.synthetic_per_track and p.query_generation == "llm":
            records = records + self._llm_records(records, p.synthetic_per_track)
        elif p.synthetic_per_track:
            from melscribe.train.queries import template_requests

            records = records + template_requests(records, p.synthetic_per_track, seed=c.seed)
        ds = build_pairs(records, seed=c.seed, docs_per_query=p.docs_per_query, drop_empty=p.drop_empty)
        write_beir(ds, self.pairs_dir, split="train")

    def _llm_records(self, records: list[Record], per_track: int, **job) -> list[Record]:
        """Records written by a language model from ``records`` (:func:`melscribe.llm.jobs.llm_requests`;
        ``job`` picks the prompt). Answers are cached in ``llm-cache.jsonl`` of the run folder, so a rerun
        after a failure asks only what is missing."""
        from melscribe.llm.client import LLMError, LLMSettings
        from melscribe.llm.jobs import llm_requests

        c = self.config
        settings = LLMSettings(model=c.llm.model, base_url=c.llm.base_url, concurrency=c.llm.concurrency)
        out, report = llm_requests(records, per_track, settings, self.out / "llm-cache.jsonl", seed=c.seed, **job)
        tqdm.write(f"[melscribe train] LLM {job.get('prompt', 'generate')}: {report.summary()}")
        if report.failures:
            raise LLMError(f"{len(report.failures)} LLM answers failed (rerun to retry them):\n"
                           + "\n".join(report.failure_lines(5)))
        return out

    def _stage_mine(self) -> None:
        from melscribe.train.mine import mine_negatives

        c, m, ds = self.config, self.config.mine, self.pairs()
        qids = list(ds.queries)
        if m.queries and len(qids) > m.queries:
            chosen = set(random.Random(c.seed).sample(qids, m.queries))
            qids = [q for q in qids if q in chosen]
        negs = mine_negatives(ds, [self.resolve_model(name) if name == "mnrl" else name for name in m.miners],
                              depth=m.depth, negatives_per_query=m.negatives_per_query, query_ids=qids)
        _write_lines_atomic(self.out / "negatives.jsonl",
                            (json.dumps({"query_id": q, "negatives": n}) + "\n" for q, n in negs.items()))

    def _stage_mnrl(self) -> None:
        from melscribe.train.mnrl import train_mnrl

        c, ds = self.config, self.pairs()
        rows = ds.pairs()
        negatives = None
        if c.mnrl.hard_negatives:
            negs, rng = self.negatives(), random.Random(c.seed)
            keep = [r for r in rows if negs.get(r[0])]
            rows, negatives = keep, [ds.corpus[rng.choice(negs[q])] for q, _, _ in keep]
        train_mnrl([(ds.queries[q], ds.corpus[d]) for q, d, _ in rows], [t for _, _, t in rows], self.out / "mnrl",
                   c.mnrl, c.trainer, negatives=negatives, seed=c.seed)

    def resolve_model(self, name: str) -> str:
        """A model name of the configuration, with ``"mnrl"`` meaning this run's MNRL bi-encoder (trained
        first if needed)."""
        if name != "mnrl":
            return name
        self.run("mnrl")
        return str(self.out / "mnrl" / "model")

    def teacher_negatives(self) -> dict[str, list[str]]:
        """The mined negatives with those :func:`~melscribe.train.denoise.probably_relevant` to a positive
        dropped (``teacher.denoise_overlap``; None keeps them)."""
        from melscribe.train.denoise import denoise_negatives

        ds = self.pairs()
        kept, dropped = denoise_negatives(self.negatives(), ds.qrels, ds.corpus,
                                           self.config.teacher.denoise_overlap)
        self.info["denoised_negatives"] = {"dropped": dropped, "kept": sum(map(len, kept.values()))}
        return kept

    def _stage_teacher(self) -> None:
        from melscribe.train.teacher import teacher_examples, train_teacher

        c, t = self.config, self.config.teacher
        examples = teacher_examples(self.pairs(), self.teacher_negatives(), t.negatives_per_positive, t.max_rows,
                                    seed=c.seed)
        train_teacher(examples, self.out / "teacher", t, c.trainer, base=self.resolve_model(t.base), seed=c.seed)

    def _stage_label(self) -> None:
        from melscribe.train.label import margin_labels

        ds, triplets = self.pairs(), self.triplets()
        margins = margin_labels(self.label_teacher(), [(ds.queries[q], ds.corpus[p], ds.corpus[n])
                                                       for q, p, n, _ in triplets])
        _write_lines_atomic(self.out / "margins.tsv", ["query-id\tpositive-id\tnegative-id\ttrack-id\tmargin\n"] +
                            [f"{q}\t{p}\t{n}\t{t}\t{m:.6f}\n" for (q, p, n, t), m in zip(triplets, margins)])

    def label_teacher(self):
        """The teacher of stage ``label`` (``label.teacher``): the music cross-encoder of stage
        ``teacher``, or the MNRL bi-encoder fused with TF-IDF (:class:`~melscribe.train.label.FusedTeacher`)
        with the lexical weight that the fusion stage's grid prefers for it on the held-out clips."""
        c = self.config
        if c.label.teacher == "fused":
            from melscribe.train.fusion import tune_fusion
            from melscribe.train.label import FusedTeacher

            model = self.resolve_model("mnrl")
            tuned = tune_fusion(model, self.heldout_pairs(), lexical=c.fusion.lexical, seed=c.seed)
            grid = {k: v for k, v in tuned.tuning["recall@10"].items() if k.startswith("weighted w=")}
            weight = float(max(grid, key=grid.get).removeprefix("weighted w="))
            self.info["label_teacher"] = {"kind": "fused", "model": model, "lexical": c.fusion.lexical, "weight": weight}
            return FusedTeacher(model, list(self.pairs().corpus.values()), c.fusion.lexical, weight,
                                c.distil.margin_scale)
        from melscribe.encoding.reranker import Reranker

        self.run("teacher")
        return Reranker(str(self.out / "teacher" / "model"), max_length=c.teacher.max_length,
                        batch_size=c.label.batch_size, bf16=None if c.trainer.bf16 else False)

    def margins(self) -> list[tuple[str, str, str, str, float]]:
        """The labelled triplets: (query id, positive id, negative id, track id, margin)."""
        self.run("label")
        rows = (self.out / "margins.tsv").read_text().splitlines()[1:]
        return [(q, p, n, t, float(m)) for q, p, n, t, m in (r.split("\t") for r in rows if r)]

    def distillation_rows(self) -> list[tuple[str, str, str, str, float]]:
        """The labelled triplets the student learns from: all of them, or with ``label.margin_denoise`` only
        those whose negative is neither :func:`~melscribe.train.denoise.probably_relevant` to the positive
        nor preferred by the teacher (a negative margin)."""
        from melscribe.train.denoise import denoise_margins, probably_relevant

        c, ds, rows = self.config, self.pairs(), self.margins()
        if not c.label.margin_denoise:
            return rows
        keep = denoise_margins([m for *_, m in rows], 0.0)
        kept = [rows[i] for i in keep
                if not probably_relevant([ds.corpus[rows[i][1]]], ds.corpus[rows[i][2]],
                                                c.teacher.denoise_overlap or 1.0)]
        self.info["denoised_triplets"] = {"dropped": len(rows) - len(kept), "kept": len(kept)}
        return kept

    def _stage_distil(self) -> None:
        from melscribe.train.distil import distil_margin_mse, train_joint

        c = self.config
        recipe = RECIPE_TABLE[c.recipe]
        # mnrl+gpl, mnrl+joint: start from the MNRL bi-encoder
        base = self.resolve_model("mnrl") if recipe.continues else c.trainer.student_base
        ds, rows = self.pairs(), self.distillation_rows()
        triplets = [(ds.queries[q], ds.corpus[p], ds.corpus[n]) for q, p, n, _, _ in rows]
        margins, tracks = [m for *_, m in rows], [t for _, _, _, t, _ in rows]
        if recipe.distil == "joint":
            train_joint(triplets, margins, tracks, self.out / "distil", c.distil, c.trainer,
                        schedule=recipe.distil_schedule(c), base=base, seed=c.seed)
        else:
            distil_margin_mse(triplets, margins, tracks, self.out / "distil", c.distil, c.trainer, base=base,
                              seed=c.seed)

    def final_stage(self) -> str:
        """The stage whose model is the run's bi-encoder."""
        return "mnrl" if RECIPE_TABLE[self.config.recipe].distil is None else "distil"

    def model_dir(self) -> Path:
        """The folder of the run's bi-encoder (stage output)."""
        return self.out / self.final_stage() / "model"

    def _stage_fusion(self) -> None:
        from melscribe.train.fusion import tune_fusion

        c = self.config
        self.run(self.final_stage())
        result = tune_fusion(str(self.model_dir()), self.heldout_pairs(), lexical=c.fusion.lexical, seed=c.seed)
        _write_json_atomic(self.out / "fusion.json", result.to_dict())

    def heldout_pairs(self) -> PairDataset:
        """A test-like pair set (one descriptor set per sentence) of the held-out clips, where fusions are tuned:
        their human captions, and with ``fusion.queries="llm"`` also one caption per clip written by the
        language model from the clip's aspect list (prompt ``caption``, the way LP-MusicCaps wrote the MC
        requests)."""
        _, heldout = self.records()
        if self.config.fusion.queries == "llm":
            heldout = heldout + self._llm_records(heldout, 1, prompt="caption", whole=True)
        return build_pairs(heldout, seed=self.config.seed + 1, docs_per_query=1, drop_empty=False)


    def fast_dir(self) -> Path:
        """The folder of stage ``fast`` for the configured kind of student: ``fast/<kind>``."""
        return self.out / "fast" / self.config.fast.student

    def _stage_fast(self) -> None:
        from melscribe.train.fast import distillation_texts, parse_kind, train_fast_student

        c = self.config
        if parse_kind(c.fast.student)[0] == "none":
            raise ValueError("stage fast: the configuration's fast.student is 'none'")
        self.run(self.final_stage())
        ds = self.pairs()
        rows = ds.pairs()
        texts = distillation_texts(list(ds.queries.values()), list(ds.corpus.values()), c.fast.max_texts, seed=c.seed)
        train_fast_student(str(self.model_dir()), self.fast_dir(), c.fast, c.trainer, texts=texts,
                           pairs=[(ds.queries[q], ds.corpus[d]) for q, d, _ in rows], tracks=[t for *_, t in rows],
                           seed=c.seed)


def restart_run(out_dir: str | os.PathLike) -> None:
    """Remove a training run folder (one holding ``run.json``, written by melscribe) so that it starts anew;
    anything else is refused untouched."""
    out = Path(out_dir).expanduser()
    if not out.exists():
        return
    if not (out / "run.json").is_file():
        raise InvalidRequestError(f"{out} holds no run.json: it is not a melscribe training run, and --restart "
                                  "will not delete it")
    shutil.rmtree(out)


def train(config: TrainConfig, out_dir: str | os.PathLike, data_dir=None, records: list[Record] | None = None,
          publish_to: str | os.PathLike | None = None, progress: Callable[[str], None] = tqdm.write) -> Path:
    """Run every stage of ``config.recipe`` (:meth:`~melscribe.train.recipes.Recipe.stages`: stage ``fast``
    too unless ``fast.student`` is ``none``)
    and copy the bi-encoder (with ``fusion.json``, and its fast student as ``fast/``) to ``out_dir/model`` and,
    if given, to ``publish_to``. Returns ``out_dir/model``."""
    run = TrainingRun(out_dir, config, data_dir, records)
    recipe = RECIPE_TABLE[config.recipe]
    stages = recipe.stages(config)
    for stage in stages:
        run.run(stage)
    student, teacher = "fast" in stages, "teacher" in stages
    final = run.out / "model"
    for target in [final] + ([Path(publish_to)] if publish_to else []):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_sibling(target)
        shutil.copytree(run.model_dir(), tmp)
        shutil.copy2(run.out / "fusion.json", tmp / "fusion.json")
        if student:
            shutil.copytree(run.fast_dir() / "model", tmp / STUDENT_DIR)
        if teacher:  # for recommend(..., rerank=N)
            shutil.copytree(run.out / "teacher" / "model", tmp / TEACHER_DIR)
        record_weights(tmp)
        replace_dir(tmp, target, marker=MODEL_MARKER, what="model")
    progress(f"[melscribe train] bi-encoder written to {final}" + (f" and {publish_to}" if publish_to else "")
             + (f", with its {config.fast.student} student in {STUDENT_DIR}/" if student else ""))
    return final
