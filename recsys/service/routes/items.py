"""Items, their images, same-style search and shop-this-style."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse

from recsys.service.deps import get_state, item_out, recommendations_out
from recsys.service.schemas import Item, ItemList, Recommendations
from recsys.service.state import ServiceState

router = APIRouter(tags=["items"])


def _categories(category: str | None) -> set[str] | None:
    return {c for c in category.split(",") if c} if category else None


@router.get("/items", response_model=ItemList)
def list_items(
    category: str | None = None,
    q: str | None = Query(None, max_length=200, description="id or title contains"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    state: ServiceState = Depends(get_state),
):
    items = state.store.items(category, limit, offset, q)
    total = state.store.count_items(category, q)
    return {"items": [item_out(i) for i in items], "total": total}


@router.get("/items/{item_id}", response_model=Item)
def get_item(item_id: str, state: ServiceState = Depends(get_state)):
    return item_out(state.store.item(item_id))


@router.get("/items/{item_id}/image", response_class=FileResponse, responses={200: {"content": {"image/*": {}}}})
def item_image(item_id: str, state: ServiceState = Depends(get_state)):
    image = state.store.item(item_id)["image"]
    if not image or not Path(image).is_file():
        raise HTTPException(404, f"item {item_id!r} has no image")
    return FileResponse(image)


@router.get("/items/{item_id}/similar", response_model=Recommendations)
def similar(
    item_id: str,
    k: int = Query(10, ge=1),
    category: str | None = None,
    user_id: str | None = None,
    state: ServiceState = Depends(get_state),
):
    k = min(k, state.settings.max_k)
    results = state.recommender.similar_items(item_id, k, user_id or None, _categories(category))
    return recommendations_out(state, results, user_id)


@router.post("/shop-this-style", response_model=Recommendations)
async def shop_this_style(
    image: UploadFile | None = File(None, description="a photo whose style to shop"),
    item_id: str | None = Form(None, description="or an item whose style to shop"),
    k: int = Form(10, ge=1),
    category: str | None = Form(None),
    user_id: str | None = Form(None),
    state: ServiceState = Depends(get_state),
):
    k = min(k, state.settings.max_k)
    if (image is None) == (item_id is None):
        raise HTTPException(422, "send either an image upload (field 'image') or an item_id")
    if item_id is not None:
        results = state.recommender.similar_items(item_id, k, user_id or None, _categories(category))
        return recommendations_out(state, results, user_id)
    data = await read_upload(image, state.settings.max_upload_bytes)
    results = state.recommender.shop_this_style(data, k, user_id or None, _categories(category))
    return recommendations_out(state, results, user_id)


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; 413 as soon as it passes `limit`, 422 when empty."""
    chunks, size = [], 0
    while chunk := await upload.read(1 << 16):
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"upload larger than {limit} bytes")
        chunks.append(chunk)
    if size == 0:
        raise HTTPException(422, "the uploaded file is empty")
    return b"".join(chunks)
