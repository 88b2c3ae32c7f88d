"""Rejections as people write them (issue 25), written to experiments/results/forum_intent.md/.json.

    python experiments/forum_intent_report.py [--before e752cd9 --before 5ef2622] [--data-dir DIR] [--no-track]

Recommender defaults with the packaged all-MiniLM-L6-v2 over the MusicCaps catalog (fusion as the model has it:
none for the packaged model): intent **off**; intent on with the rules of ``--before``
(``melscribe/intent/`` as it was at that commit, every other module as now: the script runs itself on a copy of
the package whose ``intent/`` is that commit's), for each ``--before``; intent on with the rules **now**. Request
sets: ``experiments/data/forum_requests_5.jsonl`` (held-out, written blind to the parser),
``forum_requests_4.jsonl`` (held-out for the fourth round of rules, 1ef99c6, development data afterwards),
``forum_requests_3.jsonl`` (held-out for the third round of rules, f65d5d5, development data afterwards),
``forum_requests_2.jsonl`` (held-out for the second round, 818ead6, development data afterwards),
``forum_requests.jsonl`` (held-out for the first round, 5ef2622, development data afterwards), ``forum_requests_dev.jsonl`` (development),
``negated_requests.jsonl`` (issue 9); track-level Recall@1/@10 on ``track_MC`` and ``track_MC_reco``.
Metrics: ``melscribe/evaluation/intent.py``. Last, the rules now with the learned negation scope added
(``melscribe/intent/scope_model.py``, an option: ``MELSCRIBE_INTENT_SCOPE=learned``), with the leave-one-set-out
cross-validation its settings were chosen on (sets 1, 2, 3, 4, development and negated: never set 5).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.config import PACKAGED_MINILM  # noqa: E402
from melscribe.encoding.encoder import TextEncoder  # noqa: E402
from melscribe.evaluation.intent import CarryJudge, compact_request_row, forum_report, load_requests  # noqa: E402
from melscribe.evaluation.protocol import TRACK_SPLITS, provenance  # noqa: E402
from melscribe.fileio import write_text_atomic  # noqa: E402
from melscribe.serve.recommend import Recommender, load_catalog  # noqa: E402

HERE = Path(__file__).resolve().parent
#: The rules reported beside today's: before issue 25, its first round (evaluated on forum_requests.jsonl), its
#: second round (evaluated on forum_requests_2.jsonl, then on forum_requests_3.jsonl before the third round) and
#: its third round (evaluated on forum_requests_3.jsonl, then on forum_requests_4.jsonl before the fourth) and its
#: fourth round (evaluated on forum_requests_4.jsonl, then on forum_requests_5.jsonl before the fifth).
DEFAULT_BEFORE = ("e752cd9", "5ef2622", "818ead6", "f65d5d5", "1ef99c6")
#: The forum sets held out for an earlier round of rules and developed on since, newest first: name in
#: :data:`SETS`, split, and how it came about (its file, the rules first measured on it).
DEVELOPED_SETS = (
    ("forum set 4", "heldout4", "`forum_requests_4.jsonl`: written blind, held-out for the rules at 1ef99c6"),
    ("forum set 3", "heldout3", "`forum_requests_3.jsonl`: held-out for the rules at f65d5d5"),
    ("forum set 2", "heldout2", "`forum_requests_2.jsonl`: held-out for the rules at 818ead6"),
    ("forum set 1", "heldout", "`forum_requests.jsonl`: held-out for the rules at 5ef2622"))
#: The held-out set: its name in :data:`SETS` and its split.
HELD_OUT, HELD_OUT_SPLIT = "forum held-out 5", "heldout5"
#: The configuration of the defaults, whose per-request rows the JSON result keeps.
DEFAULT_CONFIG = "rules now (defaults)"
#: The configuration adding the learned negation scope to the rules now.
LEARNED_CONFIG = "rules now + learned scope (option)"
#: Rules that never saw the forum sets (before issue 25): the second view of the cross-validation, where the
#: rules miss what the held-out set's phrasings add, as the rules now do on a set they were not written on.
UNSEEN_RULES = "e752cd9"
#: The cross-validation folds: the training sets, named as in ``melscribe.intent.scope_model.EXAMPLE_FILES``.
CV_SETS = {"set1": "forum set 1", "set2": "forum set 2", "set3": "forum set 3", "set4": "forum set 4",
           "dev": "forum dev", "negated": "negated (issue 9)"}
ROOT = HERE.parent
SETS = {HELD_OUT: HERE / "data" / "forum_requests_5.jsonl",
        "forum set 4": HERE / "data" / "forum_requests_4.jsonl",
        "forum set 3": HERE / "data" / "forum_requests_3.jsonl",
        "forum set 2": HERE / "data" / "forum_requests_2.jsonl",
        "forum set 1": HERE / "data" / "forum_requests.jsonl",
        "forum dev": HERE / "data" / "forum_requests_dev.jsonl",
        "negated (issue 9)": HERE / "data" / "negated_requests.jsonl"}


#: How the figures came about, so that they are read for what they are.
HISTORY = ("`forum_requests.jsonl` (set 1, 167 requests) and the development set were written and committed "
           "(e60b62b) before any change to `melscribe/intent/`; today's rules were first measured on them by this "
           "script at 9efa20d. The first round of rules (7b41580, 43045b7; reported as `rules at 5ef2622`) was "
           "developed on the development set and the calibration half of the negated set only, then evaluated on "
           "set 1 (c8b1911: 9.6 % of the top 10 still carried a rejected descriptor, short of the 3 % of issue 25). "
           "A second held-out set, `forum_requests_2.jsonl` (151 requests), was then written (1240815) before the "
           "second round of rules (02632a2), which was developed on the development set and on set 1: set 1's "
           "figures for the rules now are development figures, set 2's are the held-out ones. No cue, scope rule, "
           "lexicon entry or threshold was changed after set 2 was first evaluated. Caveat: the same engineer (an "
           "AI coding assistant) wrote the sets and the rules; phrasings in mind while writing a set may have "
           "shaped the rules, so the held-out figures are an optimistic estimate of how the rules generalise to "
           "other people's requests. Round three: set 2's misses having been read, a third held-out set, "
           "`forum_requests_3.jsonl` (156 requests), was written and committed (818ead6) before any change it "
           "measures; the rules of 818ead6 (round two) were measured on it first. The third round of rules was "
           "developed on sets 1, 2 and the development set only (their misses and false exclusions: aversion verbs, "
           "intensified aversion, \"over\" after an adverb, \"all but the\", an intensifier's scope, phrases naming "
           "no sound, idioms of lasting liking, a few lexicon entries), then measured once on set 3; nothing was "
           "changed after that. Same caveat, stronger: the engineer who wrote set 3 also wrote the third round, "
           "having set 3's phrasings in mind (some new aversion verbs are synonyms of a development miss that set 3 "
           "also uses). Options: a learned negation-scope classifier (`melscribe/intent/scope_model.py`, off by "
           "default) was developed after round three by leave-one-set-out cross-validation on sets 1, 2, development "
           "and negated, without reading set 3, then measured on set 3 once (row `rules now + learned scope (option)`, "
           "section *Learned negation scope*); an LLM reader is wired "
           "(`melscribe/intent/llm_reader.py`, opt-in through `MELSCRIBE_INTENT_LLM`) and tested against the fake "
           "server only, not measured: there is no endpoint here. Round four: set 3's misses having been read, a "
           "fourth held-out set, `forum_requests_4.jsonl` (166 requests), was written and committed (44228b8) by an "
           "engineer (an AI coding assistant) that did not read the parser, its tests, the rules, the earlier sets' "
           "requests or any result, so that this time the writer of the held-out set is not the writer of the rules. "
           "The fourth round of rules (769afc8 and after; reported as `rules now`) was developed on sets 1, 2, 3 and "
           "the development set and on phrasings written for its tests, adding cues by family (exclusion, aversion and "
           "replies, removal and degree verbs, modifiers, cancelling negations, names, idioms) rather than one per "
           "miss; the learned scope was retrained with set 3 among its examples and reads a prefix as the rules do. "
           "Then set 4 was evaluated, once, by this script (1ef99c6: 10.1 % with the rules of round four, 19.1 % with "
           "those of round three): the blind set was much harder for rules written by the writer of the earlier sets. "
           "Round five: a fifth held-out set, `forum_requests_5.jsonl` (169 requests), was written blind the same way "
           "(b2b0db4) by another such assistant; the fifth round of rules (35f4173, d2294fe) was developed on set 4's "
           "misses (by family, not one rule per miss) and on phrasings written for its tests, the learned scope "
           "retrained with set 4 among its examples; then set 5 was evaluated, once, by this script; nothing was "
           "changed after that.")


def run_config(intent: bool, data_dir: str | None, track: bool, scope: bool = False) -> dict:
    """The figures of one configuration with the ``melscribe`` this process imports; with ``scope``, the
    parser adds the learned scope's rejections (:func:`melscribe.intent.scope_model.default_model`) and the
    result carries the ``cross_validation`` of :func:`scope_cross_validation`."""
    catalog = load_catalog(None, data_dir)
    minilm = TextEncoder(PACKAGED_MINILM)
    rec = Recommender(minilm, catalog)
    if scope:  # imported here: the children of run_before run with an older melscribe/intent/
        from melscribe.intent import scope_model

        rec.intent_parser.scope = scope_model.default_model()
    sets = {name: load_requests(path, rec.index.vocabulary) for name, path in SETS.items()}
    judge = CarryJudge.calibrated(rec.index.vocabulary, rec.index.vocabulary_embeddings, minilm)
    cv = scope_cross_validation(rec, judge, {k: sets[v] for k, v in CV_SETS.items()}, data_dir) if scope else None
    out = forum_report(rec, sets, judge, intent=intent, track_splits=list(TRACK_SPLITS) if track else (),
                       data_dir=data_dir)
    out["metric_thresholds"] = dict(judge.thresholds)
    if cv is not None:
        out["cross_validation"] = cv
    return out


class _RulesThenModel:
    """A reader (``IntentParser.reader``) of given rules plus a scope model's additions."""

    def __init__(self, rules, model):
        self.rules, self.model = rules, model

    def read(self, request: str):
        found = list(self.rules(request))
        return found + (self.model.rejections(request, found) if self.model is not None else [])


def scope_cross_validation(rec, judge, cv_sets: dict, data_dir: str | None) -> dict:
    """Leave-one-set-out figures of the learned scope over the training sets (never the held-out set), in two
    views: with the rules now (which were written on these sets, so that little is left to add) and with the rules at
    :data:`UNSEEN_RULES` (which never saw them, as the rules now never saw a held-out set): per word
    (:func:`melscribe.intent.scope_model.cross_validate`, thresholds 0.5–0.9) and per parse at the default
    threshold (:func:`melscribe.intent.scope_model.cross_validate_parse`); and the time to read a request's
    rejections, rules alone and rules + learned, on the MC/MC_reco test requests and the training sets."""
    from benchmark import rejections_at
    from melscribe.data import load_mc_test
    from melscribe.intent import scope_model
    from melscribe.intent.rejections import find_rejections

    base = rec.intent_parser
    views = {"rules now": find_rejections, f"rules at {UNSEEN_RULES}": rejections_at(UNSEEN_RULES).find_rejections}
    out: dict = {"threshold": scope_model.DEFAULT_THRESHOLD, "c": scope_model.DEFAULT_C, "words": {}, "parse": {}}
    for label, rules in views.items():
        out["words"][label] = scope_model.cross_validate(rules=rules)

        def parse_with(model, rules=rules):
            parser = copy.copy(base)
            parser.scope = None
            parser.reader = _RulesThenModel(rules, model)
            return parser.parse

        out["parse"][label] = scope_model.cross_validate_parse(parse_with, judge, cv_sets, rules=rules)
    texts = [r.text for r in load_mc_test(data_dir, rephrased=True)] + [r.text for r in load_mc_test(data_dir)]
    texts += [e[1] for e in scope_model.load_examples()]
    model = scope_model.default_model()
    timing = {}
    for label, read in (("rules", find_rejections),
                        ("rules + learned", lambda t: model.rejections(t, find_rejections(t)))):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for t in texts:
                read(t)
            best = min(best, time.perf_counter() - t0)
        timing[label] = 1000 * best / len(texts)
    out["read_ms_per_request"] = timing
    out["timed_requests"] = len(texts)
    return out


def run_before(rev: str, data_dir: str | None, track: bool) -> dict:
    """:func:`run_config` (intent on) in a child process whose ``melscribe/intent/`` is that of ``rev``."""
    with tempfile.TemporaryDirectory(prefix="forum-intent-") as tmp:
        shutil.copytree(ROOT / "melscribe", Path(tmp) / "melscribe", ignore=shutil.ignore_patterns("__pycache__"))
        intent_dir = Path(tmp) / "melscribe" / "intent"
        shutil.rmtree(intent_dir)
        intent_dir.mkdir()
        names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:melscribe/intent"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.split()
        for name in names:
            blob = subprocess.run(["git", "show", f"{rev}:melscribe/intent/{name}"], cwd=ROOT, check=True,
                                  capture_output=True).stdout
            (intent_dir / name).write_bytes(blob)
        (Path(tmp) / "experiments").mkdir()
        shutil.copy(Path(__file__), Path(tmp) / "experiments" / Path(__file__).name)
        shutil.copytree(HERE / "data", Path(tmp) / "experiments" / "data")
        out = Path(tmp) / "before.json"
        cmd = [sys.executable, str(Path(tmp) / "experiments" / Path(__file__).name), "--child", str(out)]
        cmd += ["--data-dir", data_dir] if data_dir else []
        cmd += [] if track else ["--no-track"]
        subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=tmp))
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", action="append", help="commit whose intent rules to report (repeatable; "
                        "default e752cd9, the rules before issue 25, 5ef2622, its first round, and 818ead6, its second)")
    parser.add_argument("--data-dir", help="data directory (default: $MELSCRIBE_DATA)")
    parser.add_argument("--no-track", action="store_true", help="skip the track-level splits")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "forum_intent", help="output stem")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the Markdown from the output stem's JSON, measuring nothing")
    args = parser.parse_args()
    if args.render_only:
        write_text_atomic(args.out.with_suffix(".md"), render(json.loads(args.out.with_suffix(".json").read_text())))
        return
    track = not args.no_track
    if args.child:
        write_text_atomic(args.child, json.dumps(run_config(True, args.data_dir, track)))
        return
    befores = args.before or list(DEFAULT_BEFORE)
    configs = {"intent off": run_config(False, args.data_dir, track)}
    configs.update({f"rules at {rev}": run_before(rev, args.data_dir, track) for rev in befores})
    configs[DEFAULT_CONFIG] = run_config(True, args.data_dir, track)
    configs[LEARNED_CONFIG] = run_config(True, args.data_dir, track, scope=True)
    command = "python experiments/forum_intent_report.py" + "".join(
        f" --before {rev}" for rev in (befores if befores != list(DEFAULT_BEFORE) else [])) + \
        (" --no-track" if not track else "")
    result = {"command": command, "provenance": provenance(), "before": befores, "configs": configs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(compact(result), separators=(",", ":")))
    md = render(result)
    write_text_atomic(args.out.with_suffix(".md"), md)
    print(md)


METRICS = (("rejected@10 word", "rejected, word"), ("rejected@10 semantic", "rejected, semantic"),
           ("clean@10 word", "requests clean, word"), ("wanted@10 word", "wanted, word"),
           ("wanted@10 semantic", "wanted, semantic"))


def _table(result: dict, set_name: str, split: str) -> list[str]:
    lines = ["| configuration | " + " | ".join(h for _, h in METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for label, cfg in result["configs"].items():
        m = cfg["sets"][set_name]["splits"][split]
        lines.append(f"| {label} | " + " | ".join(f"{100 * m[key]:.1f}" for key, _ in METRICS) + " |")
    return lines


def _families(result: dict, set_name: str) -> list[str]:
    labels = list(result["configs"])
    fams = list(next(iter(result["configs"].values()))["sets"][set_name]["families"])
    lines = ["| family | requests | " + " | ".join(f"rejected: {x}" for x in labels) + " | "
             + " | ".join(f"wanted: {x}" for x in labels) + " |", "|---|---:|" + "---:|" * (2 * len(labels))]
    for f in fams:
        ms = [result["configs"][x]["sets"][set_name]["families"][f] for x in labels]
        cells = [f"{100 * m['rejected@10 word']:.1f}" if m["rejected@10 word"] == m["rejected@10 word"] else "—"
                 for m in ms] + [f"{100 * m['wanted@10 word']:.1f}" for m in ms]
        lines.append(f"| {f} | {int(ms[0]['requests'])} | " + " | ".join(cells) + " |")
    return lines


def _confusion(result: dict, set_name: str) -> list[str]:
    lines = ["| rules | rejecting requests with ≥1 rejection read | rejected descriptors missed | requests with a "
             "wanted descriptor excluded | requests rejecting nothing with something excluded |", "|---|---:|---:|---:|---:|"]
    for label, cfg in result["configs"].items():
        c = cfg["sets"][set_name].get("confusion")
        if c:
            lines.append(f"| {label} | {c['rejecting_requests_caught']} of {c['rejecting_requests']} | "
                         f"{c['rejected_descriptors_missed']} of {c['rejected_descriptors']} "
                         f"({100 * c['missed_share']:.1f} %) | {c['requests_with_wanted_excluded']} of "
                         f"{c['requests']} | {c['false_rejections']} of {c['non_rejecting_requests']} |")
    return lines


def _track(result: dict) -> list[str]:
    splits = list(next(iter(result["configs"].values()))["track"])
    if not splits:
        return ["(not run: --no-track)"]
    lines = ["| configuration | " + " | ".join(f"{s} R@1 | {s} R@10 | {s} MRR@10" for s in splits) + " | seconds |",
             "|---|" + "---:|" * (3 * len(splits) + 1)]
    for label, cfg in result["configs"].items():
        cells = [f"{100 * cfg['track'][s][m]:.1f}" for s in splits for m in ("recall@1", "recall@10", "mrr@10")]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {cfg['track_seconds']:.0f} |")
    return lines


def render(result: dict) -> str:
    """The Markdown report."""
    prov, before = result["provenance"], result["before"]
    now = result["configs"][DEFAULT_CONFIG]
    held = now["sets"][HELD_OUT]["confusion"]
    md = ["# Rejections as people write them (issue 25)", "", f"Command: `{result['command']}`", "",
          f"Commit `{prov['commit']}`, {prov['date']}, {prov['machine']}. Packaged all-MiniLM-L6-v2, "
          "`Recommender` defaults (no fusion: the packaged model has no tuned fusion), MusicCaps catalog (5,521 "
          f"clips), top 10. Configurations: intent **off**; intent on with the rules of "
          + ", ".join(f"`{b}`" for b in before) + " (every other module as now); intent on with the rules "
          "**now**, the default. Figures ×100: *rejected* is the share "
          "of the top 10 carrying a rejected descriptor (requests that reject something), *clean* the share of "
          "those requests whose top 10 carries none, *wanted* the share of the top 10 carrying a wanted "
          "descriptor (requests that want something); *word*/*semantic* as in `melscribe/evaluation/intent.py` "
          f"(semantic threshold {now['metric_thresholds']['semantic']}).", "",
          "## Held-out forum requests (`experiments/data/forum_requests_5.jsonl`, written blind to the parser, "
          "never used to tune)", ""]
    md += _table(result, HELD_OUT, HELD_OUT_SPLIT) + ["", "Per phrasing family (word):", ""]
    md += _families(result, HELD_OUT)
    md += ["", "Confusion of the parser (what it excludes, judged by word match against the annotations; no "
           "retrieval):", ""] + _confusion(result, HELD_OUT)
    md += _learned(result)
    for name, split, origin in DEVELOPED_SETS:
        md += ["", f"## {name.capitalize()} ({origin}, developed on since)", ""]
        md += _table(result, name, split) + ["", "Per phrasing family (word):", ""]
        md += _families(result, name) + [""] + _confusion(result, name)
    md += ["", "## Negated requests of issue 9 (`negated_requests.jsonl`)", "", "Report half:", ""]
    md += _table(result, "negated (issue 9)", "report") + ["", "Calibration half (developed on):", ""]
    md += _table(result, "negated (issue 9)", "calibration")
    md += ["", "Confusion (all 90):", ""] + _confusion(result, "negated (issue 9)")
    md += ["", "## Development forum requests (`forum_requests_dev.jsonl`, developed on)", ""]
    md += _table(result, "forum dev", "dev") + [""] + _confusion(result, "forum dev")
    md += ["", "## Track-level (what `recommend()` returns; the request's own clip is relevant)", ""] + _track(result)
    md += ["", "## History", "", HISTORY]
    md += ["", "## Held-out: rejections missed by the rules now", ""]
    md += [f"- {m['id']} \"{_short(m['request'])}\": {', '.join(m['missed'])}" for m in held["missed"]] or ["- none"]
    md += ["", "## Held-out: wanted descriptors excluded, or exclusions from requests rejecting nothing (rules now)", ""]
    md += [f"- {m['id']} \"{_short(m['request'])}\": wanted {', '.join(m['wanted_excluded'])} excluded"
           for m in held["wanted_excluded"]]
    md += [f"- {m['id']} \"{_short(m['request'])}\": {m['n_excluded']} excluded ({', '.join(m['excluded'][:5])}…)"
           for m in held["false_rejection"]]
    if not held["wanted_excluded"] and not held["false_rejection"]:
        md += ["- none"]
    return "\n".join(md) + "\n"


def _learned(result: dict) -> list[str]:
    """The section on the learned negation scope: what it is, its cross-validation, its cost."""
    cfg = result["configs"].get(LEARNED_CONFIG)
    cv = cfg and cfg.get("cross_validation")
    if not cv:
        return []
    md = ["", f"## Learned negation scope (`{LEARNED_CONFIG}`)", "",
          "`melscribe/intent/scope_model.py`: a logistic regression (scikit-learn, liblinear, C "
          f"{cv['c']:g}) over each content word's context (the words before and after it, in and out of its clause, "
          "their stems, punctuation, a negating prefix, whether a rule's scope ended before it in its clause) gives "
          "the probability that the word is rejected; words above the threshold "
          f"({cv['threshold']:g}) that no rule covers are added as rejected phrases (runs of adjacent words), "
          "except words of an idiom the rules know rejects nothing (`NON_CUES` and the two words after one, "
          "`PREFIXED_STOPWORDS`, `GENERIC_PHRASES`). Trained in memory, deterministically, on first use, on the "
          "annotated requests of sets 1, 2, 3, development and negated (packaged as "
          "`melscribe/intent/scope_examples.py`; labels from the annotations: a word whose stem is a rejected "
          "descriptor's; set 4 too since round five). Features, C, threshold and the combination were chosen by "
          "leave-one-set-out "
          "cross-validation on sets 1, 2, development and negated, then measured once on set 3 (then held out): "
          "rejected share 12.9 → 11.8 %, wanted 60.2 → 60.2 %, track_MC R@10 85.81 → 85.60 (its prefix feature "
          "stripped \"un\" from any word, \"unique\" → \"ique\"; since round four it reads a prefix as the rules "
          "do). Set 3 then joined its training sets (measured once on set 4 at 1ef99c6: 10.1 → 8.4 %, wanted 55.5 → "
          "55.0, track_MC R@10 85.81 → 85.05), then set 4; set 5 was never read.", "",
          "Cross-validation, per word (each set read by a model trained on the others; *rules*: rejected "
          "words the rules cover / all rejected words, and not-rejected words they cover; *+a/−b*: uncovered "
          "words the model adds at that threshold, rejected / not rejected):", ""]
    ths = next(iter(cv["words"].values()))["thresholds"]
    md += ["| rules | rules cover (rejected) | rules cover (not rejected) | "
           + " | ".join(f"adds at {t:g}" for t in ths) + " |", "|---|---:|---:|" + "---:|" * len(ths)]
    for label, w in cv["words"].items():
        t = w["total"]
        md.append(f"| {label} | {t['rules_true']} of {t['rejected_words']} | {t['rules_false']} | " + " | ".join(
            f"+{t[f'added_true {x:g}']}/−{t[f'added_false {x:g}']}" for x in ths) + " |")
    md += ["", f"Cross-validation, whole parse at {cv['threshold']:g} (descriptors, judged as in the confusion "
           "tables; sum over the six sets):", "",
           "| rules | configuration | rejected descriptors missed | requests with a wanted descriptor excluded | "
           "requests rejecting nothing with something excluded |", "|---|---|---:|---:|---:|"]
    for label, per_set in cv["parse"].items():
        for which in ("rules", "rules + learned"):
            rows = [v[which] for v in per_set.values()]
            n = {k: sum(r[k] for r in rows) for k in ("rejected_descriptors_missed", "rejected_descriptors",
                                                      "requests_with_wanted_excluded", "requests",
                                                      "false_rejections", "non_rejecting_requests")}
            md.append(f"| {label} | {which} | {n['rejected_descriptors_missed']} of {n['rejected_descriptors']} "
                      f"({100 * n['rejected_descriptors_missed'] / n['rejected_descriptors']:.1f} %) | "
                      f"{n['requests_with_wanted_excluded']} of {n['requests']} | "
                      f"{n['false_rejections']} of {n['non_rejecting_requests']} |")
    md += ["", "Outcome on set 5 (measured once, tables above) and on the track-level splits: " + _verdict(result),
           "", "On sets 1, 2, 3, 4, development and negated the learned row is in-sample (the model is trained on them); "
           "only the cross-validation above speaks for it there."]
    ms = cv["read_ms_per_request"]
    md += ["", f"Reading a request's rejections (text only, best of 3 over {cv['timed_requests']} MC/MC_reco test and "
           f"training requests): rules {ms['rules']:.3f} ms, rules + learned {ms['rules + learned']:.3f} ms a request; "
           "training on first use well under a second after scikit-learn is imported."]
    return md


def _verdict(result: dict) -> str:
    """Whether the learned scope meets the bar for becoming the default, against the rules now: on set 3 a lower
    rejected share, a wanted share not lower, nothing more excluded from requests that reject nothing; and no
    track-level Recall@1/@10 lower (issue 25)."""
    now, learned = result["configs"][DEFAULT_CONFIG], result["configs"][LEARNED_CONFIG]
    a = now["sets"][HELD_OUT]
    b = learned["sets"][HELD_OUT]
    ma, mb = a["splits"][HELD_OUT_SPLIT], b["splits"][HELD_OUT_SPLIT]
    fa = {(m["id"], m["n_excluded"]) for m in a["confusion"]["false_rejection"]}
    fb = {(m["id"], m["n_excluded"]) for m in b["confusion"]["false_rejection"]}
    drops = [f"{s} {k} {100 * now['track'][s][k]:.2f} → {100 * learned['track'][s][k]:.2f}"
             for s in now["track"] for k in ("recall@1", "recall@10") if learned["track"][s][k] < now["track"][s][k]]
    checks = [("rejected share lower", mb["rejected@10 word"] < ma["rejected@10 word"],
               f"{100 * ma['rejected@10 word']:.1f} → {100 * mb['rejected@10 word']:.1f}"),
              ("wanted share not lower", mb["wanted@10 word"] >= ma["wanted@10 word"],
               f"{100 * ma['wanted@10 word']:.1f} → {100 * mb['wanted@10 word']:.1f}"),
              ("nothing more excluded from requests rejecting nothing", fb <= fa,
               f"{len(fa)} → {len(fb)} requests, the same ones with as many descriptors" if fb == fa else
               f"{len(fa)} → {len(fb)} requests"),
              ("no track-level Recall@1/@10 lower", not drops, "; ".join(drops) or "none lower")]
    text = "; ".join(f"{name}: {'yes' if ok else 'no'} ({detail})" for name, ok, detail in checks)
    if all(ok for _, ok, _ in checks):
        return text + ". All met."
    return text + (". Kept as an option, off by default: on the track-level splits it excludes descriptors from "
                   "requests that reject nothing (MC captions), so Recall drops there, which issue 25 rules out."
                   if all(ok for _, ok, _ in checks[:3]) else ". Kept as an option, off by default.")


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[:n] + "…"


def compact(result: dict) -> dict:
    """The result as kept in the repository: per-request rows (per-track flags as strings of 0/1, one character
    per track) for the default configuration only; the others keep their aggregates (the Markdown report shows
    nothing else of them)."""
    out = json.loads(json.dumps(result))
    for name, cfg in out["configs"].items():
        for entry in cfg["sets"].values():
            if name != DEFAULT_CONFIG:
                entry.pop("requests", None)
                continue
            for row in entry["requests"]:
                compact_request_row(row)
    return out


if __name__ == "__main__":
    main()
