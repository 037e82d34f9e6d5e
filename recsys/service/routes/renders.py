"""Products re-rendered in palette styles. The fast renderer answers inline (a plain `def` route: FastAPI runs it
in its threadpool, never on the event loop), with any strength, style blend and adjustments, and a shopper's
remembered adjustments with `user_id`. gatys and adain renders: cached ones come back at once, others are queued
(202 + a job); the queue is bounded (429 + Retry-After) and anonymous clients choose among a few strengths."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from recsys.service.deps import get_renders, get_settings, is_admin
from recsys.service.render_queue import RenderQueue
from recsys.service.schemas import Job, PaletteStyle, RenderSettings
from recsys.settings import Settings
from recsys.store.data_io import DataError
from recsys.style.palette import parse_blend
from recsys.style.render_defaults import default_renderer

router = APIRouter(tags=["styles and renders"])


@router.get("/styles", response_model=list[PaletteStyle])
def palette(renders: RenderQueue = Depends(get_renders)):
    return renders.palette()


@router.get("/styles/{name}/image", response_class=FileResponse, responses={200: {"content": {"image/*": {}}}})
def palette_image(name: str, renders: RenderQueue = Depends(get_renders)):
    return FileResponse(renders.style_image(name))


@router.get(
    "/items/{item_id}/render",
    responses={
        200: {"content": {"image/jpeg": {}}},
        202: {"model": Job, "description": "render queued (gatys, adain)"},
        429: {"description": "the render queue is full, or this client has enough renders waiting"},
    },
    response_class=Response,
)
def render(
    request: Request,
    item_id: str,
    style: str = Query(
        ..., min_length=1, max_length=400, description="a palette style name, or a blend NAME:WEIGHT,NAME:WEIGHT (fast)"
    ),
    renderer: Literal["fast", "gatys", "adain"] | None = Query(
        None,
        description="default: fast with a blend, adjustments or user_id; else the style's measured renderer "
        "(`renderer` in /styles)",
    ),
    user_id: str | None = Query(
        None, min_length=1, max_length=200, description="fast: this shopper's remembered adjustments fill in the rest"
    ),
    preserve_colour: bool = True,
    strength: float | None = Query(
        None, ge=0, le=1, description="1 = full style, 0 = the product; gatys/adain anonymous: 0.25, 0.5, 0.75 or 1"
    ),
    style_amount: float | None = Query(None, ge=0, le=1, description="fast: less style = towards the product's own"),
    brightness: float | None = Query(None, ge=0.2, le=3, description="fast"),
    contrast: float | None = Query(None, ge=0.2, le=3, description="fast"),
    saturation: float | None = Query(None, ge=0.1, le=3, description="fast"),
    x_api_key: str | None = Header(None, description="the admin API key: any strength"),
    renders: RenderQueue = Depends(get_renders),
    settings: Settings = Depends(get_settings),
):
    blend = parse_blend(style)
    if renderer is None:  # fast-only requests stay fast; otherwise the renderer measured to carry this style
        adjusted = any(v is not None for v in (style_amount, brightness, contrast, saturation, user_id))
        fast_only = len(blend) > 1 or adjusted
        renderer = "fast" if fast_only else default_renderer(blend[0][0])
    if renderer == "fast":
        given = {"strength": strength, "style_amount": style_amount, "brightness": brightness, "contrast": contrast,
                 "saturation": saturation}  # fmt: skip
        adjustments = RenderSettings.model_validate(renders.render_settings(user_id))
        adjustments = adjustments.model_copy(update={k: v for k, v in given.items() if v is not None})
        data = renders.render_now(item_id, blend, renders.fast_options(preserve_colour, adjustments.model_dump()))
        # a shopper's render changes with their remembered adjustments: browsers must ask again
        cache_control = "private, no-cache" if user_id else "public, max-age=86400"
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": cache_control})
    if len(blend) > 1 or any(v is not None for v in (style_amount, brightness, contrast, saturation, user_id)):
        raise DataError(f"style blends, adjustments and user_id need the fast renderer, not {renderer}")
    admin = is_admin(x_api_key, settings)
    options = renders.options(renderer, 1.0 if strength is None else strength, preserve_colour, admin=admin)
    client = "admin" if admin else (request.client.host if request.client else "unknown")
    found = renders.request(item_id, blend[0][0], options, client, f"{request.url.path}?{request.url.query}")
    if isinstance(found, bytes):
        return Response(found, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})
    url = f"/jobs/{found}"
    return JSONResponse({"id": found, "status": "queued", "url": url}, status_code=202, headers={"Location": url})


@router.get("/jobs/{job_id}", response_model=Job)
def job(job_id: str = Path(..., max_length=64), renders: RenderQueue = Depends(get_renders)):
    return renders.job(job_id)
