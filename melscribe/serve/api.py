"""HTTP API over a :class:`~melscribe.serve.recommend.Recommender` (FastAPI).

* ``GET /health`` → ``{"status": "ok", "model", "catalog", "tracks", "descriptor_sets", "index"}``
* ``POST /recommend`` with ``{"request": str, "k": int = 10, "filters": {"exclude_tracks": [...],
  "require_descriptors": [...], "exclude_descriptors": [...]}, "intent": bool | null}`` → ``{"request", "k",
  "intent", "results": [...]}``, each result as :meth:`Recommendation.to_dict`. ``intent`` in the body turns
  intent handling on or off for this request (default: the server's, on unless ``--no-intent``); in the answer
  it is what the request wants and avoids (:meth:`melscribe.intent.Intent.to_dict`), ``null`` when off.

A body of the wrong shape or types is answered 422; a request the recommender refuses (empty request,
``k`` ≤ 0, unknown track id or descriptor in a filter) 400. Both carry the reason in ``detail``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from .. import __version__
from ..errors import MelscribeError
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


def create_app(recommender: Recommender) -> FastAPI:
    """A FastAPI app answering ``/health`` and ``/recommend`` with ``recommender``."""
    app = FastAPI(title="melscribe", version=__version__,
                  description="Natural-language music recommendation through song descriptors.")

    @app.exception_handler(MelscribeError)
    def refused(_: Request, exc: MelscribeError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": recommender.encoder.name, "catalog": recommender.catalog.source,
                "tracks": len(recommender.catalog), "descriptor_sets": len(recommender.index),
                "index": recommender.index.kind}

    @app.post("/recommend")
    def recommend(body: RecommendBody) -> dict[str, Any]:
        results = recommender.recommend(body.request, body.k, intent=body.intent, **body.filters.model_dump())
        on = recommender.intent if body.intent is None else body.intent
        return {"request": body.request, "k": body.k,
                "intent": recommender.parse_intent(body.request).to_dict() if on else None,
                "results": [r.to_dict() for r in results]}

    return app
