"""Products re-rendered in palette styles. The fast renderer answers inline (a plain `def` route: FastAPI runs it
in its threadpool, never on the event loop); gatys and adain renders are queued (202 + a job) unless cached."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from recsys.palette import parse_blend, style_image
from recsys.service.deps import get_state
from recsys.service.schemas import Job, PaletteStyle, RenderSettings
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
    style: str = Query(
        ..., min_length=1, description="a palette style name, or a blend NAME:WEIGHT,NAME:WEIGHT (fast renderer)"
    ),
    renderer: Literal["fast", "gatys", "adain"] = "fast",
    user_id: str | None = Query(None, description="use this shopper's remembered adjustments for those not given"),
    preserve_colour: bool = True,
    strength: float | None = Query(None, ge=0, le=1, description="1 = full style, 0 = the original product"),
    style_amount: float | None = Query(None, ge=0, le=1, description="fast: less style = towards the product's own"),
    brightness: float | None = Query(None, ge=0.2, le=3),
    contrast: float | None = Query(None, ge=0.2, le=3),
    saturation: float | None = Query(None, ge=0.1, le=3),
    state: ServiceState = Depends(get_state),
):
    image = state.store.item(item_id)["image"]
    if not image or not Path(image).is_file():
        raise HTTPException(404, f"item {item_id!r} has no image to render")
    blend = parse_blend(style)
    palette = {s["name"] for s in state.store.styles()}
    for name, _ in blend:
        if name not in palette:
            raise HTTPException(404, f"unknown style {name!r}")
    if len(blend) > 1 and renderer != "fast":
        raise HTTPException(422, f"style blends need the fast renderer, not {renderer}")
    given = {"strength": strength, "style_amount": style_amount, "brightness": brightness, "contrast": contrast,
             "saturation": saturation}  # fmt: skip
    remembered = state.store.render_settings(user_id) if user_id else {}
    adjustments = RenderSettings.model_validate(remembered).model_dump()
    adjustments.update({key: value for key, value in given.items() if value is not None})
    options = RenderOptions(
        renderer=renderer,
        size=state.settings.render_size,
        steps=state.settings.render_steps,
        preserve_colour=preserve_colour,
        **adjustments,
    )
    references = [(style_image(state.store, name), weight) for name, weight in blend]
    # a personal render changes when the shopper's remembered adjustments do: browsers must ask again
    cache_control = "private, no-cache" if user_id else "public, max-age=86400"
    if renderer == "fast":
        data, _ = state.renders.render(image, references, options, state.renderer(options))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": cache_control})
    if renderer == "adain":
        try:
            state.renderer(options)
        except RenderError as exc:
            raise HTTPException(422, str(exc)) from None
    reference = references[0][0]
    key = state.render_key(image, reference, options)
    cached = state.renders.get(key)
    if cached is not None:
        return Response(cached, media_type="image/jpeg", headers={"Cache-Control": cache_control})
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
