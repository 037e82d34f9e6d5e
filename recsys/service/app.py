"""The FastAPI application: routers, error handling (4xx with a JSON body naming the problem), the web page."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from recsys.data_io import DataError
from recsys.service.routes import admin, events, health, items, renders, users
from recsys.service.settings import Settings
from recsys.service.state import ServiceState
from transfer.images import ImageError
from transfer.render import RenderError

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("stylerec.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; the store, models and render queue open when it starts and close when it stops."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = ServiceState(settings)
        yield
        app.state.service.close()

    app = FastAPI(
        title="stylerec",
        description="Style-aware product recommendations: feeds, shop this style, re-rendered products.",
        version="0.1.0",
        lifespan=lifespan,
    )
    for router in (health.router, items.router, users.router, events.router, renders.router, admin.router):
        app.include_router(router)

    @app.exception_handler(KeyError)
    async def unknown_id(request: Request, exc: KeyError):
        return JSONResponse({"detail": exc.args[0] if exc.args else "not found"}, status_code=404)

    @app.exception_handler(ImageError)
    async def bad_image(request: Request, exc: ImageError):
        status = 413 if "over the limit" in str(exc) or "decompression bomb" in str(exc) else 422
        return JSONResponse({"detail": f"not a usable image: {exc}"}, status_code=status)

    @app.exception_handler(RenderError)
    async def bad_render(request: Request, exc: RenderError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(DataError)
    async def bad_data(request: Request, exc: DataError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        log.info(
            "request",
            extra={"method": request.method, "path": request.url.path, "status": response.status_code,
                   "ms": round((time.perf_counter() - start) * 1000, 1)},
        )  # fmt: skip
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    return app
