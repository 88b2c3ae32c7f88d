"""The paper's evaluation protocol: build the test pairs of a split for each seed, let a scorer rank
the descriptor-set corpus for every request, and report the metrics as mean ± std over seeds."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from melscribe.data import Record, load_musiccaps, load_test_split
from melscribe.fileio import write_text_atomic
from melscribe.evaluation.metrics import DEFAULT_METRICS, aggregate, evaluate_run
from melscribe.pairs import PairDataset, build_pairs, track_level_pairs
from melscribe.retrieval.scorers import ModelUnavailableError, Scorer

SEEDS = (0, 1, 2)
#: Track-level splits (see :func:`melscribe.pairs.track_level_pairs`): every MusicCaps clip's full aspect
#: list is a document; the MC test rows, whole, are the requests (LP-MusicCaps captions or their rephrasings).
TRACK_SPLITS = {"track_MC": "MC", "track_MC_reco": "MC_reco"}

#: Recall@10 reported by Epure et al. (NLP4MusA 2024), for the table.
PAPER_RECALL_AT_10 = {
    "TF-IDF": {"MC": 89.4, "MC_reco": 77.7},
    "all-MiniLM-L6-v2": {"MC": 59.9, "MC_reco": 48.3},
    "paper GPL bi-encoder": {"MTT": 62.8, "MSD": 47.9, "MC": 84.8, "MC_reco": 70.1},
    "CLAP_text": {"MC": 36.5},
    "TTMR_text": {"MC": 19.9},
}


def retrieve(scorer: Scorer, ds: PairDataset, depth: int = 100, batch_size: int = 1024) -> dict[str, list[str]]:
    """Fit ``scorer`` on the corpus of ``ds`` and return each query's top ``depth`` doc ids."""
    doc_ids = list(ds.corpus)
    scorer.fit([ds.corpus[d] for d in doc_ids])
    qids = list(ds.queries)
    run: dict[str, list[str]] = {}
    depth = min(depth, len(doc_ids))
    for start in range(0, len(qids), batch_size):
        chunk = qids[start:start + batch_size]
        scores = scorer.score([ds.queries[q] for q in chunk])
        top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
        for q, row, cand in zip(chunk, scores, top):
            order = cand[np.lexsort((cand, -row[cand]))]
            run[q] = [doc_ids[j] for j in order]
    return run


def evaluate_scorer(scorer: Scorer, ds: PairDataset, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Metrics of one scorer on one pair dataset."""
    return evaluate_run(retrieve(scorer, ds), ds.qrels, metrics)


def test_dataset(split: str, seed: int = 0, data_dir: str | os.PathLike | None = None,
                 drop_empty: bool = False) -> PairDataset:
    """The pairs of a test split: the paper's protocol (``MC``, ``MC_reco``, ``MTT``, ``MSD``: sampled
    descriptor sets, deterministic in ``seed``), or the track-level protocol of :data:`TRACK_SPLITS`."""
    if split in TRACK_SPLITS:
        return track_level_pairs(load_test_split(TRACK_SPLITS[split], data_dir), load_musiccaps(data_dir))
    return build_pairs(load_test_split(split, data_dir), seed=seed, drop_empty=drop_empty)


def split_seeds(split: str, seeds: Sequence[int]) -> Sequence[int]:
    """The seeds a split is evaluated with: the track-level splits sample nothing, so one is enough."""
    return seeds[:1] if split in TRACK_SPLITS else seeds


def evaluate_table(scorers: Mapping[str, Callable[[], Scorer]], splits: Sequence[str], seeds: Sequence[int] = SEEDS,
                   data_dir: str | os.PathLike | None = None, drop_empty: bool = False,
                   metrics: Sequence[str] = DEFAULT_METRICS) -> dict:
    """Evaluate every scorer on every split over ``seeds``.

    Returns ``{"rows": {scorer: {split: {metric: {mean, std}, "seconds": s}}}, "skipped": {scorer: reason}}``.
    A scorer whose model cannot be loaded is skipped with a one-line reason.
    """
    return evaluate_datasets(scorers, {(split, seed): test_dataset(split, seed, data_dir, drop_empty)
                                       for split in splits for seed in split_seeds(split, seeds)},
                             drop_empty=drop_empty, metrics=metrics)


def evaluate_record_sets(scorers: Mapping[str, Callable[[], Scorer]], record_sets: Mapping[str, Sequence[Record]],
                         seeds: Sequence[int] = SEEDS, drop_empty: bool = False,
                         metrics: Sequence[str] = DEFAULT_METRICS) -> dict:
    """:func:`evaluate_table` over named record sets instead of test splits by name (e.g. the MC test clips with
    requests written by another model); each set's pairs are built by :func:`build_pairs` per seed, as in the paper."""
    return evaluate_datasets(scorers, {(split, seed): build_pairs(records, seed=seed, drop_empty=drop_empty)
                                       for split, records in record_sets.items() for seed in seeds},
                             drop_empty=drop_empty, metrics=metrics)


def evaluate_datasets(scorers: Mapping[str, Callable[[], Scorer]], datasets: Mapping[tuple[str, int], PairDataset],
                      drop_empty: bool = False, metrics: Sequence[str] = DEFAULT_METRICS) -> dict:
    """Evaluate every scorer on pair datasets keyed by (split, seed); metrics are aggregated over the seeds of
    each split (see :func:`evaluate_table` for the result)."""
    splits = list(dict.fromkeys(split for split, _ in datasets))
    seeds = list(dict.fromkeys(seed for _, seed in datasets))
    rows: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for label, factory in scorers.items():
        try:
            scorer = factory()
        except ModelUnavailableError as e:
            skipped[label] = str(e)
            tqdm.write(f"skipped {label}: {e}")
            continue
        rows[label] = {}
        for split in splits:
            t0 = time.perf_counter()
            per_seed = [evaluate_scorer(scorer, datasets[split, seed], metrics)
                        for seed in tqdm(split_seeds(split, seeds), desc=f"{label} / {split}", leave=False)]
            rows[label][split] = dict(aggregate(per_seed), seconds=time.perf_counter() - t0,
                                      queries=len(datasets[split, seeds[0]].queries),
                                      documents=len(datasets[split, seeds[0]].corpus))
    return {"rows": rows, "skipped": skipped, "splits": list(splits), "seeds": list(seeds),
            "drop_empty": drop_empty, "metrics": list(metrics), "provenance": provenance()}


def evaluate_recommender(recommender, split: str, data_dir: str | os.PathLike | None = None,
                         metrics: Sequence[str] = ("recall@1", "recall@10", "mrr@10"), batch_size: int = 256,
                         **options) -> dict[str, float]:
    """Metrics of what :meth:`Recommender.recommend` returns (``options`` passed on) on a track-level split
    (:data:`TRACK_SPLITS`) over the MusicCaps catalog: each returned track counts as its full descriptor
    list's document, identical lists once."""
    from melscribe.pairs import doc_id

    if split not in TRACK_SPLITS:
        raise ValueError(f"recommend() is evaluated on the track-level splits {', '.join(TRACK_SPLITS)}, not {split!r}")
    ds = test_dataset(split, data_dir=data_dir)
    qids = list(ds.queries)
    run: dict[str, list[str]] = {}
    depth = max(int(m.partition("@")[2]) for m in metrics)
    for start in tqdm(range(0, len(qids), batch_size), desc=f"recommend() / {split}", leave=False):
        chunk = qids[start:start + batch_size]
        for q, results in zip(chunk, recommender.recommend_many([ds.queries[q] for q in chunk], depth, **options)):
            run[q] = list(dict.fromkeys(doc_id(", ".join(r.descriptor_set)) for r in results))
    return evaluate_run(run, ds.qrels, metrics)


def provenance() -> dict:
    """Commit, date and machine, to record beside every figure."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parent).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"commit": commit, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"}


def format_table(result: Mapping, metric: str = "recall@10", paper: Mapping = PAPER_RECALL_AT_10) -> str:
    """A Markdown table of ``metric`` (×100, mean ± std) per scorer and split, with the paper's figures."""
    splits = result["splits"]
    head = "| scorer | " + " | ".join(f"{s} | {s} (paper)" for s in splits) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(splits))]
    for label, per_split in result["rows"].items():
        cells = []
        for s in splits:
            m = per_split.get(s, {}).get(metric)
            cells.append(f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}" if m else "—")
            ref = paper.get(label, {}).get(s)
            cells.append(f"{ref:.1f}" if ref is not None else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for label, reason in result.get("skipped", {}).items():
        ref = paper.get(label, {})
        lines.append(f"| {label} | " + " | ".join(c for s in splits for c in
                                                  ["skipped", f"{ref[s]:.1f}" if s in ref else "—"]) + " |")
    for label, figures in paper.items():  # the paper's rows we have no counterpart of, for reference
        if label not in result["rows"] and label not in result.get("skipped", {}) and \
                any(s in figures for s in splits) and metric == "recall@10":
            lines.append(f"| {label} (paper only) | " + " | ".join(c for s in splits for c in
                                                                   ["—", f"{figures[s]:.1f}" if s in figures else "—"]) + " |")
    return "\n".join(lines)


def write_results(result: Mapping, stem: str | os.PathLike, title: str, command: str,
                  notes: str = "") -> tuple[Path, Path]:
    """Write ``<stem>.json`` (everything) and ``<stem>.md`` (Recall@10 table, all metrics, provenance)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    prov = result["provenance"]
    md = [f"# {title}", "", f"Command: `{command}`", "",
          f"Commit `{prov['commit']}`, {prov['date']}, {prov['machine']}. Seeds {result['seeds']}; "
          f"sentences without a verbatim descriptor are {'dropped' if result['drop_empty'] else 'kept (empty relevant document, a miss), as in the paper'}.",
          "", "## Recall@10 (×100, mean ± std over seeds)", "", format_table(result), ""]
    md += ["## All metrics (×100, mean over seeds)", "",
           "| scorer | split | " + " | ".join(result["metrics"]) + " | seconds (all seeds) |",
           "|---|---|" + "---|" * (len(result["metrics"]) + 1)]
    for label, per_split in result["rows"].items():
        for s, r in per_split.items():
            md.append(f"| {label} | {s} | " + " | ".join(f"{100 * r[m]['mean']:.1f}" for m in result["metrics"])
                      + f" | {r['seconds']:.1f} |")
    if result.get("skipped"):
        md += ["", "## Skipped", ""] + [f"- {k}: {v}" for k, v in result["skipped"].items()]
    if notes:
        md += ["", notes]
    for path, text in ((stem.with_suffix(".json"), json.dumps(dict(result, command=command), indent=2)),
                       (stem.with_suffix(".md"), "\n".join(md) + "\n")):
        write_text_atomic(path, text)
    return stem.with_suffix(".md"), stem.with_suffix(".json")
