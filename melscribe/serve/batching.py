"""Micro-batching of concurrent requests for the HTTP server.

Requests checked by :meth:`Recommender.prepare` wait in a bounded queue; the worker takes whatever is
queued (at most ``max_batch``), waits up to ``max_wait_ms`` for more when the batch is not full, and
encodes them with one call of :meth:`Recommender.embed_requests` on the encoding thread, so the encoder
sees one batch instead of one request at a time. The batch is then ranked
(:meth:`Recommender.rank_embedded`) on a second thread while the next batch is encoded: the encoder
releases the GIL, the ranking is Python, so the two overlap (at most two batches in flight). The event
loop never encodes: the sentence-transformers docs warn against ``encode()`` inside ``async def``
endpoints. A full queue refuses new requests at once (:class:`ServerBusyError`, an HTTP 503) instead of
letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from melscribe.errors import MelscribeError
from melscribe.serve.recommend import Recommender
from melscribe.serve.request_checks import PreparedRequest
from melscribe.serve.results import Recommendation

log = logging.getLogger(__name__)

MAX_BATCH = 32
MAX_WAIT_MS = 2.0
MAX_QUEUE = 256


class ServerBusyError(MelscribeError):
    """The server's queue of requests waiting to be encoded is full."""


class RequestBatcher:
    """Answers prepared requests in batches on one worker thread (see the module docstring).

    Use inside a running event loop: ``await start()``, then ``await submit(prepared)`` from any number of
    tasks, and ``await stop()`` at shutdown."""

    def __init__(self, recommender: Recommender, *, max_batch: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS,
                 max_queue: int = MAX_QUEUE):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be ≥ 1 and max_wait_ms ≥ 0")
        self.recommender = recommender
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait_ms / 1000, max_queue
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._encoding: ThreadPoolExecutor | None = None
        self._ranking: ThreadPoolExecutor | None = None
        self._in_flight: set[asyncio.Task] = set()
        self.batches = 0  # batches answered, for /health

    async def start(self) -> None:
        """Start the worker (in the running event loop)."""
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._encoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="melscribe-encode")
        self._ranking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="melscribe-rank")
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the worker; batches already taken are answered, requests still queued get
        :class:`ServerBusyError`."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(ServerBusyError("the server is shutting down"))
        for pool in (self._encoding, self._ranking):
            if pool is not None:
                pool.shutdown(wait=True)

    @property
    def queued(self) -> int:
        """Requests waiting for the worker."""
        return self._queue.qsize() if self._queue is not None else 0

    async def submit(self, prepared: PreparedRequest) -> list[Recommendation]:
        """The recommendations for ``prepared``, once its batch is answered; :class:`ServerBusyError` at once
        when ``max_queue`` requests are already waiting."""
        if self._queue is None:
            raise RuntimeError("RequestBatcher.start() was not awaited")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((prepared, future))
        except asyncio.QueueFull:
            raise ServerBusyError(f"the server is busy: {self.max_queue} requests are already waiting; "
                                  "retry shortly") from None
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(2)  # one batch ranked while the next is encoded
        while True:
            await slots.acquire()  # before taking a batch: what waits stays in the bounded queue
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            task = asyncio.create_task(self._answer(loop, batch))
            self._in_flight.add(task)
            task.add_done_callback(lambda t: (self._in_flight.discard(t), slots.release()))

    async def _answer(self, loop: asyncio.AbstractEventLoop, batch: list) -> None:
        prepared = [p for p, _ in batch]
        try:
            queries = await loop.run_in_executor(self._encoding, self.recommender.embed_requests, prepared)
            answers = await loop.run_in_executor(self._ranking, self.recommender.rank_embedded, queries, prepared)
        except Exception:  # one bad request must not fail its batch: answer each alone
            log.exception("a batch of %d requests failed; answering them one by one", len(batch))
            answers = []
            for p in prepared:
                try:
                    answers.append((await loop.run_in_executor(self._ranking, self.recommender.answer, [p]))[0])
                except Exception as e:  # noqa: BLE001 - handed to the request that caused it
                    answers.append(e)
        self.batches += 1
        for (_, future), answer in zip(batch, answers):
            if future.done():  # the client went away
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)
