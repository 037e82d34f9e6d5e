"""Admin: items, styles, index and CF. Every route needs the API key (401 without, 403 when wrong)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import Response

from recsys.catalog import Catalog
from recsys.palette import NAME
from recsys.service.deps import get_catalog, get_embedder, get_settings, item_out, off_loop, require_admin
from recsys.service.routes.items import read_upload
from recsys.service.schemas import Item, PaletteStyle
from recsys.service.settings import Settings
from recsys.service.state import Embedder
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
    title: str = Form("", max_length=500),
    category: str = Form("", max_length=200),
    attributes: str = Form("{}", max_length=20_000, description="a JSON object"),
    image: UploadFile | None = File(None),
    catalog: Catalog = Depends(get_catalog),
    embedder: Embedder = Depends(get_embedder),
    settings: Settings = Depends(get_settings),
):
    """Add or replace an item; its photo is embedded (off the event loop) and indexed in the background."""
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
        data = await read_upload(image, settings.max_upload_bytes)
        await off_loop(load_image, data, settings.max_pixels)  # 4xx before anything is stored
        path = _save_upload(data, settings.uploads_dir, item_id)
    item = await off_loop(catalog.put_item, item_id, title, category, extra, str(path.resolve()) if path else None)
    if path is not None:
        background.add_task(_index_photo, catalog, embedder, item_id, str(path))
    return item_out(item)


def _index_photo(catalog: Catalog, embedder: Embedder, item_id: str, path: str) -> None:
    """Background job after an admin upload: embed the photo (on the embedding pool) and index it."""
    catalog.add_item_vector(item_id, embedder.submit(path, wait_for_slot=True).result())


@router.delete("/items/{item_id}", status_code=204, response_class=Response)
def delete_item(item_id: str, catalog: Catalog = Depends(get_catalog)):
    catalog.remove_item(item_id)  # 404 for an unknown id
    return Response(status_code=204)


@router.post("/styles", response_model=PaletteStyle, status_code=201)
async def add_style(
    name: str = Form(...),
    image: UploadFile = File(...),
    catalog: Catalog = Depends(get_catalog),
    embedder: Embedder = Depends(get_embedder),
    settings: Settings = Depends(get_settings),
):
    """Add or replace a palette style (its style vector is computed with the catalog's encoder)."""
    if not NAME.match(name):
        raise HTTPException(422, "style name: letters, digits, '-', '_' or '.' (up to 64)")
    data = await read_upload(image, settings.max_upload_bytes)
    await off_loop(load_style, data)
    path = _save_upload(data, settings.styles_dir, name)
    vector = await embedder.embed(str(path)) if catalog.style is not None else None
    await off_loop(catalog.put_style, name, str(path.resolve()), vector)
    return {"name": name, "image_url": f"/styles/{name}/image", "has_vector": vector is not None}


@router.delete("/styles/{name}", status_code=204, response_class=Response)
def delete_style(name: str, catalog: Catalog = Depends(get_catalog)):
    catalog.delete_style(name)  # 404 for an unknown style
    return Response(status_code=204)


@router.post("/admin/index/rebuild")
def rebuild_index(catalog: Catalog = Depends(get_catalog)):
    """Rebuild the style index over the current vectors: a new persisted version, swapped in while searches go
    on (other worker processes load it within `sync_every` seconds)."""
    return catalog.rebuild_index()


@router.post("/admin/cf/retrain")
def retrain(catalog: Catalog = Depends(get_catalog)):
    """Retrain collaborative filtering on every stored event, then the feed's ranker (its features include CF
    scores): new persisted versions, swapped in. `ranker.learned` false: too little data, the blend ranks."""
    return {**catalog.retrain_cf(), "ranker": catalog.retrain_ranker()}


@router.post("/admin/ranker/retrain")
def retrain_ranker(catalog: Catalog = Depends(get_catalog)):
    """Retrain the feed's ranker on every stored event: a new persisted version, swapped in (when it could learn)."""
    return catalog.retrain_ranker()
