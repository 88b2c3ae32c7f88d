"""How long reading a request's rejections takes (``melscribe.intent.rejections.find_rejections``), now and at
earlier revisions, on the MC and MC_reco test requests and every forum set, and how many requests each earlier
revision reads otherwise.

    python experiments/bench_intent_parse.py --revs f65d5d5 ea11e37 --out experiments/results/intent_parse

Each revision's ``rejections.py`` is taken from git and run with the current ``words`` lexicon and helpers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import machine_info, rejections_at, write_measurement  # noqa: E402

from melscribe.data import load_mc_test  # noqa: E402
from melscribe.intent import rejections  # noqa: E402

HERE = Path(__file__).resolve().parent


def requests(data_dir: str | None) -> dict[str, list[str]]:
    """The MC_reco and MC test requests, and every request of the forum sets, by source."""
    forum = []
    for path in sorted((HERE / "data").glob("forum_requests*.jsonl")):
        forum += [json.loads(line)["request"] for line in path.read_text().splitlines() if line.strip()]
    return {"MC_reco": [r.text for r in load_mc_test(data_dir, rephrased=True)],
            "MC": [r.text for r in load_mc_test(data_dir)], "forum": forum}


def measure(module, texts: list[str]) -> tuple[float, list]:
    """ms per request (one pass after a warm-up pass) and the rejections read."""
    found = [module.find_rejections(t) for t in texts]
    started = time.perf_counter()
    for t in texts:
        module.find_rejections(t)
    ms = (time.perf_counter() - started) / len(texts) * 1000
    return ms, [[(r.cue, r.phrase, r.start, r.end) for r in rs] for rs in found]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--revs", nargs="*", default=["f65d5d5", "ea11e37"], help="earlier revisions to compare with")
    p.add_argument("--data-dir", help="the data directory (default $MELSCRIBE_DATA)")
    p.add_argument("--out", default=str(HERE / "results" / "intent_parse"), help="report stem")
    args = p.parse_args()
    by_source = requests(args.data_dir)
    texts = [t for ts in by_source.values() for t in ts]
    now_ms, now_found = measure(rejections, texts)
    rows = [{"revision": "now", "ms_per_request": round(now_ms, 3), "same_rejections_as_now": True}]
    for rev in args.revs:
        ms, found = measure(rejections_at(rev), texts)
        differ, k = {}, 0
        for source, ts in by_source.items():  # requests whose rejections that revision reads otherwise
            differ[source] = sum(a != b for a, b in zip(found[k:k + len(ts)], now_found[k:k + len(ts)]))
            k += len(ts)
        rows.append({"revision": rev, "ms_per_request": round(ms, 3), "same_rejections_as_now": found == now_found,
                     "requests_read_otherwise": differ})
    info = dict(machine_info(), command="python experiments/bench_intent_parse.py " + " ".join(sys.argv[1:]),
                requests=len(texts), rows=rows)
    sources = list(by_source)
    body = ["| revision | ms per request | same rejections as now | " + " | ".join(
        f"{s} requests read otherwise (of {len(by_source[s]):,})" for s in sources) + " |",
        "|---|---:|---|" + "---:|" * len(sources)]
    body += [f"| {r['revision']} | {r['ms_per_request']} | {r['same_rejections_as_now']} | " + " | ".join(
        str(r.get("requests_read_otherwise", {}).get(s, 0)) for s in sources) + " |" for r in rows]
    write_measurement(Path(args.out), info, "Reading rejections: time per request",
                      f"`find_rejections` on {len(texts):,} requests (MC_reco and MC test, forum sets), one pass "
                      "after a warm-up pass, one thread.", body)


if __name__ == "__main__":
    main()
