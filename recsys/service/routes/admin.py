"""Admin: items, styles, index and CF. Every route needs the API key (401 without, 403 when wrong)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import Response

from recsys.palette import NAME
from recsys.service.deps import get_state, item_out, require_admin
from recsys.service.routes.items import read_upload
from recsys.service.schemas import Item, PaletteStyle
from recsys.service.state import ServiceState
from transfer.images import load_image
from transfer.render_cache import load_style

router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])
ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def _save_upload(data: bytes, folder: Path, stem: str) -> Path:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        suffix = SUFFIXES.get(image.format or "", ".jpg")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}{suffix}"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


@router.post("/items", response_model=Item, status_code=201)
async def add_item(
    background: BackgroundTasks,
    item_id: str = Form(...),
    title: str = Form(""),
    category: str = Form(""),
    attributes: str = Form("{}", description="a JSON object"),
    image: UploadFile | None = File(None),
    state: ServiceState = Depends(get_state),
):
    """Add or replace an item; its photo is embedded and indexed in the background."""
    if not ITEM_ID.match(item_id):
        raise HTTPException(422, "item_id: letters, digits and _ . : - only (up to 128)")
    try:
        extra = json.loads(attributes)
    except json.JSONDecodeError:
        raise HTTPException(422, "attributes must be a JSON object") from None
    if not isinstance(extra, dict):
        raise HTTPException(422, "attributes must be a JSON object")
    path = None
    if image is not None:
        data = await read_upload(image, state.settings.max_upload_bytes)
        load_image(data, state.settings.max_pixels)  # 4xx before anything is stored
        path = _save_upload(data, state.settings.uploads_dir, item_id)
    state.store.upsert_item(item_id, title, category, extra, str(path.resolve()) if path else None)
    state.refresh_catalog()
    if path is not None:
        background.add_task(state.add_item_vector, item_id, str(path))
    return item_out(state.store.item(item_id))


@router.delete("/items/{item_id}", status_code=204, response_class=Response)
def delete_item(item_id: str, state: ServiceState = Depends(get_state)):
    state.store.item(item_id)  # 404 for an unknown id
    state.remove_item(item_id)
    return Response(status_code=204)


@router.post("/styles", response_model=PaletteStyle, status_code=201)
async def add_style(name: str = Form(...), image: UploadFile = File(...), state: ServiceState = Depends(get_state)):
    """Add or replace a palette style (its style vector is computed with the catalog's encoder)."""
    if not NAME.match(name):
        raise HTTPException(422, "style name: letters, digits, '-', '_' or '.' (up to 64)")
    data = await read_upload(image, state.settings.max_upload_bytes)
    load_style(data)
    path = _save_upload(data, state.settings.styles_dir, name)
    vector = state.embed_image(str(path)) if state.style is not None else None
    state.store.put_style(name, str(path.resolve()), vector, state.model_id if vector is not None else None)
    return {"name": name, "image_url": f"/styles/{name}/image", "has_vector": vector is not None}


@router.delete("/styles/{name}", status_code=204, response_class=Response)
def delete_style(name: str, state: ServiceState = Depends(get_state)):
    if not state.store.delete_style(name):
        raise HTTPException(404, f"unknown style {name!r}")
    return Response(status_code=204)


@router.post("/admin/index/rebuild")
def rebuild_index(state: ServiceState = Depends(get_state)):
    """Rebuild the style index from the current vectors (swapped in atomically)."""
    if state.style is None:
        raise HTTPException(409, "no style vectors to index")
    from index.style_index import StyleIndex

    with state.recommender.lock:
        fresh = StyleIndex.build(state.style.vectors, state.style.ids, model_id=state.style.model_id)
        state.style.index.replace_with(fresh)
    return state.style.index.info()


@router.post("/admin/cf/retrain")
def retrain(state: ServiceState = Depends(get_state)):
    """Retrain collaborative filtering and popularity on every stored event."""
    state.recommender.retrain()
    cf = state.recommender.cf
    return {"users": len(cf.user_ids), "items": len(cf.item_ids)}
