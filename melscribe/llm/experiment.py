"""The local-model experiment: MC test captions rephrased by a small local LLM, and how retrievers do on
those requests against the shipped ``mc_rephrased.csv`` requests (Llama-3-8B-Instruct) for the same rows.

Both request sets keep the clips' descriptors; pairs are built by the paper's protocol
(:func:`melscribe.pairs.build_pairs`: relevant descriptor sets are those that occur verbatim in the request),
so a model that paraphrases descriptors away makes requests with fewer verbatim matches — part of what the
comparison measures. Used by ``experiments/rephrase_local.py``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from melscribe.data import Record, load_mc_test
from melscribe.evaluation.protocol import SEEDS, evaluate_record_sets
from melscribe.retrieval.scorers import ModelUnavailableError, Scorer
from melscribe.llm.jobs import read_rephrased_csv

SHIPPED = "MC_reco (Llama-3-8B, shipped)"


def request_sets(new_csv: str | os.PathLike, label: str, data_dir: str | os.PathLike | None = None
                 ) -> dict[str, list[Record]]:
    """The shipped MC_reco records and the same clips with the requests of ``new_csv`` (``mc_rephrased.csv``
    layout), restricted to the caption ids both have, in the shipped order."""
    shipped = load_mc_test(data_dir, rephrased=True)
    new = read_rephrased_csv(new_csv)
    keep = [r for r in shipped if r.meta["caption_id"] in new]
    ours = [replace(r, text=new[r.meta["caption_id"]], source="lp-musiccaps-mc-reco-local") for r in keep]
    return {SHIPPED: keep, label: ours}


def compare_requests(new_csv: str | os.PathLike, label: str, scorers: Mapping[str, Callable[[], Scorer]],
                     seeds: Sequence[int] = SEEDS, data_dir: str | os.PathLike | None = None) -> dict:
    """:func:`melscribe.evaluation.protocol.evaluate_record_sets` on the two request sets of :func:`request_sets`, with the
    number of rows compared and a few examples side by side."""
    sets = request_sets(new_csv, label, data_dir)
    if not sets[label]:
        raise ModelUnavailableError(f"{new_csv} shares no caption_id with the shipped mc_rephrased.csv")
    result = evaluate_record_sets(scorers, sets, seeds)
    result["rows_compared"] = len(sets[label])
    result["examples"] = [{"caption_id": a.meta["caption_id"], "shipped": a.text, "ours": b.text}
                          for a, b in zip(sets[SHIPPED][:3], sets[label][:3])]
    return result


def trained_scorer_factory(path: str | os.PathLike) -> Callable[[], Scorer]:
    """A factory of the trained bi-encoder's scorer that raises :class:`ModelUnavailableError` (so the row is
    skipped with the reason) when ``path`` holds no model."""
    from melscribe.retrieval.scorers import make_scorer

    def build() -> Scorer:
        p = Path(path).expanduser()
        if not (p / "modules.json").is_file():
            raise ModelUnavailableError(f"no trained model at {p}: run `melscribe train` or pass --model FOLDER")
        return make_scorer(str(p))

    return build
