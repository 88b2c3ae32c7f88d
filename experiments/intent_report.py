"""Intent handling on requests that reject something (issue 9), written to experiments/results/intent.md/.json.

    python experiments/intent_report.py [--model PATH] [--data-dir DIR] [--out experiments/results/intent]

Systems: the packaged all-MiniLM-L6-v2 and, with ``--model``, a trained bi-encoder (skipped with the reason if
it cannot be loaded), each dense-only (``fusion=False``) and with ``fusion=True`` (the model's tuned fusion,
else untuned RRF), each with intent handling off and on, over the MusicCaps catalog. Metrics and thresholds:
``melscribe/intent_eval.py``; requests: ``experiments/data/negated_requests.jsonl`` (its README).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.config import PACKAGED_MINILM  # noqa: E402
from melscribe.encoding.encoder import TextEncoder  # noqa: E402
from melscribe.errors import ModelUnavailableError  # noqa: E402
from melscribe.evaluation.protocol import provenance  # noqa: E402
from melscribe.fileio import write_text_atomic  # noqa: E402
from melscribe.intent.matching import load_synonym_pairs  # noqa: E402
from melscribe.evaluation.intent import (CarryJudge, compact_request_row, format_report_table, intent_report, leaks,  # noqa: E402
                                         load_requests)
from melscribe.serve.recommend import Recommender, load_catalog  # noqa: E402

HERE = Path(__file__).resolve().parent
REQUESTS = HERE / "data" / "negated_requests.jsonl"
#: What changed after the report half was first evaluated, so that its figures are read for what they are.
HISTORY = ("The report half was first evaluated at commit e01b35c (packaged MiniLM, intent on: rejected 0.7 "
           "word, wanted 78.6 word). Looking at its parses afterwards showed two text-tidying bugs, fixed in the "
           "next commit with tests: \"no singing at all\" left \"at all\" in the encoded text (and \"at\", a "
           "MusicCaps descriptor, among the wanted ones), and \"that's not too dark\" left \"that's\". No cue, "
           "scope rule, lexicon entry or threshold was changed after that first evaluation. Seen there but left as "
           "they are (changing them would tune on the report half): \"no strings\" also rejects guitar "
           "descriptors with \"string\" (\"12-string acoustic guitar\"); \"no sad lyrics\" rejects the bare "
           "vocal descriptors (\"vocals\", \"singing\") through the head rule; \"less guitar\" excludes guitar "
           "as \"no guitar\" would.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="trained bi-encoder folder to report beside the packaged MiniLM")
    parser.add_argument("--data-dir", help="data directory (default: $MELSCRIBE_DATA)")
    parser.add_argument("--requests", type=Path, default=REQUESTS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "intent", help="output stem (.md, .json)")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()

    catalog = load_catalog(None, args.data_dir)
    minilm = TextEncoder(PACKAGED_MINILM)
    base = Recommender(minilm, catalog, fusion=False)
    requests = load_requests(args.requests, base.index.vocabulary)
    judge = CarryJudge.calibrated(base.index.vocabulary, base.index.vocabulary_embeddings, minilm)

    def trained():
        if not args.model:
            raise ModelUnavailableError("no --model given")
        if not Path(args.model).exists():
            raise ModelUnavailableError(f"{args.model} does not exist")
        return TextEncoder(args.model)

    encoders = {PACKAGED_MINILM: lambda: minilm, "trained": trained}
    systems = {}
    for name, make in encoders.items():
        systems[name] = (lambda make=make: Recommender(make(), catalog, fusion=False)) if name != PACKAGED_MINILM \
            else (lambda: base)
        systems[f"{name} + fusion"] = lambda make=make: Recommender(make(), catalog, fusion=True)
    result = intent_report(systems, requests, judge, k=args.k)
    result["provenance"] = provenance()
    command = "python experiments/intent_report.py" + (f" --model {args.model}" if args.model else "")
    result["command"] = command
    pairs = load_synonym_pairs()
    md = render(result, requests, len(pairs), sum(s for *_, s in pairs))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(compact(result), indent=1))
    write_text_atomic(args.out.with_suffix(".md"), md)
    print(md)


def compact(result: dict) -> dict:
    """The result with each request's per-track flags as strings of 0/1 (one character per track), and
    carried rejected descriptors only where there are some."""
    out = json.loads(json.dumps(result))
    for per in out["rows"].values():
        for evaluation in per.values():
            for row in evaluation["requests"]:
                compact_request_row(row)
    return out


def render(result: dict, requests, n_pairs: int, n_same: int) -> str:
    k, prov = result["k"], result["provenance"]
    n = result["requests"]
    md = ["# Intent handling on negated requests (issue 9)", "",
          f"Command: `{result['command']}`", "",
          f"Commit `{prov['commit']}`, {prov['date']}, {prov['machine']}. MusicCaps catalog (5,521 clips).", "",
          f"Requests: `experiments/data/negated_requests.jsonl`, {sum(n.values())} hand-written requests "
          f"({sum(bool(r.rejects) for r in requests)} reject something, the others are controls whose "
          "negation-like words reject nothing), each with the MusicCaps descriptors it rejects and wants; "
          f"{n.get('report', 0)} form the **report** half, {n.get('calibration', 0)} the calibration half on which "
          "the parser was developed and its choices made. Figures are ×100, over the requests that reject "
          f"(for *rejected*, *clean*) or want (for *wanted*) something; top {k}.", "",
          f"- **rejected**: share of the top {k} carrying a rejected descriptor; **requests clean**: share of "
          f"requests none of whose top {k} carries one; **wanted**: share of the top {k} carrying a wanted one.",
          "- **word**: the descriptor's words appear in one of the track's descriptors (plural-insensitive; "
          "\"no vocals\" does not carry \"vocals\"). **semantic**: word, or a track descriptor sharing no word with "
          f"it at cosine ≥ {result['metric_thresholds']['semantic']} under the packaged MiniLM, the threshold that "
          f"classifies the most of {n_pairs} hand-labelled pairs right ({n_same} synonyms, "
          "`melscribe/intent/synonyms.json`). **loose**: the same at cosine ≥ "
          f"{result['metric_thresholds']['loose']}, the threshold of the best balanced accuracy on those pairs; "
          "most descriptors it admits are not synonyms, so it over-counts: an upper bound.",
          "- intent **on**: `Recommender(intent=True)`, the default (`melscribe/intent/`); **off**: "
          "`recommend(..., intent=False)`, the behaviour before. Semantic threshold of the parser per model "
          "(calibrated on the same labelled pairs): "
          + ", ".join(f"{m} {t}" for m, t in result["system_thresholds"].items()) + ".",
          "- fusion: `Recommender(fusion=True)`: the model's tuned fusion (`fusion.json`), else equal-weight RRF "
          "with TF-IDF; the rows without it pass `fusion=False`.", "",
          "## Report half", "", format_report_table(result, "report"), "",
          "## Calibration half (for information: the parser was developed on it)", "",
          format_report_table(result, "calibration"), "",
          "## All requests", "", format_report_table(result, "all"), ""]
    default = next(iter(result["rows"].values()), {}).get("intent on")
    if default is not None:
        lines = leaks(default, requests, "report")
        md += [f"## Report-half requests whose top {k} still carries a rejected descriptor "
               f"({next(iter(result['rows']))}, intent on)", ""] + ([f"- {x}" for x in lines] or ["- none"]) + [""]
    md += ["## Seconds per run (all requests)", "", "| system | intent off | intent on |", "|---|---|---|"]
    md += [f"| {label} | {per['intent off']['seconds']:.1f} | {per['intent on']['seconds']:.1f} |"
           for label, per in result["rows"].items()]
    if result["skipped"]:
        md += ["", "## Skipped", ""] + [f"- {label}: {why}" for label, why in result["skipped"].items()]
    md += ["", "## History", "", HISTORY]
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main()
