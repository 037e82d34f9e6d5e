"""The FastAPI application: routers, error handling (4xx with a JSON body naming the problem; a 500 is a bug,
answered in JSON with the request id it is logged under), request ids and access logs, the web page."""

from __future__ import annotations

import gc
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from recsys.service.errors import add_error_handlers
from recsys.service.guards import BodyGuard
from recsys.service.openapi import ROUTER_ERRORS, add_docs
from recsys.service.routes import admin, events, health, items, renders, users
from recsys.service.state import ServiceState
from recsys.settings import Settings

STATIC = Path(__file__).parent / "static"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = logging.getLogger("stylerec.service")


def create_app(settings: Settings | None = None, freeze_gc: bool = False) -> FastAPI:
    """The app; the catalog, embedder and render queue open when it starts and close when it stops.
    Without `settings`, they come from the environment (what `stylerec serve`'s worker processes do).
    `freeze_gc` (for a process that runs only this app): once open, the catalog's objects are moved out of the
    garbage collector's sight (`gc.freeze`): a full collection over them stalls every request for ~0.2 s."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = ServiceState.open(settings)
        if freeze_gc:
            gc.collect()
            gc.freeze()
        yield
        app.state.service.close()

    app = FastAPI(
        title="stylerec",
        description="Style-aware product recommendations: feeds, shop this style, re-rendered products.",
        version="0.2.0",
        lifespan=lifespan,
        docs_url=None,  # served by `add_docs`, with their assets from the app (no CDN)
        redoc_url=None,
    )
    for module in (health, items, users, events, renders, admin):
        app.include_router(module.router, responses=ROUTER_ERRORS[module.__name__.rsplit(".", 1)[1]])
    add_docs(app)

    add_error_handlers(app)

    app.add_middleware(BodyGuard)  # inside the request log: refused bodies are logged too
    app.add_middleware(RequestLog)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    return app


def serve_app() -> FastAPI:
    """The entry point of each `stylerec serve` worker process: JSON logs at the configured level, settings from
    the environment that `serve` prepared."""
    from recsys.service import logs

    settings = Settings()
    logs.configure(logging.getLevelNamesMapping()[settings.log_level.upper()])
    return create_app(settings, freeze_gc=True)


class RequestLog:
    """Gives every request an id (the client's X-Request-ID when it is sane), returns it as a header and logs
    one JSON line per request with its status and time. Plain ASGI: no per-request task or stream wrapping."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        start, status = time.perf_counter(), 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={"request_id": request_id, "method": scope["method"], "path": scope["path"], "status": status,
                       "ms": round((time.perf_counter() - start) * 1000, 1)},
            )  # fmt: skip
