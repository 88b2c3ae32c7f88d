"""HTTP API over a :class:`~melscribe.serve.recommend.Recommender` (FastAPI).

* ``GET /health`` → ``{"status": "ok", "model", "catalog", "tracks", "descriptor_sets", "index", "fusion"}``;
  while the server builds its index (it listens at once), 503 ``{"status": "building", "seconds"}``, or
  ``{"status": "failed", "detail"}`` when the build failed (``/recommend`` then answers 503 too)
* ``POST /recommend`` with ``{"request": str, "k": int = 10, "filters": {"exclude_tracks": [...],
  "require_descriptors": [...], "exclude_descriptors": [...]}, "intent": bool | null, "rerank": int = 0}`` →
  ``{"request", "k", "model",
  "intent", "low_confidence", "results": [...]}`` (the shape of ``melscribe recommend --json``), each result as :meth:`Recommendation.to_dict`. ``intent`` in
  the body turns intent handling on or off for this request (default: the server's, on unless ``--no-intent``);
  in the answer it is what the request wants and avoids (:meth:`melscribe.intent.parser.Intent.to_dict`), ``null``
  when off. ``low_confidence`` is true when the request resembles nothing in the catalog
  (:class:`~melscribe.serve.recommend.RecommendationList`). ``rerank`` > 0 re-scores the best ``rerank``
  descriptor sets with the music cross-encoder (each result then carries its ``rerank_score``); 400 if the
  server has none.

A body of the wrong shape or types is answered 422; a request the recommender refuses (empty, too long or
not valid Unicode request, ``k`` ≤ 0 or above ``max_k``, ``rerank`` out of range, unknown track id or descriptor in a filter) 400;
a body over ``max_body_bytes`` 413; a request that finds the queue full (``max_queue`` requests waiting to be
encoded) 503. Each carries the reason in ``detail``. Inputs are not echoed whole: the ``request`` of an
answer and the inputs quoted in an error are cut to :data:`MAX_ECHO_CHARS` characters.

Concurrent requests are encoded together (:mod:`melscribe.serve.batching`): each is checked (and its intent
parsed) on the event loop, or on a worker thread when that may encode
(:meth:`~melscribe.serve.recommend.Recommender.prepare_may_encode`), then waits at most ``max_wait_ms`` for
others to share its batch of at most ``max_batch``.

For people there is a page (:data:`PAGE_FILES`, static files inside the package, nothing fetched from
elsewhere; docs/serving.md):

* ``GET /`` → the page (``index.html``), ``GET /page.js`` and ``GET /page.css`` its script and style; each
  with a Content-Security-Policy that lets the page load nothing but this server's files;
* ``GET /audio/{track_id}`` → the audio file of the catalog track ``track_id`` (range requests answered, so a
  player can seek); 404 for an id not in the catalog, a track without audio, a file that is gone, and an
  audio-only track whose file (a symlink) leads out of its ``--audio-folder``. The file's path always comes
  from the catalog, never from the request (:func:`audio_files`).

For the page, the HTTP answer of ``/recommend`` adds one thing to the ``recommend --json`` shape: in
``intent``, the ``rejections``: each rejected phrase with its cue and the descriptors it rejects (the page
keeps them as filters when one is removed). Its results are exactly :meth:`Recommendation.to_dict`'s; the
page plays the audio of those marked ``inferred`` (audio-only tracks) from ``/audio/{track_id}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from melscribe.version import __version__
from melscribe.errors import InvalidRequestError, MelscribeError
from melscribe.serve.catalog import Catalog
from melscribe.serve.batching import MAX_BATCH, MAX_QUEUE, MAX_WAIT_MS, RequestBatcher, ServerBusyError
from melscribe.serve.recommend import PreparedRequest, Recommender

log = logging.getLogger(__name__)

#: Seconds a request's body may take to arrive whole (longer: 408).
BODY_TIMEOUT_S = 10.0
#: Seconds an idle keep-alive connection stays open, and seconds a stopping server (SIGTERM) waits for the
#: requests under way before it closes their connections.
KEEP_ALIVE_S, SHUTDOWN_S = 5, 10
#: Largest request body accepted, in bytes (larger: 413).
MAX_BODY_BYTES = 256 * 1024
#: Largest ``k`` accepted (larger: 400).
MAX_K = 1000
#: Longest input quoted back in an answer or an error, in characters.
MAX_ECHO_CHARS = 200
#: The page's files (in ``melscribe/serve/page/``) by the path the server answers them at, with their media type.
PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/page.js": ("page.js", "text/javascript; charset=utf-8"),
              "/page.css": ("page.css", "text/css; charset=utf-8")}
#: The page may load nothing but this server's own files (scripts, styles, audio, requests): no CDN, no font
#: service, no inline script. The ``data:`` image is the empty favicon ``index.html`` declares.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src 'self'; "
               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: Media types of the audio files the server streams, by suffix (:data:`melscribe.audio.files.AUDIO_SUFFIXES`).
AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg",
               ".aif": "audio/aiff", ".aiff": "audio/aiff"}


def audio_files(catalog: Catalog) -> dict[str, tuple[Path, Path | None]]:
    """The catalog's tracks whose audio the server may stream: track id → (audio file, the folder it must stay
    in or ``None``). An audio-only track (``inferred``, added by ``--audio-folder``) must stay in its folder
    (its id is its path relative to the folder): :func:`audio_file` refuses one that leads out of it, e.g.
    through a symlink. A track of the catalog file has the ``audio_path`` its catalog names, wherever that is
    (the catalog's author chose it). Only files with an audio suffix (:data:`AUDIO_TYPES`) are listed."""
    out: dict[str, tuple[Path, Path | None]] = {}
    for t in catalog:
        if not t.audio_path or Path(t.audio_path).suffix.lower() not in AUDIO_TYPES:
            continue
        path = Path(t.audio_path)
        root = None
        if t.inferred:
            depth = len(Path(t.id).parts)
            if depth == 0 or depth > len(path.parents):
                continue
            root = path.parents[depth - 1]
        out[t.id] = (path, root)
    return out


def audio_file(entry: tuple[Path, Path | None]) -> Path | None:
    """The real file of an :func:`audio_files` entry, checked now (a file may have changed since the server
    started): a regular file with an audio suffix, inside its folder when it has one; else ``None``."""
    path, root = entry
    try:
        real = path.resolve(strict=True)
        if root is not None and not real.is_relative_to(root.resolve(strict=True)):
            return None
    except (OSError, RuntimeError):  # gone, unreadable, a symlink loop
        return None
    return real if real.is_file() and real.suffix.lower() in AUDIO_TYPES else None


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
    rerank: StrictInt = 0


class _AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII characters escaped: an error quoting a lone surrogate still renders."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


class _BodyLimit:
    """ASGI middleware answering 413 to a request whose body exceeds ``max_bytes``, whether it declares its
    length (``Content-Length``) or not (the body is counted as it arrives, and passed on once complete), and
    408 to one whose body has not arrived whole within ``timeout_s`` seconds (a stalled client holds no
    connection for ever)."""

    def __init__(self, app: Any, max_bytes: int, timeout_s: float = BODY_TIMEOUT_S):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                return await self._timed_out(scope, send)
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _timed_out(self, scope: dict, send: Any) -> None:
        response = JSONResponse(status_code=408, headers={"Connection": "close"}, content={
            "detail": f"the request body did not arrive within {self.timeout_s:g} s"})

        async def nothing() -> dict:
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        response = JSONResponse(status_code=413, content={
            "detail": f"the request body is larger than {self.max_bytes} bytes, the most this server accepts"})
        await response(scope, receive, send)


def _clip(value: Any, limit: int = MAX_ECHO_CHARS) -> Any:
    """``value`` if short, else its text cut to ``limit`` characters and marked with "…"."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return value if len(text) <= limit else text[:limit] + "…"


def _echo(value: Any) -> Any:
    """An input quoted back in a 422: as is when it is plain JSON (no NaN or infinity), else as text; clipped."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        value = value.decode("utf-8", "replace") if isinstance(value, bytes) else json.dumps(value, default=str)
    return _clip(value)


class StillBuildingError(ServerBusyError):
    """The server is still loading its model or building its index: ask again shortly (HTTP 503)."""


class _Serving:
    """What the app serves: its recommender and batcher once they are ready (a loader builds them on a worker
    thread while the server already answers), or why they could not be made."""

    def __init__(self, app: FastAPI, batching: dict[str, Any]):
        self.app, self.batching = app, batching
        self.recommender: Recommender | None = None
        self.batcher: RequestBatcher | None = None
        self.model_name = ""
        self.error: str | None = None
        self.since = time.monotonic()
        self.audio: dict[str, tuple[Path, Path | None]] = {}

    def set(self, recommender: Recommender) -> None:
        self.batcher = self.app.state.batcher = RequestBatcher(recommender, **self.batching)
        # clients see names, never the server's paths (a model folder's last part)
        self.model_name = Path(recommender.encoder.name).name or recommender.encoder.name
        log.info("serving model %s, catalog %s", recommender.encoder.name, recommender.catalog.source)
        self.audio = audio_files(recommender.catalog)
        self.recommender = recommender

    def ready(self) -> Recommender:
        if self.recommender is None:
            raise StillBuildingError(f"the server is still building its index ({time.monotonic() - self.since:.0f} s "
                                     "so far): ask again shortly" if self.error is None else
                                     f"the server could not build its index: {self.error}")
        return self.recommender


def create_app(recommender: Recommender | Callable[[], Recommender], *, max_body_bytes: int = MAX_BODY_BYTES,
               max_k: int = MAX_K, max_batch: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS,
               max_queue: int = MAX_QUEUE, body_timeout_s: float = BODY_TIMEOUT_S) -> FastAPI:
    """A FastAPI app answering ``/health`` and ``/recommend`` with ``recommender`` (and the page, ``/`` and
    ``/audio/{track_id}``: module doc), batching concurrent
    requests (see the module docstring); bodies over ``max_body_bytes`` bytes are refused (413), and ``k``
    above ``max_k`` (400). ``recommender`` may be a function that makes it (loads the model, builds the
    index): the server then listens at once, and until it is made ``/health`` says ``building`` and
    ``/recommend`` answers 503. ``/docs`` is off: its pages load scripts from a CDN, which an offline
    server cannot reach (``/openapi.json`` describes the API)."""
    loader = recommender if callable(recommender) else None

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        task = asyncio.create_task(load()) if loader else None
        if serving.batcher is not None:
            await serving.batcher.start()
        yield
        if task is not None:
            task.cancel()
        if serving.batcher is not None:
            await serving.batcher.stop()

    async def load() -> None:
        try:
            made = await run_in_threadpool(loader)
        except Exception as e:  # reported by /health and /recommend; the server stays up to say so
            serving.error = _clip(str(e), 5 * MAX_ECHO_CHARS)
            log.error("could not build the recommender: %s", e)
            return
        serving.set(made)
        await serving.batcher.start()

    app = FastAPI(title="melscribe", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Natural-language music recommendation through song descriptors.")
    app.state.batcher = None
    serving = _Serving(app, {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_queue": max_queue})
    if loader is None:
        serving.set(recommender)
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes, timeout_s=body_timeout_s)

    @app.exception_handler(MelscribeError)
    def refused(_: Request, exc: MelscribeError) -> JSONResponse:
        busy = isinstance(exc, ServerBusyError)
        retry = "5" if isinstance(exc, StillBuildingError) else "1"
        return _AsciiJSONResponse(status_code=503 if busy else 400, headers={"Retry-After": retry} if busy else None,
                                  content={"detail": _clip(str(exc), 5 * MAX_ECHO_CHARS)})

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method == "POST" and media != "application/json":
            return _AsciiJSONResponse(status_code=415, content={"detail": (
                f"send the body as JSON with the header Content-Type: application/json (got "
                f"{_clip(media or 'none', 60)!s}), e.g. curl -H 'Content-Type: application/json' "
                """-d '{"request": "calm piano"}'""")})
        detail = [{"type": e.get("type"), "loc": [_clip(part) for part in e.get("loc", ())], "msg": e.get("msg"),
                   "input": _echo(e.get("input"))} for e in exc.errors()]
        return _AsciiJSONResponse(status_code=422, content={"detail": detail})

    @app.get("/health")
    def health() -> Any:
        if serving.recommender is None:
            status = "building" if serving.error is None else "failed"
            return _AsciiJSONResponse(status_code=503, content={
                "status": status, "seconds": round(time.monotonic() - serving.since, 1), "detail": serving.error})
        recommender = serving.recommender
        return {"status": "ok", "model": serving.model_name, "catalog": recommender.catalog.name,
                "tracks": len(recommender.catalog), "descriptor_sets": len(recommender.index),
                "index": recommender.index.kind,
                "fusion": recommender.fusion.to_dict() if recommender.fusion else None}

    def check(body: RecommendBody) -> tuple[PreparedRequest, dict[str, Any] | None]:
        """The prepared request and its intent as JSON (``None`` when off)."""
        recommender = serving.ready()
        prepared = recommender.prepare(body.request, body.k, intent=body.intent, rerank=body.rerank,
                                       **body.filters.model_dump())
        on = recommender.intent if body.intent is None else body.intent
        intent = recommender.parse_intent(body.request).to_dict() if on else None
        if intent is not None:
            intent["text"] = _clip(intent["text"])
            intent["rejections"] = [{"cue": cue, "phrase": _clip(phrase), "descriptors": list(names)}
                                    for cue, phrase, names in recommender.parse_intent(body.request).rejections]
        return prepared, intent

    @app.post("/recommend")
    async def recommend(body: RecommendBody) -> JSONResponse:
        if body.k > max_k:
            raise InvalidRequestError(f"k must be at most {max_k}, not {_clip(str(body.k), 30)}")
        # a request whose rejected phrases (or excluded descriptors) are matched with the encoder is checked on
        # a worker thread, so the event loop never waits for the encoder; the others are string work only
        if serving.ready().prepare_may_encode(body.request, intent=body.intent,
                                          exclude_descriptors=body.filters.exclude_descriptors):
            prepared, intent = await run_in_threadpool(check, body)
        else:
            prepared, intent = check(body)
        results = await serving.batcher.submit(prepared)
        # plain JSON values already: a JSONResponse skips FastAPI's response validation and re-encoding
        return JSONResponse(results.to_dict(_clip(body.request), body.k, serving.model_name, intent))

    page = resources.files("melscribe.serve") / "page"

    def page_file(name: str, media_type: str) -> Callable[[], Response]:
        def serve_page_file() -> Response:
            return Response((page / name).read_bytes(), media_type=media_type, headers={
                "Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache"})
        return serve_page_file

    for route, (name, media_type) in PAGE_FILES.items():
        app.add_api_route(route, page_file(name, media_type), methods=["GET"], include_in_schema=False)

    @app.get("/audio/{track_id:path}", include_in_schema=False)
    def audio(track_id: str) -> Response:
        serving.ready()
        entry = serving.audio.get(track_id)
        real = audio_file(entry) if entry is not None else None
        if real is None:
            return _AsciiJSONResponse(status_code=404, content={"detail": "no audio for this track id"})
        return FileResponse(real, media_type=AUDIO_TYPES[real.suffix.lower()],
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    return app
