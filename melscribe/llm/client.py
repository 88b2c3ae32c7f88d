"""Chat completions against any OpenAI-compatible endpoint, with a resumable results cache.

* :class:`LLMSettings`: endpoint (``base_url``), model, key (``$OPENAI_API_KEY``; a placeholder when unset,
  which local servers accept), concurrency, retries, timeout and sampling.
* :class:`ResultCache`: one JSON line per answered input, keyed by the SHA-256 of (model, rendered prompt,
  input); each line is appended, flushed and fsync'ed as soon as the answer arrives, so a run killed at any
  moment loses at most the requests in flight. A torn last line (killed mid-write) is ignored on reading.
* :func:`complete_all`: asks the model for every item not in the cache, with at most ``concurrency``
  requests in flight (threads over one ``openai.OpenAI`` client), retrying 429, 5xx, timeouts, connection
  errors and malformed replies with exponential backoff (our own loop, so retries are counted; the client's
  own ``max_retries`` is 0). 401, 403 and 404 abort the run at once with :class:`LLMFatalError`; another 4xx
  (e.g. 400, a prompt too long for the model) fails its row without retrying.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tqdm.auto import tqdm

from melscribe.errors import MelscribeError

#: Used when ``$OPENAI_API_KEY`` is unset: llama.cpp's server, vLLM and Ollama accept any key.
PLACEHOLDER_KEY = "sk-local-placeholder"
API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


class LLMError(MelscribeError):
    """A problem with the language-model endpoint or its replies."""


class LLMFatalError(LLMError):
    """An error that no retry can fix (bad key, unknown model or URL): the run stops at once."""


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to ask. ``base_url`` empty: ``$OPENAI_BASE_URL``, else the hosted OpenAI API."""

    model: str
    base_url: str = ""
    api_key: str | None = None  # None: $OPENAI_API_KEY, else PLACEHOLDER_KEY
    concurrency: int = 4
    max_retries: int = 5  # retries after the first attempt, per item
    timeout: float = 60.0  # seconds per request
    backoff: float = 1.0  # first wait; doubled after each failed attempt (with ±25 % jitter)
    max_backoff: float = 30.0
    temperature: float = 0.0
    max_tokens: int = 160
    seed: int | None = 0

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get(BASE_URL_ENV) or None

    def resolved_api_key(self) -> str:
        return self.api_key or os.environ.get(API_KEY_ENV) or PLACEHOLDER_KEY

    def make_client(self):
        """An ``openai.OpenAI`` client with retries off (this module retries itself) and our timeout."""
        try:
            import openai
        except ImportError:
            raise LLMError("the openai package is needed: pip install 'melscribe[llm]'") from None
        if self.concurrency < 1:
            raise LLMError(f"concurrency must be at least 1, not {self.concurrency}")
        return openai.OpenAI(api_key=self.resolved_api_key(), base_url=self.resolved_base_url(),
                             timeout=self.timeout, max_retries=0)


def cache_key(model: str, messages: Sequence[dict], item_input: str) -> str:
    """SHA-256 over (model, the rendered prompt, the input)."""
    blob = json.dumps([model, list(messages), item_input], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResultCache:
    """Answers by key in a JSONL file, appended atomically per row (write + flush + fsync under a lock)."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._rows: dict[str, dict] = {}
        if self.path and self.path.is_file():
            with self.path.open("rb") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        continue  # torn last line of a killed run
                    if isinstance(row, dict) and "key" in row and isinstance(row.get("output"), str):
                        self._rows[row["key"]] = row

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: str) -> str | None:
        row = self._rows.get(key)
        return row["output"] if row else None

    def put(self, key: str, output: str, **extra) -> None:
        row = dict(extra, key=key, output=output)
        line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self._rows[key] = row
            if self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: each row is one write() at the end of the file; a kill leaves at most a torn last line.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                if os.fstat(fd).st_size and not _ends_with_newline(fd):
                    line = b"\n" + line  # seal a torn line left by a killed run
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return os.pread(fd, 1, size - 1) == b"\n"


@dataclass
class Item:
    """One prompt to send: ``id`` names it in reports, ``input`` is what the cache key covers."""

    id: str
    input: str
    messages: list[dict]


@dataclass
class CompletionReport:
    """What :func:`complete_all` did: answers by item id (cached or new), failures by item id, counts."""

    outputs: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    cached: int = 0
    requested: int = 0  # items sent to the endpoint in this run
    attempts: int = 0  # HTTP requests made, retries included
    retries: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        total = len(self.outputs) + len(self.failures)
        s = (f"{len(self.outputs)}/{total} answered ({self.cached} from the cache, {self.requested} asked, "
             f"{self.attempts} requests, {self.retries} retries) in {self.seconds:.1f} s")
        if self.failures:
            s += f"; {len(self.failures)} failed"
        return s

    def failure_lines(self, limit: int = 20) -> list[str]:
        """One line per failed item (the first ``limit``), then a count of the rest."""
        items = list(self.failures.items())
        lines = [f"  {i}: {reason}" for i, reason in items[:limit]]
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more")
        return lines


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


def _retry_after(exc) -> float | None:
    response = getattr(exc, "response", None)
    value = getattr(response, "headers", {}).get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _one_line(text: object, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _ask(client, settings: LLMSettings, messages: list[dict]) -> str:
    """One request; returns the reply text, raises _Retryable or LLMFatalError."""
    import openai

    kwargs = dict(model=settings.model, messages=messages, temperature=settings.temperature,
                  max_tokens=settings.max_tokens)
    if settings.seed is not None:
        kwargs["seed"] = settings.seed
    try:
        reply = client.chat.completions.create(**kwargs)
    except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
        raise LLMFatalError(f"HTTP {e.status_code} from {settings.resolved_base_url() or 'the OpenAI API'}: "
                            f"the key was refused (set {API_KEY_ENV}): {_one_line(e.message)}") from None
    except openai.NotFoundError as e:
        raise LLMFatalError(f"HTTP 404 from {settings.resolved_base_url() or 'the OpenAI API'}: no model "
                            f"{settings.model!r} or wrong --base-url (it usually ends in /v1): "
                            f"{_one_line(e.message)}") from None
    except openai.RateLimitError as e:
        raise _Retryable("HTTP 429 (rate limited)", _retry_after(e)) from None
    except openai.APITimeoutError:
        raise _Retryable(f"timed out after {settings.timeout:g} s") from None
    except openai.APIConnectionError as e:
        raise _Retryable(f"connection error: {_one_line(e)}") from None
    except openai.APIStatusError as e:
        if e.status_code >= 500 or e.status_code in (408, 409):
            raise _Retryable(f"HTTP {e.status_code}: {_one_line(e.message, 100)}", _retry_after(e)) from None
        # another 4xx (400 too long a prompt, 422 ...): this row's request is wrong, asking again will not help
        raise LLMError(f"HTTP {e.status_code} (not retried): {_one_line(e.message, 100)}") from None
    except openai.APIResponseValidationError as e:
        raise _Retryable(f"malformed reply: {_one_line(e.message, 100)}") from None
    except (ValueError, TypeError) as e:  # JSON that does not parse
        raise _Retryable(f"malformed reply: {type(e).__name__}: {_one_line(e, 100)}") from None
    try:
        content = reply.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError):
        raise _Retryable(f"malformed reply: no choices[0].message.content in {_one_line(reply, 100)}") from None
    if not isinstance(content, str) or not content.strip():
        raise _Retryable("empty reply")
    return content


def complete_all(items: Sequence[Item], settings: LLMSettings, cache: ResultCache,
                 clean: Callable[[str], str] = str.strip, progress: bool = True,
                 desc: str = "asking the model", sleep: Callable[[float], None] = time.sleep) -> CompletionReport:
    """Answer every item: from ``cache`` when present, else by asking the endpoint (see the module docstring).

    ``clean`` turns a raw reply into the output; a reply that cleans to nothing counts as a failed attempt.
    Each new answer is in ``cache`` before the next one is recorded. Raises :class:`LLMFatalError` on
    401/403/404 (after the requests in flight end); other failures are reported per item.
    """
    t0 = time.perf_counter()
    report = CompletionReport()
    todo: list[tuple[Item, str]] = []
    seen: dict[str, list[Item]] = {}
    for item in items:
        key = cache_key(settings.model, item.messages, item.input)
        hit = cache.get(key)
        if hit is not None:
            report.outputs[item.id] = hit
            report.cached += 1
        elif key in seen:
            seen[key].append(item)  # same prompt twice: asked once
        else:
            seen[key] = [item]
            todo.append((item, key))
    if not todo:
        report.seconds = time.perf_counter() - t0
        return report

    client = settings.make_client()
    abort = threading.Event()
    counts_lock = threading.Lock()

    def work(item: Item, key: str) -> str:
        last = ""
        for attempt in range(settings.max_retries + 1):
            if abort.is_set():
                raise LLMError("not asked: the run was aborted")
            with counts_lock:
                report.attempts += 1
                report.retries += attempt > 0
            try:
                output = clean(_ask(client, settings, item.messages))
                if not output:
                    raise _Retryable("the reply was empty once cleaned")
                cache.put(key, output, id=item.id, input=item.input, model=settings.model)
                return output
            except _Retryable as e:
                last = e.reason
                if attempt == settings.max_retries:
                    break
                wait_s = min(settings.max_backoff, settings.backoff * 2 ** attempt) * random.uniform(0.75, 1.25)
                if e.retry_after is not None:
                    wait_s = max(wait_s, min(e.retry_after, settings.max_backoff))
                sleep(wait_s)
        raise LLMError(f"{last} (after {settings.max_retries + 1} attempts)")

    fatal: LLMFatalError | None = None
    bar = tqdm(total=len(items), initial=report.cached, desc=desc, unit="row", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=settings.concurrency)
    try:
        pending: dict[Future, tuple[Item, str]] = {}
        queue: Iterable[tuple[Item, str]] = iter(todo)
        while True:
            while len(pending) < settings.concurrency and not abort.is_set():
                nxt = next(queue, None)
                if nxt is None:
                    break
                pending[pool.submit(work, *nxt)] = nxt
                report.requested += 1
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                item, key = pending.pop(fut)
                group = seen[key]
                try:
                    out = fut.result()
                    for it in group:
                        report.outputs[it.id] = out
                except LLMFatalError as e:
                    fatal = fatal or e
                    abort.set()
                except LLMError as e:
                    for it in group:
                        report.failures[it.id] = str(e)
                bar.update(len(group))
                if report.failures:
                    bar.set_postfix(failed=len(report.failures))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        report.seconds = time.perf_counter() - t0
    if fatal is not None:
        raise fatal
    return report
