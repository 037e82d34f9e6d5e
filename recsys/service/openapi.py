"""The API's documentation: `/docs` (Swagger UI) and `/redoc` (ReDoc) served with their assets from the app (the
`fastapi-offline` package ships them: no CDN, so they work without internet), and an OpenAPI schema that lists
every status an operation answers, each error with its real body (`ErrorBody`)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"


class Problem(BaseModel):
    """One reason a request failed validation."""

    type: str = Field(description="the kind of problem, e.g. missing, string_too_long, json_invalid")
    loc: list[str | int] = Field(description="where: body, query, path or header, then the field")
    msg: str = Field(description="what is wrong, for a person")
    input: str | int | float | bool | None = Field(
        None, description="the value sent, when it is short and plain (never structures or non-JSON values)"
    )


class ErrorBody(BaseModel):
    """Every error answer's body."""

    detail: str | list[Problem] = Field(
        description="what was wrong: a sentence, or (422 from validation) the list of problems, at most 20"
    )
    request_id: str | None = Field(None, description="500: the id the error is logged under")
    job_id: str | None = Field(None, description="409: the admin job that is running")


def error(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


# Statuses by what an operation takes; added to each operation that has the trait (see `document`).
ANY = {
    422: "invalid parameters or body (what and where in `detail`)",
    500: "a bug: reported in the service log under `request_id`",
}
WITH_BODY = {
    400: "the body could not be read (not a form, a bad Content-Length)",
    413: "the body is larger than the limit (refused before it is read)",
}
WITH_ID = {404: "unknown id (item, shopper, style or job)"}
ADMIN = {
    401: "admin route: no X-API-Key header",
    403: "admin route: wrong API key, or admin routes are off (no key configured)",
}
# Statuses a router's operations answer beyond those (given to `include_router`).
ROUTER_ERRORS = {
    "items": {
        404: error("unknown item, or a photo-less item"),
        503: error("too many photos being embedded (Retry-After), or style search unavailable"),
    },
    "events": {404: error("unknown item or style")},
    "users": {404: error("unknown shopper, style or category")},
    "renders": {
        429: error("the render queue is full, or this client has enough renders waiting (Retry-After)"),
        503: error("the renderer is unavailable"),
    },
    "admin": {
        404: error("unknown item, style or job"),
        409: error(
            "another admin job is running (one at a time): its id in `job_id`; or nothing to index or train on yet"
        ),
        503: error("too many photos being embedded, or no style vectors (Retry-After)"),
    },
    "health": {},
}


# Descriptions of the operations whose route has no docstring (a docstring, when there is one, wins).
DESCRIPTIONS = {
    ("get", "/health"): "Liveness and readiness (`ready`: style vectors and a CF model are loaded), what is served "
    "(index, CF and ranker versions) and how many renders are pending.",
    ("get", "/items"): "The catalog, a page at a time (`limit`, `offset`), optionally in some categories (comma-"
    "separated) or matching `q` (in the id or title); `total` counts all matches.",
    ("get", "/items/{item_id}"): "One item: title, category, attributes and its image URL.",
    ("get", "/items/{item_id}/image"): "The item's product photo (404 when it has none).",
    ("get", "/items/{item_id}/similar"): "Items in the same style as this item (style index lookup), optionally in "
    "some categories, re-ranked for a shopper (`user_id`).",
    ("delete", "/items/{item_id}"): "Admin: remove an item (and its style vector).",
    ("get", "/styles"): "The palette: the shop's named styles, with their images.",
    ("get", "/styles/{name}/image"): "A palette style's image.",
    ("delete", "/styles/{name}"): "Admin: remove a palette style.",
    ("get", "/items/{item_id}/render"): "The product re-rendered in a palette style. `fast`: made now (JPEG), with "
    "any strength, blend and adjustments (a shopper's remembered ones with `user_id`). `gatys`/`adain`: the JPEG "
    "when cached, else a queued job (202 + Location); anonymous clients choose among a few strengths and may have "
    "a few renders waiting (429 + Retry-After beyond).",
    ("get", "/jobs/{job_id}"): "A render job's state; once done, `result_url` gives the render.",
}


def document(app: FastAPI) -> dict:
    """The app's OpenAPI schema, with the error statuses each operation answers (see `ANY`, `WITH_BODY`,
    `WITH_ID`, `ADMIN`) pointing at `ErrorBody`."""
    documented = getattr(app.state, "documented_schema", None)
    if documented is not None:
        return documented
    app.openapi_schema = None  # built afresh (FastAPI's own cache may hold the schema before this one's changes)
    schema = FastAPI.openapi(app)
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not operation.get("description") and (method, path) in DESCRIPTIONS:
                operation["description"] = DESCRIPTIONS[(method, path)]
            statuses = dict(ANY)
            if "requestBody" in operation:
                statuses |= WITH_BODY
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                statuses |= WITH_ID
            if operation.get("security"):
                statuses |= ADMIN
            responses = operation.setdefault("responses", {})
            for status, description in statuses.items():
                if str(status) not in responses or "HTTPValidationError" in str(responses[str(status)]):
                    responses[str(status)] = {"description": description, "content": ref}
            for status, response in responses.items():
                if status.startswith(("4", "5")) and "content" not in response:
                    response["content"] = ref  # a route's own error statuses, given without a model
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    app.openapi_schema = app.state.documented_schema = schema
    return schema


def add_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc with their scripts and styles from the app, and the schema from `document`."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    app.openapi = lambda: document(app)  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
