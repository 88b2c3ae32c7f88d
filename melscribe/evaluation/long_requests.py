"""Requests longer than the encoder's window: a deterministic evaluation set, and how each way of reading them
(truncation, a longer window, windows pooled) does on it (``experiments/long_requests.py``).

The track-level requests (:data:`melscribe.evaluation.protocol.TRACK_SPLITS`) are short (MC_reco: 71 tokens at
most; MC: 137), so long variants of them are made (:func:`long_variants`), each keeping the request's own
relevant track:

* ``end``: :data:`FILLER` sentences first (between :data:`FILLER_TOKENS` tokens of them, drawn without
  musical content), then the whole request: what the request asks for is at its end;
* ``among``: the request's first half, the filler, then "Also: " and its second half;
* ``concat``: other requests of the same split (about the same number of tokens as ``end``'s filler), then the
  request: several track descriptions, the wanted one last.

Everything is seeded per request (``random.Random(f"{seed}:{variant}:{index}")``), so the set is the same on
every machine. :data:`FILLER` was written for this set: forum-style context sentences (who is asking, why,
when) that name no instrument, genre, mood, tempo or sound; :func:`filler_descriptor_hits` lists the MusicCaps
descriptors they contain verbatim (the report prints them).
"""

from __future__ import annotations

import random
import re
import statistics
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Mapping, Sequence

import numpy as np

from melscribe.data import Record

VARIANTS = ("end", "among", "concat")
#: Range of the number of tokens (the packaged MiniLM's) of filler put before or among a request.
FILLER_TOKENS = (250, 500)
#: Context sentences without musical content, the filler of the ``end`` and ``among`` variants.
FILLER = (
    "I have been using this app for a couple of weeks now and I mostly like it.",
    "My sister told me to ask here because she found a lot of good stuff this way.",
    "I work long shifts at the hospital and the commute home takes almost an hour.",
    "Last month we moved to a new apartment on the other side of the city.",
    "To be honest I am not sure how to describe what I want, so bear with me.",
    "I usually make a new playlist every weekend, but lately I have run out of ideas.",
    "This is for a small get-together at my place on Saturday with a few old friends.",
    "My laptop is old and takes ages to start, so keep that in mind.",
    "I tried searching on my own yesterday but the results were all over the place.",
    "A friend of mine recommended this service during lunch the other day.",
    "I am writing this on my phone, so sorry for any typos.",
    "We are planning a road trip along the coast in July.",
    "My kids keep asking me to put something on while they do their homework.",
    "I spend most evenings cooking, and I like having something on while I do.",
    "I have been trying to read more books this year, mostly history and biographies.",
    "The office I work in is open plan, and it gets distracting in the afternoon.",
    "I started going to the gym again after a long break in January.",
    "Our reading group meets every other Thursday and the host always asks me to pick.",
    "I grew up in a small town and only discovered a lot of things after college.",
    "I am not an expert at all, I just know what I like when I hear it.",
    "My partner and I have very different taste, so we argue about this a lot.",
    "I have a long flight coming up next week and want to download things beforehand.",
    "Last time I asked for recommendations the suggestions were a bit too obvious.",
    "I like discovering things that are not in every top chart.",
    "It is for a slideshow of photos from my grandparents' anniversary.",
    "I study for exams most nights and need help keeping my mind on it.",
    "Thanks in advance to anyone who takes the time to read all of this.",
    "Sorry if this has been asked before, I could not find a similar post.",
    "I have tried a few other apps and none of them really got it right.",
    "My old playlist got deleted when I switched phones, so I am starting over.",
    "We are painting the living room this weekend and it will take all day.",
    "I run a small bakery and we open early in the morning.",
    "I am hosting a dinner for my in-laws and want the evening to go well.",
    "The weather here has been grey for weeks and everyone is a bit tired of it.",
    "I usually listen on my way to work, on the train, with cheap earbuds.",
    "I did not expect to write this much, but I want to be clear about it.",
    "A colleague of mine has great taste, but she is on holiday right now.",
    "My dog hides under the table during storms and I read that this can help.",
    "I am putting together a video for my cousin's graduation next month.",
    "Any suggestions are welcome, even if they are a bit outside of what I describe.",
)


@dataclass(frozen=True)
class LongSet:
    """Long variants of one split: ``records`` (text = the long request, the original's track and descriptors)
    and ``source`` (the original request of each)."""

    name: str
    records: list[Record]
    source: list[str]


def sample_records(records: Sequence[Record], n: int, seed: int = 0) -> list[Record]:
    """``n`` of ``records`` (all if ``n`` is larger), in a seeded order."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in sorted(order[:n])]


def long_variants(records: Sequence[Record], pool: Sequence[Record], variant: str, count: Callable[[str], int],
                  seed: int = 0, filler: Sequence[str] = FILLER,
                  filler_tokens: tuple[int, int] = FILLER_TOKENS) -> list[Record]:
    """Long variants (:data:`VARIANTS`) of ``records``; ``pool`` holds the other requests ``concat`` draws from
    (the split's), ``count`` counts a text's tokens (special tokens excluded)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    out = []
    for i, rec in enumerate(records):
        rng = random.Random(f"{seed}:{variant}:{i}:{rec.track_id}")
        budget = rng.randint(*filler_tokens)
        if variant == "concat":
            others = [r.text for r in pool if r.track_id != rec.track_id]
            text = _fill(lambda: rng.choice(others), budget, count) + " " + rec.text
        else:
            sentences = list(filler)
            rng.shuffle(sentences)
            it = iter(sentences * 10)
            middle = _fill(lambda: next(it), budget, count)
            if variant == "end":
                text = middle + " " + rec.text
            else:
                head, tail = split_request(rec.text)
                text = f"{head} {middle} Also: {tail}"
        out.append(replace(rec, text=text, source=f"{rec.source}+long-{variant}"))
    return out


def _fill(draw: Callable[[], str], budget: int, count: Callable[[str], int]) -> str:
    parts: list[str] = []
    total = 0
    while total < budget:
        part = draw()
        parts.append(part)
        total += count(part)
    return " ".join(parts)


def split_request(text: str) -> tuple[str, str]:
    """A request in two halves: at the sentence end nearest its middle, else at the comma nearest it, else at
    the space nearest it; the head ends with a full stop."""
    text = text.strip()
    mid = len(text) / 2
    for pattern in (r"(?<=[.!?])\s+", r",\s+", r"\s+"):
        cuts = [m for m in re.finditer(pattern, text) if 0 < m.start() < len(text) - 1]
        if cuts:
            m = min(cuts, key=lambda m: abs(m.start() - mid))
            head, tail = text[:m.start()].rstrip(" ,;:"), text[m.end():]
            return (head if head.endswith((".", "!", "?")) else head + "."), tail
    return text, text


def filler_descriptor_hits(vocabulary: Sequence[str], filler: Sequence[str] = FILLER) -> list[str]:
    """The descriptors of ``vocabulary`` found verbatim (whole words, any case) in the filler sentences."""
    text = " ".join(filler).lower()
    return sorted({d for d in vocabulary if d and re.search(r"(?<![a-z0-9])" + re.escape(d.lower()) + r"(?![a-z0-9])", text)})


# ---- measuring ------------------------------------------------------------------------------------
def recall_at(queries: np.ndarray, docs: np.ndarray, relevant: Sequence[int], ks: Sequence[int] = (1, 10)) -> dict[str, float]:
    """Recall@k of L2-normalised ``queries`` against ``docs`` (one relevant row per query; ties count against
    it): ``{"recall@1": ..., "recall@10": ...}``."""
    scores = queries @ docs.T
    rel = scores[np.arange(len(relevant)), np.asarray(relevant)]
    rank = (scores >= rel[:, None]).sum(axis=1) - 1  # 0 = first
    return {f"recall@{k}": float((rank < k).mean()) for k in ks}


def encode_options(encoder, texts: Sequence[str], policies: Mapping[str, object], batch_size: int = 64,
                   relevance: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Embeddings of ``texts`` read whole by ``encoder`` under each named :class:`LongTextPolicy` (``relevance``:
    as for :meth:`TextEncoder.encode_whole`): the pieces of policies that cut alike are encoded once and pooled
    each way (by :func:`melscribe.encoding.long_text.pool`, as :meth:`TextEncoder.encode_whole` does)."""
    from melscribe.encoding.long_text import pool

    out: dict[str, np.ndarray] = {}
    by_cut: dict[tuple, list[str]] = {}
    for name, p in policies.items():
        by_cut.setdefault((p.split, p.overlap if p.split == "tokens" else 0, p.first_window), []).append(name)
    for names in by_cut.values():
        first = policies[names[0]]
        plans = [encoder.windows(t, first) for t in texts]
        pieces, spans = [], []
        for t, plan in zip(texts, plans):
            start = len(pieces)
            if plan is None:
                pieces.append(t)
            else:
                prepared = encoder.prepared_text(t)
                pieces.extend(prepared[w.start:w.end] for w in plan)
            spans.append((start, len(pieces)))
        emb = encoder.encode(pieces, batch_size=batch_size)
        scores = relevance(emb) if relevance is not None else None
        for name in names:
            p = policies[name]
            out[name] = np.stack([emb[a] if plan is None else
                                  pool(emb[a:b], plan, p.pooling, None if scores is None else scores[a:b], p.temperature)
                                  for (a, b), plan in zip(spans, plans)])
    return out


def latency_ms(encoders: Mapping[str, Callable[[list[str]], np.ndarray]], texts: Sequence[str],
               repeats: int = 3) -> dict[str, dict[str, float]]:
    """p50 and p90 milliseconds of encoding each text alone with each of ``encoders`` (by name), ``repeats`` times
    each after a warm-up; the encoders take turns text by text, so that a busy moment of the machine falls on
    all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for fn in encoders.values():
        fn([texts[0]])
    for _ in range(repeats):
        for t in texts:
            for name, fn in encoders.items():
                t0 = time.perf_counter()
                fn([t])
                times[name].append(1000 * (time.perf_counter() - t0))
    out = {}
    for name, ts in times.items():
        ts.sort()
        out[name] = {"p50_ms": round(statistics.median(ts), 2), "p90_ms": round(ts[int(0.9 * (len(ts) - 1))], 2),
                     "texts": len(texts)}
    return out


# ---- the experiment ------------------------------------------------------------------------------
def window_policies() -> dict:
    """The ways of reading a long request in pieces that :func:`evaluate` measures, by name."""
    from melscribe.encoding.long_text import LongTextPolicy as P

    return {"token windows (overlap 32), mean": P("tokens", 32, "mean"),
            "token windows (overlap 32), token-weighted": P("tokens", 32, "tokens"),
            "token windows (overlap 32), relevance T=0.05": P("tokens", 32, "relevance", 0.05),
            "sentence windows, mean": P("sentences", 0, "mean"),
            "sentence windows, relevance T=0.05": P("sentences", 0, "relevance", 0.05),
            "each sentence, mean": P("each-sentence", 0, "mean"),
            "each sentence, relevance T=0 (best sentence only)": P("each-sentence", 0, "relevance", 0.0),
            "each sentence, relevance T=0.02": P("each-sentence", 0, "relevance", 0.02),
            "each sentence, relevance T=0.05": P("each-sentence", 0, "relevance", 0.05),
            "each sentence, relevance T=0.1": P("each-sentence", 0, "relevance", 0.1),
            "first window + each later sentence, relevance T=0.05": P("each-sentence", 0, "relevance", 0.05, True),
            "first window + each later sentence above it, T=0.05": P("each-sentence", 0, "above-first", 0.05, True),
            "first window + each later sentence above it, T=0.1": P("each-sentence", 0, "above-first", 0.1, True)}


#: The longer window measured (MiniLM's position embeddings stop at 512).
LONGER_WINDOW = 512


def evaluate(data_dir=None, *, model=None, backend: str = "onnx", windows: Sequence[int] = (256, 96), n: int = 500,
             seed: int = 0, latency_backends: Sequence[str] = ("onnx-int8", "onnx"), latency_texts: int = 30,
             progress: Callable[[str], None] = print) -> dict:
    """Recall@1/@10 (track-level, dense) of every way of reading requests on the ordinary track-level splits,
    their requests over the window, and the long variants (:func:`long_variants`, ``n`` per split), for each
    window in ``windows`` (the model's own first; a smaller one stands for a bi-encoder trained with a shorter
    maximum length); then encoding latency per request. Returns everything as JSON-able values."""
    from melscribe.data import load_musiccaps, load_test_split
    from melscribe.encoding.encoder import TextEncoder
    from melscribe.encoding.long_text import DEFAULT_POLICY
    from melscribe.evaluation.protocol import TRACK_SPLITS, provenance
    from melscribe.pairs import doc_id

    t_start = time.perf_counter()
    base = TextEncoder(model, backend=backend)
    specials = base.token_count("")
    own = base.max_seq_length
    windows = [own] + [w for w in windows if w != own]

    def count(text: str) -> int:
        return base.token_count(text) - specials

    catalog = load_musiccaps(data_dir)
    docs = list(dict.fromkeys(", ".join(r.descriptors) for r in catalog if r.descriptors))
    doc_row = {doc_id(d): i for i, d in enumerate(docs)}
    sets: dict[str, dict[str, list[Record]]] = {}
    for split, name in TRACK_SPLITS.items():
        records = load_test_split(name, data_dir)
        targets = sample_records(records, n, seed)
        sets[split] = {"ordinary": records}
        for variant in VARIANTS:
            sets[split][f"long-{variant}"] = long_variants(targets, records, variant, count, seed)
    token_counts = {split: {name: [count(r.text) + specials for r in recs] for name, recs in by_set.items()}
                    for split, by_set in sets.items()}

    encoders = {own: base}
    for w in set(windows) | {LONGER_WINDOW}:
        if w not in encoders:
            encoders[w] = TextEncoder(base.source if model is None else model, backend=backend, max_seq_length=w)
    cache: dict[tuple, np.ndarray] = {}

    def truncated(w: int, split: str, name: str) -> np.ndarray:
        texts = [r.text for r in sets[split][name]]
        key = (w, split, name)
        if key not in cache:
            fits = max(token_counts[split][name]) <= min(w, own)  # read alike by every window at least this long
            alias = (own, split, name) if fits and w != own else None
            cache[key] = truncated(*alias) if alias else encoders[w].encode(texts)
        return cache[key]

    result: dict = {"windows": {}, "sets": {}, "filler_tokens": list(FILLER_TOKENS), "n": n, "seed": seed,
                    "backend": backend, "model": base.name, "default_policy": DEFAULT_POLICY.label}
    for split, by_set in sets.items():
        result["sets"][split] = {name: {"requests": len(recs), **_describe_counts(token_counts[split][name])}
                                 for name, recs in by_set.items()}
    policies = window_policies()
    own_docs = None  # the descriptor sets embedded with the model's own window
    for w in windows:
        enc = encoders[w]
        progress(f"window {w}: embedding {len(docs)} descriptor sets")
        doc_emb = enc.encode(docs)
        own_docs = doc_emb if w == own else own_docs
        rows: dict[str, dict] = {}
        for split, by_set in sets.items():
            for name, recs in by_set.items():
                relevant = [doc_row[doc_id(", ".join(r.descriptors))] for r in recs]
                texts = [r.text for r in recs]
                over = [i for i, c in enumerate(token_counts[split][name]) if c > w]
                progress(f"window {w}: {split} {name} ({len(recs)} requests, {len(over)} over the window)")
                emb = {f"truncate at {w} (today)": truncated(w, split, name)}
                if w < LONGER_WINDOW:
                    emb[f"window {LONGER_WINDOW} (truncate there)"] = truncated(LONGER_WINDOW, split, name)
                if over:
                    emb.update(encode_options(enc, texts, policies, relevance=lambda e: (e @ doc_emb.T).max(axis=1)))
                else:  # nothing to cut: every policy reads the texts as truncation does
                    emb.update({p: emb[f"truncate at {w} (today)"] for p in policies})
                keys = [("all", list(range(len(recs))))]
                if name == "ordinary":
                    keys.append(("over the window", over))
                for option, e in emb.items():
                    for label, idx in keys:
                        cell = recall_at(e[idx], doc_emb, [relevant[i] for i in idx]) if idx else {}
                        rows.setdefault(option, {}).setdefault(split, {})[
                            name if label == "all" else f"{name}, over the window"] = dict(cell, requests=len(idx))
        result["windows"][str(w)] = rows
    # short requests: identical embeddings to today's, bit for bit (the model's own window)
    result["short_identical"] = {}
    for split in sets:
        texts = [r.text for r in sets[split]["ordinary"]]
        short = [i for i, t in enumerate(texts) if base.windows(t) is None]
        whole = base.encode_whole(texts)
        result["short_identical"][split] = {"short": len(short), "of": len(texts),
                                            "identical": bool(np.array_equal(whole[short], truncated(own, split, "ordinary")[short]))}
    check = [r.text for r in sets[next(iter(sets))]["long-end"][:50]]
    default_name = next(k for k, p in policies.items() if p == DEFAULT_POLICY)
    best = (lambda e: (e @ own_docs.T).max(axis=1))
    result["encode_whole_matches_table"] = bool(np.allclose(
        base.encode_whole(check, relevance=best),
        encode_options(base, check, {default_name: DEFAULT_POLICY}, relevance=best)[default_name], atol=1e-6))
    result["latency"] = measure_latency(sets, model, latency_backends, latency_texts, docs, progress)
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    result["provenance"] = provenance()
    return result


def retime(previous: Mapping, data_dir=None, *, model=None, latency_backends: Sequence[str] = ("onnx-int8", "onnx"),
           latency_texts: int = 30, command: str = "", progress: Callable[[str], None] = print) -> dict:
    """``previous`` (a result of :func:`evaluate`) with its latency measured again on this machine, on the same
    requests (its ``n`` and ``seed``); the new measurement's provenance and ``command`` are kept beside the old."""
    from melscribe.data import load_musiccaps, load_test_split
    from melscribe.encoding.encoder import TextEncoder
    from melscribe.evaluation.protocol import TRACK_SPLITS, provenance

    base = TextEncoder(model, backend=latency_backends[0])
    specials = base.token_count("")
    records = load_test_split(TRACK_SPLITS["track_MC_reco"], data_dir)
    targets = sample_records(records, previous["n"], previous["seed"])
    sets = {"track_MC_reco": {"ordinary": records, "long-end": long_variants(
        targets, records, "end", lambda t: base.token_count(t) - specials, previous["seed"])}}
    docs = list(dict.fromkeys(", ".join(r.descriptors) for r in load_musiccaps(data_dir) if r.descriptors))
    latency = measure_latency(sets, model, latency_backends, latency_texts, docs, progress)
    return dict(previous, latency=latency, latency_provenance=dict(provenance(), command=command))


def _describe_counts(counts: Sequence[int]) -> dict:
    c = np.asarray(counts)
    return {"tokens_p50": int(np.median(c)), "tokens_min": int(c.min()), "tokens_max": int(c.max()),
            **{f"over_{w}": int((c > w).sum()) for w in (96, 256, 512)}}


def measure_latency(sets: Mapping[str, Mapping[str, list[Record]]], model, backends: Sequence[str], texts_n: int,
                    docs: Sequence[str], progress: Callable[[str], None] = print) -> dict:
    """p50/p90 ms to encode one request alone, per backend, length (short: MC_reco requests; long: the
    ``long-end`` variants; longest accepted: requests joined up to ``MAX_REQUEST_CHARS`` characters) and way of
    reading it (truncation, ``encode_whole`` with relevance scores from an exact search of ``docs``' embeddings,
    as ``recommend()`` on a flat index, a 512-token window)."""
    from melscribe.encoding.encoder import TextEncoder
    from melscribe.encoding.long_text import MAX_REQUEST_CHARS

    split = "track_MC_reco" if "track_MC_reco" in sets else next(iter(sets))
    short = [r.text for r in sets[split]["ordinary"][:texts_n]]
    long = [r.text for r in sets[split]["long-end"][:texts_n]]
    pool = [r.text for r in sets[split]["ordinary"]]
    longest = []
    for i in range(max(1, texts_n // 3)):
        text = ""
        j = i * 97
        while len(text) < MAX_REQUEST_CHARS - 300:
            text += pool[j % len(pool)] + " "
            j += 1
        longest.append(text.strip())
    out: dict = {}
    for backend in backends:
        enc = TextEncoder(model, backend=backend)
        wide = TextEncoder(enc.source if model is None else model, backend=backend, max_seq_length=LONGER_WINDOW)
        doc_emb = enc.encode(list(docs))
        whole = partial(enc.encode_whole, relevance=lambda e: (e @ doc_emb.T).max(axis=1))
        lengths = {"short": short, "long": long, "longest accepted": longest}
        out[backend] = {"tokens_p50": {k: int(np.median([enc.token_count(t) for t in v])) for k, v in lengths.items()}}
        options = {"truncate (today)": enc.encode, "read whole (encode_whole, default)": whole,
                   f"window {LONGER_WINDOW}": wide.encode}
        for length, texts in lengths.items():
            progress(f"latency: {backend} {length}")
            for option, figures in latency_ms(options, texts).items():
                out[backend].setdefault(option, {})[length] = figures
    return out


def format_report(result: Mapping, command: str) -> str:
    """The Markdown report of :func:`evaluate`."""
    prov = result["provenance"]
    lines = ["# Long requests: truncation, a longer window, windows pooled", "",
             f"Command: `{command}`", "",
             f"Commit `{prov['commit']}`, {prov['date']}, {prov['machine']}. Model `{result['model']}`, "
             f"{result['backend']} backend (embeddings within 1e-4 cosine of torch's). Dense track-level retrieval "
             "(every MusicCaps clip's aspect list is a document, the request's own clip is relevant), no fusion nor "
             f"intent. Long variants: {result['n']} requests per split (seed {result['seed']}), "
             f"filler of {result['filler_tokens'][0]}–{result['filler_tokens'][1]} tokens "
             "(`melscribe/evaluation/long_requests.py`).", "",
             "## The requests", "", "| split | set | requests | tokens p50 | min | max | > 96 | > 256 | > 512 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for split, by_set in result["sets"].items():
        for name, d in by_set.items():
            lines.append(f"| {split} | {name} | {d['requests']} | {d['tokens_p50']} | {d['tokens_min']} | "
                         f"{d['tokens_max']} | {d['over_96']} | {d['over_256']} | {d['over_512']} |")
    for w, rows in result["windows"].items():
        lines += ["", f"## Window {w} tokens: Recall@1 / Recall@10 (×100)", ""]
        for split in result["sets"]:
            cols = list(next(iter(rows.values()))[split])
            lines += [f"**{split}**", "", "| reading | " + " | ".join(f"{c} ({next(iter(rows.values()))[split][c]['requests']})"
                                                                 for c in cols) + " |",
                      "|---|" + "---:|" * len(cols)]
            for option, per_split in rows.items():
                cells = []
                for c in cols:
                    r = per_split[split][c]
                    cells.append(f"{100 * r['recall@1']:.1f} / {100 * r['recall@10']:.1f}" if "recall@1" in r else "—")
                lines.append(f"| {option} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["## The choice", "",
              f"The default (`{result['default_policy']}`): a request that fits is embedded whole, as before; "
              "one over the window is read as its first window (exactly what truncation read) and each later "
              "sentence, a later sentence counting only if it is closer to a descriptor set of the catalog than the "
              "first window is, weighted by `tokens × exp(gain / 0.1)`. It is the one reading measured here that "
              "loses nothing on the ordinary requests of any split at either window (with 96 tokens the 56 track_MC "
              "captions over the window keep truncation's figures; every sentence pooled alone, the previous "
              "default `each-sentence/relevance@0.05`, lost on them: their first window holds most of what they "
              "describe), and it still reads the end of a long request where truncation reads nothing of it. The "
              "price: when the request is cut in two around chit-chat (long-among) its first half is read only "
              "inside a first window of chit-chat, so it does less well there than the previous default, and so "
              "does a request after other requests (long-concat). Unweighted pooling (mean or token-weighted) and "
              "a 512-token window let the chit-chat dominate. The temperatures 0.05 and 0.1 were picked on runs "
              "over subsets of these requests (not held out); the table shows the neighbours.", ""]
    lines += ["## Short requests", ""]
    for split, d in result["short_identical"].items():
        lines.append(f"- {split}: {d['short']} of {d['of']} requests fit the window; `encode_whole` gives them "
                     f"{'exactly (bit for bit)' if d['identical'] else 'NOT'} the embeddings of `encode`.")
    lines.append(f"- `encode_whole` (default policy `{result['default_policy']}`) gives the table's embeddings: "
                 f"{result['encode_whole_matches_table']}.")
    lines += ["", "## Encoding latency per request (ms, p50 / p90; one request at a time)", ""]
    if "latency_provenance" in result:
        lp = result["latency_provenance"]
        lines += [f"Measured again by `{lp['command']}`: commit `{lp['commit']}`, {lp['date']}, {lp['machine']}.", ""]
    lines += ["Short: the first 30 MC_reco requests; long: the first 30 of its `long-end` set; longest accepted: "
              "MC_reco requests joined up to `MAX_REQUEST_CHARS` (10,000 characters). The ways of reading take turns "
              "text by text. `encode_whole` is timed with its relevance scores from an exact search of the 5,518 "
              "descriptor sets' embeddings (as `recommend()` does on MusicCaps' flat index).", ""]
    for backend, d in result["latency"].items():
        lengths = list(d["tokens_p50"])
        lines += [f"**{backend}** (tokens p50: " + ", ".join(f"{k} {v}" for k, v in d["tokens_p50"].items()) + ")", "",
                  "| reading | " + " | ".join(lengths) + " |", "|---|" + "---:|" * len(lengths)]
        for option, per in d.items():
            if option == "tokens_p50":
                continue
            lines.append(f"| {option} | " + " | ".join(f"{per[k]['p50_ms']:.1f} / {per[k]['p90_ms']:.1f}" for k in lengths) + " |")
        lines.append("")
    lines.append(f"Total time: {result['seconds'] / 60:.1f} min.")
    return "\n".join(lines) + "\n"
