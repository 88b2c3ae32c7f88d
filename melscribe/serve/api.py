"""HTTP API over a :class:`~melscribe.serve.recommend.Recommender` (FastAPI).

* ``GET /health`` → ``{"status": "ok", "model", "catalog", "tracks", "descriptor_sets", "index", "fusion"}``
* ``POST /recommend`` with ``{"request": str, "k": int = 10, "filters": {"exclude_tracks": [...],
  "require_descriptors": [...], "exclude_descriptors": [...]}, "intent": bool | null}`` → ``{"request", "k",
  "intent", "results": [...]}``, each result as :meth:`Recommendation.to_dict`. ``intent`` in the body turns
  intent handling on or off for this request (default: the server's, on unless ``--no-intent``); in the answer
  it is what the request wants and avoids (:meth:`melscribe.intent.Intent.to_dict`), ``null`` when off.

A body of the wrong shape or types is answered 422; a request the recommender refuses (empty request,
``k`` ≤ 0, unknown track id or descriptor in a filter) 400; a request that finds the queue full
(``max_queue`` requests waiting to be encoded) 503. Each carries the reason in ``detail``.

Concurrent requests are encoded together (:mod:`melscribe.serve.batching`): each is checked on the event
loop, then waits at most ``max_wait_ms`` for others to share its batch of at most ``max_batch``.
"""

from __future__ import annotations

from typing import Any

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from .. import __version__
from ..errors import MelscribeError
from .batching import MAX_BATCH, MAX_QUEUE, MAX_WAIT_MS, RequestBatcher, ServerBusyError
from .recommend import Recommender


class Filters(BaseModel):
    """Filters of a ``POST /recommend`` body."""

    model_config = ConfigDict(extra="forbid")
    exclude_tracks: list[StrictStr] = Field(default_factory=list)
    require_descriptors: list[StrictStr] = Field(default_factory=list)
    exclude_descriptors: list[StrictStr] = Field(default_factory=list)


class RecommendBody(BaseModel):
    """Body of ``POST /recommend``."""

    model_config = ConfigDict(extra="forbid")
    request: StrictStr
    k: StrictInt = 10
    filters: Filters = Field(default_factory=Filters)
    intent: StrictBool | None = None


def create_app(recommender: Recommender, *, max_batch: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS,
               max_queue: int = MAX_QUEUE) -> FastAPI:
    """A FastAPI app answering ``/health`` and ``/recommend`` with ``recommender``, batching concurrent
    requests (see the module docstring)."""
    batcher = RequestBatcher(recommender, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="melscribe", version=__version__, lifespan=lifespan,
                  description="Natural-language music recommendation through song descriptors.")
    app.state.batcher = batcher

    @app.exception_handler(MelscribeError)
    def refused(_: Request, exc: MelscribeError) -> JSONResponse:
        return JSONResponse(status_code=503 if isinstance(exc, ServerBusyError) else 400, content={"detail": str(exc)})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": recommender.encoder.name, "catalog": recommender.catalog.source,
                "tracks": len(recommender.catalog), "descriptor_sets": len(recommender.index),
                "index": recommender.index.kind,
                "fusion": recommender.fusion.to_dict() if recommender.fusion else None}

    @app.post("/recommend")
    async def recommend(body: RecommendBody) -> dict[str, Any]:
        prepared = recommender.prepare(body.request, body.k, intent=body.intent, **body.filters.model_dump())
        results = await batcher.submit(prepared)
        on = recommender.intent if body.intent is None else body.intent
        return {"request": body.request, "k": body.k,
                "intent": recommender.parse_intent(body.request).to_dict() if on else None,
                "results": [r.to_dict() for r in results]}

    return app
