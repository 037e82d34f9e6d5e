"""Products re-rendered in palette styles: cached renders come back at once, others are queued (202 + a job);
the queue is bounded (429 + Retry-After) and anonymous clients choose among a few strengths."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from recsys.service.deps import get_renders, get_settings, is_admin
from recsys.service.render_queue import RenderQueue
from recsys.service.schemas import Job, PaletteStyle
from recsys.service.settings import Settings

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
        202: {"model": Job, "description": "render queued"},
        429: {"description": "the render queue is full, or this client has enough renders waiting"},
    },
    response_class=Response,
)
def render(
    request: Request,
    item_id: str,
    style: str = Query(..., min_length=1, max_length=64, description="a palette style name"),
    renderer: Literal["gatys", "adain"] = "gatys",
    preserve_colour: bool = True,
    strength: float = Query(1.0, ge=0, le=1, description="anonymous clients: 0.25, 0.5, 0.75 or 1"),
    x_api_key: str | None = Header(None, description="the admin API key: any strength"),
    renders: RenderQueue = Depends(get_renders),
    settings: Settings = Depends(get_settings),
):
    options = renders.options(renderer, strength, preserve_colour, admin=is_admin(x_api_key, settings))
    client = "admin" if is_admin(x_api_key, settings) else (request.client.host if request.client else "unknown")
    found = renders.request(item_id, style, options, client, f"{request.url.path}?{request.url.query}")
    if isinstance(found, bytes):
        return Response(found, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})
    url = f"/jobs/{found}"
    return JSONResponse({"id": found, "status": "queued", "url": url}, status_code=202, headers={"Location": url})


@router.get("/jobs/{job_id}", response_model=Job)
def job(job_id: str = Path(..., max_length=64), renders: RenderQueue = Depends(get_renders)):
    return renders.job(job_id)
