"""Evaluation of intent handling on requests that reject something (``experiments/data/negated_requests.jsonl``).

For each request the recommender's top ``k`` tracks are checked against the request's hand-written
``rejects`` and ``wants`` (MusicCaps descriptors). A track *carries* a listed descriptor ``t`` when one of its
descriptors ``d``

* **word**: contains ``t``'s words in order (lower case, hyphens as spaces, a final "s" ignored: "vocals"
  is carried by "passionate male vocal"), ``d`` not being a negative descriptor ("no vocals" does not carry
  "vocals"); no stemming and no synonyms, so the metric does not share the parser's rules;
* **semantic**: word, or ``d`` shares no word with ``t`` and its embedding under the packaged
  all-MiniLM-L6-v2 is at least ``threshold`` from ``t``'s, ``threshold`` being the one calibrated on the
  hand-labelled pairs (:func:`melscribe.intent.matching.calibrate_threshold`, the most pairs classified right);
* **loose**: the same at ``loose_threshold``, the threshold of the labelled pairs' best balanced accuracy
  (true-positive rate minus false-positive rate), which admits many non-synonyms: an upper bound.

Metrics (means over requests, ×100 in reports): ``rejected@k`` the share of the top ``k`` carrying a rejected
descriptor (requests with rejects), ``clean@k`` the share of requests none of whose top ``k`` carries one,
``wanted@k`` the share of the top ``k`` carrying a wanted descriptor (requests with wants).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from melscribe.errors import DataError
from melscribe.intent.matching import load_synonym_pairs
from melscribe.intent.words import is_negative_descriptor

MODES = ("word", "semantic", "loose")


@dataclass(frozen=True)
class NegatedRequest:
    """One request of the set: id, split (``calibration``/``report``, ``heldout``/``dev``), text, rejected and
    wanted descriptors, and the phrasing family where the set has one (``experiments/data/README.md``)."""

    id: str
    split: str
    request: str
    rejects: tuple[str, ...]
    wants: tuple[str, ...]
    family: str = ""


def load_requests(path: str | Path, vocabulary: Iterable[str] | None = None) -> list[NegatedRequest]:
    """The requests of a JSONL file (fields in ``experiments/data/README.md``); with ``vocabulary``, a
    :class:`DataError` names any listed descriptor that is not in it."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        out.append(NegatedRequest(r["id"], r["split"], r["request"], tuple(r["rejects"]), tuple(r["wants"]),
                                  r.get("family", "")))
    if vocabulary is not None:
        vocab = set(vocabulary)
        missing = sorted({d for r in out for d in r.rejects + r.wants if d not in vocab})
        if missing:
            raise DataError(f"{path}: descriptor(s) not in the catalog's vocabulary: {', '.join(map(repr, missing))}")
    return out


def metric_words(text: str) -> tuple[str, ...]:
    """Lower-case words, hyphens and slashes as spaces, a final "s" dropped from words over 3 letters (not "ss")."""
    out = []
    for w in re.findall(r"[a-z0-9&']+", text.lower()):
        out.append(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return tuple(out)


def _contains(needle: Sequence[str], hay: Sequence[str]) -> bool:
    n = len(needle)
    return any(tuple(hay[i:i + n]) == tuple(needle) for i in range(len(hay) - n + 1))


def threshold_by_balanced_accuracy(similarities: Sequence[float], labels: Sequence[bool]) -> float:
    """The threshold maximising true-positive rate minus false-positive rate (Youden's J), ties towards the
    higher threshold."""
    sims, labels = np.asarray(similarities, dtype=np.float64), np.asarray(labels, dtype=bool)
    values = np.unique(np.round(sims, 3))
    best, best_t = -2.0, float(values[-1] + 1e-3)
    for t in np.concatenate([[values[0] - 1e-3], (values[:-1] + values[1:]) / 2])[::-1]:
        pred = sims >= t
        j = pred[labels].mean() - pred[~labels].mean()
        if j > best + 1e-12:
            best, best_t = j, float(t)
    return round(best_t, 3)


class CarryJudge:
    """Whether a track's descriptors carry any of some target descriptors (module doc), with the packaged
    MiniLM's embeddings of the vocabulary (``embeddings[i]`` for ``vocabulary[i]``)."""

    def __init__(self, vocabulary: Sequence[str], embeddings: np.ndarray, threshold: float, loose_threshold: float):
        self.row = {d: i for i, d in enumerate(vocabulary)}
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.thresholds = {"semantic": float(threshold), "loose": float(loose_threshold)}
        self._words: dict[str, tuple[str, ...]] = {}

    @classmethod
    def calibrated(cls, vocabulary: Sequence[str], embeddings: np.ndarray, encoder) -> "CarryJudge":
        """A judge whose thresholds are calibrated on the labelled pairs with ``encoder`` (the packaged MiniLM)."""
        from melscribe.intent.matching import calibrate_threshold

        pairs = load_synonym_pairs()
        texts = sorted({t for p, d, _ in pairs for t in (p, d)})
        emb = dict(zip(texts, encoder.encode(texts)))
        sims = [float(emb[p] @ emb[d]) for p, d, _ in pairs]
        return cls(vocabulary, embeddings, calibrate_threshold(encoder),
                   threshold_by_balanced_accuracy(sims, [s for *_, s in pairs]))

    def _w(self, d: str) -> tuple[str, ...]:
        w = self._words.get(d)
        if w is None:
            w = self._words[d] = metric_words(d)
        return w

    def carried(self, descriptors: Iterable[str], targets: Sequence[str], mode: str = "word") -> list[str]:
        """The targets carried by some descriptor of ``descriptors`` under ``mode`` (``word``, ``semantic``,
        ``loose``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        descriptors = [d for d in descriptors if not is_negative_descriptor(d) or d in targets]
        out = []
        for t in targets:
            tw = self._w(t)
            if any(d == t or _contains(tw, self._w(d)) for d in descriptors):
                out.append(t)
                continue
            if mode == "word" or t not in self.row:
                continue
            te = self.embeddings[self.row[t]]
            limit = self.thresholds[mode]
            tset = set(tw)
            if any(d in self.row and not tset & set(self._w(d)) and float(self.embeddings[self.row[d]] @ te) >= limit
                   for d in descriptors):
                out.append(t)
        return out


def evaluate_intent(recommender, requests: Sequence[NegatedRequest], judge: CarryJudge, *, intent: bool,
                    k: int = 10) -> dict[str, Any]:
    """Top-``k`` metrics of ``recommender`` (intent handling on or off) per split and over all requests,
    plus each request's results: ``{"splits": {split: metrics}, "requests": [...]}``."""
    per_request = []
    for r in requests:
        results = recommender.recommend(r.request, k, intent=intent)
        row: dict[str, Any] = {"id": r.id, "split": r.split, "n": len(results),
                               "tracks": [x.track_id for x in results]}
        for mode in MODES:
            row[f"rejected_{mode}"] = [bool(judge.carried(x.descriptor_set, r.rejects, mode)) for x in results]
            row[f"wanted_{mode}"] = [bool(judge.carried(x.descriptor_set, r.wants, mode)) for x in results]
        row["carried_rejected"] = [judge.carried(x.descriptor_set, r.rejects, "word") for x in results]
        row["has_rejects"], row["has_wants"] = bool(r.rejects), bool(r.wants)
        per_request.append(row)
    splits = {s: summarise([p for p in per_request if p["split"] == s], k) for s in sorted({r.split for r in requests})}
    splits["all"] = summarise(per_request, k)
    return {"splits": splits, "requests": per_request}


def compact_request_row(row: dict[str, Any]) -> None:
    """Shorten one request's row of an evaluation for a JSON file, in place: each per-track list of flags
    as a string of 0/1 (one character per track), carried rejected descriptors only where there are some."""
    for key, value in list(row.items()):
        if isinstance(value, list) and value and isinstance(value[0], bool):
            row[key] = "".join("1" if v else "0" for v in value)
    row["carried_rejected"] = {str(i): c for i, c in enumerate(row["carried_rejected"]) if c}


def summarise(rows: Sequence[Mapping[str, Any]], k: int = 10) -> dict[str, float]:
    """Means of the per-request shares (module doc) over ``rows`` of :func:`evaluate_intent`."""
    out: dict[str, float] = {"requests": float(len(rows))}
    rej = [r for r in rows if r["has_rejects"]]
    want = [r for r in rows if r["has_wants"]]
    for mode in MODES:
        out[f"rejected@{k} {mode}"] = _mean([sum(r[f"rejected_{mode}"]) / k for r in rej])
        out[f"clean@{k} {mode}"] = _mean([float(not any(r[f"rejected_{mode}"])) for r in rej])
        out[f"wanted@{k} {mode}"] = _mean([sum(r[f"wanted_{mode}"]) / k for r in want])
    return out


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


#: Columns of the report tables: (metric key, heading).
REPORT_COLUMNS = (("rejected@{k} word", "rejected, word"), ("rejected@{k} semantic", "rejected, semantic"),
                  ("rejected@{k} loose", "rejected, loose"), ("clean@{k} word", "requests clean, word"),
                  ("wanted@{k} word", "wanted, word"), ("wanted@{k} semantic", "wanted, semantic"))


def intent_report(systems: Mapping[str, Callable[[], Any]], requests: Sequence[NegatedRequest], judge: CarryJudge,
                  *, k: int = 10) -> dict[str, Any]:
    """Evaluate each system with intent handling off and on. ``systems`` maps a label to a factory of a
    recommender (called once; a :class:`~melscribe.errors.ModelUnavailableError` or :class:`DataError` skips it
    with its reason). Returns ``{"rows": {label: {"intent off"|"intent on": evaluation}}, "skipped", ...}``."""
    from melscribe.errors import ModelUnavailableError

    rows: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    for label, factory in systems.items():
        try:
            rec = factory()
        except (ModelUnavailableError, DataError, FileNotFoundError) as e:
            skipped[label] = str(e)
            continue
        thresholds[label] = rec.intent_parser.threshold
        rows[label] = {}
        for on in (False, True):
            t0 = time.perf_counter()
            res = evaluate_intent(rec, requests, judge, intent=on, k=k)
            res["seconds"] = time.perf_counter() - t0
            rows[label]["intent on" if on else "intent off"] = res
    return {"k": k, "rows": rows, "skipped": skipped, "system_thresholds": thresholds,
            "metric_thresholds": dict(judge.thresholds),
            "requests": {s: sum(r.split == s for r in requests) for s in sorted({r.split for r in requests})}}


def format_report_table(result: Mapping[str, Any], split: str) -> str:
    """A Markdown table (×100) of one split: a row per system and intent setting."""
    k = result["k"]
    cols = [(key.format(k=k), head) for key, head in REPORT_COLUMNS]
    lines = ["| system | intent | " + " | ".join(h for _, h in cols) + " |", "|---|---|" + "---|" * len(cols)]
    for label, per in result["rows"].items():
        for setting, res in per.items():
            m = res["splits"][split]
            cells = " | ".join(f"{100 * m[key]:.1f}" for key, _ in cols)
            lines.append(f"| {label} | {setting.split()[-1]} | {cells} |")
    return "\n".join(lines)


def leaks(evaluation: Mapping[str, Any], requests: Sequence[NegatedRequest], split: str) -> list[str]:
    """One line per request of ``split`` whose top k still carries a rejected descriptor (word match)."""
    by_id = {r.id: r for r in requests}
    out = []
    for row in evaluation["requests"]:
        if row["split"] != split or not any(row["rejected_word"]):
            continue
        carried = sorted({t for c in row["carried_rejected"] for t in c})
        out.append(f"{row['id']} \"{by_id[row['id']].request}\": {sum(row['rejected_word'])} of {row['n']} carry "
                   + ", ".join(carried))
    return out


def summarise_by_family(evaluation: Mapping[str, Any], requests: Sequence[NegatedRequest],
                        k: int = 10) -> dict[str, dict[str, float]]:
    """:func:`summarise` of an :func:`evaluate_intent` result per phrasing family of ``requests``."""
    family = {r.id: r.family for r in requests}
    rows = evaluation["requests"]
    return {f: summarise([row for row in rows if family[row["id"]] == f], k)
            for f in sorted({r.family for r in requests})}


def parse_confusion(parse: Callable[[str], Any], requests: Sequence[NegatedRequest],
                    judge: CarryJudge) -> dict[str, Any]:
    """How the parser's rejected descriptors compare with the annotations, without retrieval.

    For each request, ``parse(text).rejected`` (the descriptors it excludes) is judged by word match
    (:meth:`CarryJudge.carried`): a **missed** rejection is an annotated rejected descriptor that no excluded
    descriptor carries; a **wrongly excluded** wanted descriptor is an annotated wanted one that is itself
    excluded (the same words: "piano" excluded where piano is wanted; excluding "jazz piano" where jazz is rejected
    and piano wanted is not counted); a **false rejection** is a request that rejects nothing (annotated ``rejects`` empty)
    from which the parser still excludes something. Returns counts, rates and the requests concerned."""
    rejecting = [r for r in requests if r.rejects]
    missed, wrongly, false_rejection, caught = [], [], [], 0
    for r in requests:
        excluded = list(parse(r.request).rejected)
        if r.rejects:
            miss = [t for t in r.rejects if not judge.carried(excluded, [t])]
            if len(miss) < len(r.rejects):
                caught += 1
            if miss:
                missed.append({"id": r.id, "request": r.request, "missed": miss})
        elif excluded:
            false_rejection.append({"id": r.id, "request": r.request, "excluded": excluded[:12],
                                    "n_excluded": len(excluded)})
        excluded_words = {metric_words(d) for d in excluded}
        wrong = [t for t in r.wants if metric_words(t) in excluded_words]
        if wrong:
            wrongly.append({"id": r.id, "request": r.request, "wanted_excluded": wrong})
    n_rej = sum(len(r.rejects) for r in rejecting)
    n_missed = sum(len(m["missed"]) for m in missed)
    return {"requests": len(requests), "rejecting_requests": len(rejecting),
            "rejecting_requests_caught": caught,
            "rejected_descriptors": n_rej, "rejected_descriptors_missed": n_missed,
            "missed_share": n_missed / n_rej if n_rej else float("nan"),
            "requests_with_wanted_excluded": len(wrongly),
            "non_rejecting_requests": len(requests) - len(rejecting),
            "false_rejections": len(false_rejection),
            "missed": missed, "wanted_excluded": wrongly, "false_rejection": false_rejection}


def track_level(recommender, splits: Sequence[str], data_dir=None, **options) -> dict[str, dict[str, float]]:
    """Recall@1, Recall@10 and MRR@10 of ``recommender.recommend(..., **options)`` on the track-level
    splits (:func:`melscribe.evaluation.protocol.evaluate_recommender`)."""
    from melscribe.evaluation.protocol import evaluate_recommender

    return {split: evaluate_recommender(recommender, split, data_dir, **options) for split in splits}


def forum_report(recommender, request_sets: Mapping[str, Sequence[NegatedRequest]], judge: CarryJudge, *,
                 intent: bool, k: int = 10, track_splits: Sequence[str] = (), data_dir=None) -> dict[str, Any]:
    """One configuration's figures for the issue-25 report: per request set, :func:`evaluate_intent`
    (per split and, where the set has families, per family) and, with intent on, the
    :func:`parse_confusion` of the recommender's own parser; and the :func:`track_level` figures."""
    out: dict[str, Any] = {"sets": {}, "track": {}}
    for name, requests in request_sets.items():
        t0 = time.perf_counter()
        ev = evaluate_intent(recommender, requests, judge, intent=intent, k=k)
        entry: dict[str, Any] = {"splits": ev["splits"], "requests": ev["requests"],
                                 "seconds": time.perf_counter() - t0}
        if any(r.family for r in requests):
            entry["families"] = summarise_by_family(ev, requests, k)
        if intent:
            entry["confusion"] = parse_confusion(recommender.parse_intent, requests, judge)
        out["sets"][name] = entry
    t0 = time.perf_counter()
    out["track"] = track_level(recommender, track_splits, data_dir, intent=intent) if track_splits else {}
    out["track_seconds"] = time.perf_counter() - t0
    return out
