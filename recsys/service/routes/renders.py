"""Products re-rendered in palette styles: cached renders come back at once, others are queued (202 + a job)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from recsys.palette import style_image
from recsys.service.deps import get_state
from recsys.service.schemas import Job, PaletteStyle
from recsys.service.state import ServiceState
from transfer.render import RenderError, RenderOptions

router = APIRouter(tags=["styles and renders"])


@router.get("/styles", response_model=list[PaletteStyle])
def palette(state: ServiceState = Depends(get_state)):
    return [
        {"name": s["name"], "image_url": f"/styles/{s['name']}/image", "has_vector": s["vector"] is not None}
        for s in state.store.styles()
    ]


@router.get("/styles/{name}/image", response_class=FileResponse, responses={200: {"content": {"image/*": {}}}})
def palette_image(name: str, state: ServiceState = Depends(get_state)):
    for style in state.store.styles():
        if style["name"] == name and Path(style["image"]).is_file():
            return FileResponse(style["image"])
    raise HTTPException(404, f"unknown style {name!r}")


@router.get(
    "/items/{item_id}/render",
    responses={200: {"content": {"image/jpeg": {}}}, 202: {"model": Job, "description": "render queued"}},
    response_class=Response,
)
def render(
    request: Request,
    item_id: str,
    style: str = Query(..., min_length=1, description="a palette style name"),
    renderer: Literal["gatys", "adain"] = "gatys",
    preserve_colour: bool = True,
    strength: float = Query(1.0, ge=0, le=1),
    state: ServiceState = Depends(get_state),
):
    image = state.store.item(item_id)["image"]
    if not image or not Path(image).is_file():
        raise HTTPException(404, f"item {item_id!r} has no image to render")
    if style not in {s["name"] for s in state.store.styles()}:
        raise HTTPException(404, f"unknown style {style!r}")
    reference = style_image(state.store, style)
    options = RenderOptions(
        renderer=renderer,
        size=state.settings.render_size,
        steps=state.settings.render_steps,
        preserve_colour=preserve_colour,
        strength=strength,
    )
    if renderer == "adain":
        try:
            state.renderer(options)
        except RenderError as exc:
            raise HTTPException(422, str(exc)) from None
    key = state.render_key(image, reference, options)
    cached = state.renders.get(key)
    if cached is not None:
        return Response(cached, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})
    job_id = key[:32]
    state.submit_render(job_id, image, reference, options, f"{request.url.path}?{request.url.query}")
    url = f"/jobs/{job_id}"
    return JSONResponse({"id": job_id, "status": "queued", "url": url}, status_code=202, headers={"Location": url})


@router.get("/jobs/{job_id}", response_model=Job)
def job(job_id: str, state: ServiceState = Depends(get_state)):
    found = state.store.job(job_id)
    result = found["result"] or {}
    payload = found["payload"]
    return {
        "id": found["id"],
        "status": found["status"],
        "error": result.get("error"),
        "result_url": payload.get("url") if found["status"] == "done" else None,
    }
