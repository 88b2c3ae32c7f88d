"""The two jobs of ``melscribe rephrase``: captions → requests, and descriptor sets → requests.

* :func:`rephrase_captions`: a caption rewritten as a recommendation request (how MC_reco was made), written
  in the ``mc_rephrased.csv`` layout ``caption_id,caption,caption_rephrased`` by :func:`write_rephrased_csv`.
* :func:`llm_requests`: GPL's query generation, requests written from a random subset (1 to 6, seeded) of a
  training clip's descriptors; returns records like :func:`melscribe.train.queries.template_requests`, so the
  pairs stage builds pairs from them the same way (``pairs.query_generation = "llm"``).

Prompts are the text files of ``melscribe/llm/prompts`` (or any file in their format, see
:func:`load_prompt`), each with a one-shot example. Replies are cleaned by :func:`clean_reply`.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from melscribe.data import MC_REPHRASED_CSV, Record, read_csv
from melscribe.config import data_dir as _data_dir
from melscribe.errors import DataError
from melscribe.fileio import write_text_atomic
from melscribe.llm.client import CompletionReport, Item, LLMSettings, ResultCache, complete_all

PROMPTS = ("rephrase", "generate", "caption")
ROLES = ("system", "user", "assistant")
PLACEHOLDER = "{input}"


def load_prompt(name_or_path: str | os.PathLike) -> list[dict]:
    """Chat messages of a prompt file: a packaged name (``rephrase``, ``generate``) or a path.

    Format: ``[system]``, ``[user]`` and ``[assistant]`` headers each start a message (the lines below, up
    to the next header, trimmed); lines starting with ``#`` are comments. The last message must be a user
    message holding ``{input}``.
    """
    if str(name_or_path) in PROMPTS:
        text = resources.files("melscribe.llm").joinpath("prompts", f"{name_or_path}.txt").read_text("utf-8")
        where = f"packaged prompt {name_or_path!r}"
    else:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise DataError(f"no prompt file {path} (or use a packaged prompt: {', '.join(PROMPTS)})")
        text, where = path.read_text("utf-8"), str(path)
    messages: list[dict] = []
    for line in text.splitlines():
        head = line.strip()
        if head.startswith("#") and not messages:
            continue
        if head.startswith("#"):
            continue
        if head.startswith("[") and head.endswith("]") and head[1:-1] in ROLES:
            messages.append({"role": head[1:-1], "content": ""})
        elif messages:
            messages[-1]["content"] += line + "\n"
        elif head:
            raise DataError(f"{where}: text before the first [system]/[user] header: {head[:60]!r}")
    for m in messages:
        m["content"] = m["content"].strip()
    if not messages or messages[-1]["role"] != "user" or PLACEHOLDER not in messages[-1]["content"]:
        raise DataError(f"{where}: the last message must be a [user] message containing {PLACEHOLDER}")
    return messages


def render(prompt: Sequence[dict], text: str) -> list[dict]:
    """The prompt's messages with ``{input}`` of the last one replaced by ``text``."""
    out = [dict(m) for m in prompt]
    out[-1]["content"] = out[-1]["content"].replace(PLACEHOLDER, text)
    return out


_FENCE = re.compile(r"^```[a-z]*\s*|\s*```$", re.I)
_COURTESY = re.compile(r"^(?:sure(?: thing)?|certainly|of course|okay|ok|absolutely|great|alright|no problem)\s*[!.,:]+\s*",
                       re.I)
_HERE = re.compile(r"^(?:here(?:'s| is| are| you go)|below is|this is)\b[^\n]*?:\s*", re.I)
_LABEL = re.compile(r"^[*_]*(?:rephrased request|rephrased|request|recommendation request|output|answer|query|"
                    r"response)\s*(?::\s*[*_]*|[*_]*\s*:)\s*", re.I)  # "Request:", "**Request:**", "**Request**:"
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "„": "“", "*": "*", "`": "`"}


def clean_reply(text: str) -> str:
    """The request inside a model's reply: preambles ("Sure! Here's a request:"), labels ("Request:"),
    code fences, enclosing quotes and whatever follows the first line of the request are removed."""
    s = _FENCE.sub("", text.strip()).strip()
    for _ in range(3):  # "Sure! Here's the rephrased request: Request: ..."
        before = s
        s = _COURTESY.sub("", s, count=1)
        s = _HERE.sub("", s, count=1).lstrip()
        s = _LABEL.sub("", s, count=1).lstrip()
        if s == before:
            break
    line = next((ln.strip() for ln in s.splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line, count=1).strip()
    for _ in range(3):
        if len(line) >= 2 and line[0] in _QUOTES and line.endswith(_QUOTES[line[0]]):
            line = line[1:-1].strip()
        elif line[:1] in ('"', "“") and line.count(line[0]) == 1:  # an opening quote never closed
            line = line[1:].strip()
        elif line[-1:] in ('"', "”") and sum(line.count(q) for q in '"“”') == 1:
            line = line[:-1].strip()
        else:
            break
    return " ".join(line.split())


# ---- rephrase: captions → requests --------------------------------------------------------------------

def mc_captions(data_dir: str | os.PathLike | None = None, limit: int | None = None) -> list[tuple[str, str]]:
    """``(caption_id, caption)`` of the MC test rows, from ``mc_rephrased.csv`` (LP-MusicCaps-MC's
    ``caption_writing``), in file order; the first ``limit`` rows when given."""
    df = read_csv(_data_dir(data_dir) / MC_REPHRASED_CSV, ("caption_id", "caption"))
    rows = [(str(int(i)), str(c)) for i, c in zip(df.caption_id, df.caption)]
    return rows[:limit] if limit is not None else rows


def read_captions(path: str | os.PathLike, limit: int | None = None) -> list[tuple[str, str]]:
    """``(id, caption)`` rows of a CSV with a ``caption`` column and an id column (``caption_id``,
    ``track_id``, ``ytid`` or ``id``; else the row number)."""
    df = read_csv(Path(path), ("caption",))
    id_col = next((c for c in ("caption_id", "track_id", "ytid", "id") if c in df.columns), None)
    ids = [str(v) for v in df[id_col]] if id_col else [str(i) for i in range(len(df))]
    rows = [(i, str(c)) for i, c in zip(ids, df.caption) if isinstance(c, str) and c.strip()]
    return rows[:limit] if limit is not None else rows


def rephrase_captions(rows: Sequence[tuple[str, str]], settings: LLMSettings, cache: str | os.PathLike | None,
                      prompt: str | os.PathLike = "rephrase", progress: bool = True
                      ) -> tuple[list[tuple[str, str, str]], CompletionReport]:
    """Rewrite each ``(id, caption)`` as a request. Returns ``(id, caption, request)`` of the rows that
    succeeded, in input order, and the report (failures included)."""
    messages = load_prompt(prompt)
    items = [Item(i, caption, render(messages, caption)) for i, caption in rows]
    report = complete_all(items, settings, ResultCache(cache), clean=clean_reply, progress=progress,
                          desc="rephrasing")
    return [(i, c, report.outputs[i]) for i, c in rows if i in report.outputs], report


def write_rephrased_csv(path: str | os.PathLike, rows: Iterable[tuple[str, str, str]]) -> Path:
    """Write ``caption_id,caption,caption_rephrased`` (the ``mc_rephrased.csv`` layout), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["caption_id", "caption", "caption_rephrased"])
    w.writerows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, buf.getvalue())


def read_rephrased_csv(path: str | os.PathLike) -> dict[int, str]:
    """``caption_id → caption_rephrased`` of a CSV in the ``mc_rephrased.csv`` layout."""
    df = read_csv(Path(path), ("caption_id", "caption_rephrased"))
    return {int(i): str(r) for i, r in zip(df.caption_id, df.caption_rephrased) if isinstance(r, str)}


# ---- generate: descriptor sets → requests (GPL query generation) ----------------------------------------

def descriptor_subset(rng: random.Random, descriptors: Sequence[str], max_k: int = 6) -> list[str]:
    """1 to ``max_k`` descriptors drawn without replacement (the subsets the template requests use)."""
    k = rng.randint(1, min(max_k, len(descriptors)))
    return rng.sample(list(descriptors), k)


def llm_requests(records: Iterable[Record], per_track: int, settings: LLMSettings,
                 cache: str | os.PathLike | None, seed: int = 0, prompt: str | os.PathLike = "generate",
                 progress: bool = True, whole: bool = False) -> tuple[list[Record], CompletionReport]:
    """``per_track`` LLM-written requests for each record with descriptors, as records of source
    ``<source>-llm`` (same track id and descriptors). Returns the records of the rows that succeeded and the
    report. Subsets are seeded, so a rerun asks for the same prompts and finds them in the cache.

    ``whole=True`` gives the model the record's whole descriptor list instead of a subset (with
    ``prompt="caption"``: captions written the way LP-MusicCaps wrote its own), as records of source
    ``<source>-llm-caption``."""
    messages = load_prompt(prompt)
    rng = random.Random(seed)
    suffix = "-llm-caption" if whole else "-llm"
    plan: list[tuple[str, Record, str]] = []
    for rec in records:
        if not rec.descriptors:
            continue
        for j in range(per_track):
            chosen = list(dict.fromkeys(rec.descriptors)) if whole else descriptor_subset(rng, rec.descriptors)
            plan.append((f"{rec.source}{suffix}/{rec.track_id}/{j}", rec, ", ".join(chosen)))
    items = [Item(pid, asked, render(messages, asked)) for pid, _, asked in plan]
    report = complete_all(items, settings, ResultCache(cache), clean=clean_reply, progress=progress,
                          desc="writing captions" if whole else "writing requests")
    out = [Record(rec.track_id, report.outputs[pid], rec.descriptors, rec.split, f"{rec.source}{suffix}",
                  meta={"asked": asked}) for pid, rec, asked in plan if pid in report.outputs]
    return out, report


def write_requests_csv(path: str | os.PathLike, records: Iterable[Record]) -> Path:
    """Write ``track_id,source,descriptors,asked,request`` (descriptors as a Python-list literal), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["track_id", "source", "descriptors", "asked", "request"])
    for r in records:
        w.writerow([r.track_id, r.source, repr(list(r.descriptors)), r.meta.get("asked", ""), r.text])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, buf.getvalue())
