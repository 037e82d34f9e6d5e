"""Admin: items, styles, and the index rebuild and retrains (background jobs, see `admin_jobs`). Every route needs
the API key (401 without, 403 when wrong)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from common.atomic import atomic_write_bytes
from common.errors import BadInput, Conflict, NothingToTrain
from recsys.service.admin_jobs import AdminJobs
from recsys.service.deps import get_catalog, get_embedder, get_jobs, get_settings, item_out, off_loop, require_admin
from recsys.service.guards import BadJson, strict_json
from recsys.service.routes.items import read_upload
from recsys.service.schemas import AdminJob, Item, PaletteStyle
from recsys.service.state import Embedder
from recsys.settings import Settings
from recsys.shop.catalog import Catalog, load_image, load_style
from recsys.style.palette import NAME

router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])
ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def _save_upload(data: bytes, folder: Path, stem: str) -> Path:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        suffix = SUFFIXES.get(image.format or "", ".jpg")
    return atomic_write_bytes(folder / f"{stem}{suffix}", data)


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
        raise BadInput("item_id: letters, digits and _ . : - only (up to 128)")
    try:
        extra = strict_json(attributes)
    except BadJson as exc:
        raise BadInput(f"attributes must be a JSON object: {exc}") from None
    if not isinstance(extra, dict):
        raise BadInput("attributes must be a JSON object")
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
        raise BadInput("style name: letters, digits, '-', '_' or '.' (up to 64)")
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


def _started(jobs: AdminJobs, task: str) -> JSONResponse:
    job = jobs.start(task)  # JobRunning (409) while another admin job runs
    return JSONResponse(job, status_code=202, headers={"Location": job["status_url"]})


JOB_RESPONSES = {
    202: {"model": AdminJob, "description": "started: poll the job at its status_url (also the Location header)"},
    409: {"description": "another admin job is running (one at a time), or nothing to index or train on yet"},
}


@router.post("/admin/index/rebuild", status_code=202, response_model=AdminJob, responses=JOB_RESPONSES)
async def rebuild_index(catalog: Catalog = Depends(get_catalog), jobs: AdminJobs = Depends(get_jobs)):
    """Start rebuilding the style index over the current vectors, in the background: a new persisted version,
    swapped in by every worker process while searches go on. Answers at once with the job (202)."""
    if catalog.style is None:
        raise Conflict("the catalog has no style vectors to index (embed its images first)")
    return await off_loop(_started, jobs, "index")


@router.post("/admin/cf/retrain", status_code=202, response_model=AdminJob, responses=JOB_RESPONSES)
async def retrain(catalog: Catalog = Depends(get_catalog), jobs: AdminJobs = Depends(get_jobs)):
    """Start retraining collaborative filtering on every stored event, then the feed's ranker (its features include
    CF scores), in the background: new persisted versions, swapped in. The job's result has `ranker.learned`:
    false when there was too little data (the blend ranks). Answers at once with the job (202)."""
    if catalog.store.last_event_id() == 0:
        raise NothingToTrain("no events to train collaborative filtering on")
    return await off_loop(_started, jobs, "cf")


@router.post("/admin/ranker/retrain", status_code=202, response_model=AdminJob, responses=JOB_RESPONSES)
async def retrain_ranker(catalog: Catalog = Depends(get_catalog), jobs: AdminJobs = Depends(get_jobs)):
    """Start retraining the feed's ranker on every stored event, in the background: a new persisted version,
    swapped in (when it could learn). Answers at once with the job (202)."""
    if catalog.store.last_event_id() == 0:
        raise NothingToTrain("no events to train the feed's ranker on")
    return await off_loop(_started, jobs, "ranker")


@router.get("/admin/jobs/{job_id}", response_model=AdminJob)
async def admin_job(job_id: str = PathParam(..., max_length=64), jobs: AdminJobs = Depends(get_jobs)):
    """An admin job's state: queued, running, done (with its result) or failed (with the error)."""
    return jobs.status(job_id)  # NotFound (404) for an unknown id
