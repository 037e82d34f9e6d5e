"""How the service answers errors: one handler for every `StylerecError` (its status, `{"detail": ...}` and its
headers), FastAPI's request validation as a capped 422, and anything else as a 500 that is a bug (logged with the
request id it is answered with)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from common.errors import StylerecError
from recsys.service.guards import validation_error

log = logging.getLogger("stylerec.service")
DEFAULT_RETRY_AFTER = 5  # seconds, for a 429 when the app has no settings (tests' bare apps)


async def stylerec_error(request: Request, exc: StylerecError) -> JSONResponse:
    """The answer to a user-facing error: its `http_status`, its `body()` and its `http_headers()`; a 429 always says
    when to retry (the error's `retry_after`, else the service's `retry_after` setting)."""
    headers = exc.http_headers()
    if exc.http_status == 429 and "Retry-After" not in headers:
        service = getattr(request.app.state, "service", None)
        headers["Retry-After"] = str(service.settings.retry_after if service is not None else DEFAULT_RETRY_AFTER)
    return JSONResponse(exc.body(), status_code=exc.http_status, headers=headers or None)


async def bug(request: Request, exc: Exception) -> JSONResponse:
    """A 500: an exception that is not a `StylerecError` is a bug; logged with its traceback and request id."""
    request_id = getattr(request.state, "request_id", "-")
    log.exception("unhandled error", extra={"request_id": request_id, "path": request.url.path}, exc_info=exc)
    return JSONResponse(
        {"detail": "internal error (a bug): reported in the service log", "request_id": request_id},
        status_code=500,
        headers={"X-Request-ID": request_id},
    )


def add_error_handlers(app: FastAPI) -> None:
    """Install the three handlers on `app`."""
    app.add_exception_handler(StylerecError, stylerec_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, bug)
