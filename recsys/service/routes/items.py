"""Items, their images, same-style search and shop-this-style."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse

from common.errors import BadInput
from recsys.service.deps import get_catalog, get_embedder, get_settings, item_out, recommendations_out
from recsys.service.guards import BodyTooLarge
from recsys.service.schemas import MAX_K, MAX_OFFSET, Item, ItemList, Recommendations
from recsys.service.state import Embedder
from recsys.settings import Settings
from recsys.shop.catalog import Catalog
from recsys.store.sqlite import NotFound

router = APIRouter(tags=["items"])


FacetName = Literal["pattern", "colour", "both"]
FACET_HELP = (
    "what 'same style' matches: the pattern/texture, the colours, or both (the default: the pattern leads 3:1, the "
    "colours break ties)"
)
WEIGHT_HELP = "instead of `facet`: the pattern's weight in [0, 1], the colours get the rest"


def categories_of(category: str | None, catalog: Catalog | None = None) -> set[str] | None:
    """The comma-separated categories of a `category` parameter; with the catalog, 404 for one it does not have
    (an empty answer would not tell a typo from a sold-out category)."""
    categories = {c for c in category.split(",") if c} if category else None
    for name in sorted(categories or ()) if catalog is not None else ():
        if not catalog.items(name, limit=1):
            raise NotFound(f"unknown category {name!r}")
    return categories


def facet_of(facet: str | None, pattern_weight: float | None) -> str | float | None:
    """A facet name or a pattern weight for the recommender (422 when both are given)."""
    if facet is not None and pattern_weight is not None:
        raise BadInput("give either facet or pattern_weight, not both")
    return pattern_weight if pattern_weight is not None else facet


@router.get("/items", response_model=ItemList)
async def list_items(
    category: str | None = Query(None, max_length=200),
    q: str | None = Query(None, max_length=200, description="id or title contains"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    catalog: Catalog = Depends(get_catalog),
):
    items = catalog.items(category, limit, offset, q)
    return {"items": [item_out(i) for i in items], "total": catalog.count_items(category, q)}


@router.get("/items/{item_id}", response_model=Item)
async def get_item(item_id: str, catalog: Catalog = Depends(get_catalog)):
    return item_out(catalog.item(item_id))


@router.get("/items/{item_id}/image", response_class=FileResponse, responses={200: {"content": {"image/*": {}}}})
def item_image(item_id: str, catalog: Catalog = Depends(get_catalog)):
    image = catalog.item(item_id)["image"]
    if not image or not Path(image).is_file():
        raise NotFound(f"item {item_id!r} has no image")
    return FileResponse(image)


@router.get("/items/{item_id}/similar", response_model=Recommendations)
async def similar(
    item_id: str,
    k: int = Query(10, ge=1, le=MAX_K),
    category: str | None = Query(None, max_length=200),
    user_id: str | None = Query(None, max_length=200),
    facet: FacetName | None = Query(None, description=FACET_HELP),
    pattern_weight: float | None = Query(None, ge=0, le=1, description=WEIGHT_HELP),
    catalog: Catalog = Depends(get_catalog),
    settings: Settings = Depends(get_settings),
):
    """Items in the style of an item, reason "same style as <its title>"; with `user_id`, re-ordered for the
    shopper within the style's nearest (never other styles), without what they already have."""
    style = facet_of(facet, pattern_weight)
    results = catalog.similar(item_id, min(k, settings.max_k), user_id or None, categories_of(category, catalog), style)
    # the body serialised once by its model, as the feed does (FastAPI's response_model pass would validate it again)
    body = Recommendations.model_validate(recommendations_out(catalog, results, user_id)).model_dump_json()
    return Response(body.encode(), media_type="application/json")


@router.post("/shop-this-style", response_model=Recommendations)
async def shop_this_style(
    image: UploadFile | None = File(None, description="a photo whose style to shop"),
    item_id: str | None = Form(None, max_length=200, description="or an item whose style to shop"),
    k: int = Form(10, ge=1, le=MAX_K),
    category: str | None = Form(None, max_length=200),
    user_id: str | None = Form(None, max_length=200),
    facet: FacetName | None = Form(None, description=FACET_HELP),
    pattern_weight: float | None = Form(None, ge=0, le=1, description=WEIGHT_HELP),
    catalog: Catalog = Depends(get_catalog),
    embedder: Embedder = Depends(get_embedder),
    settings: Settings = Depends(get_settings),
):
    """Items in the style of a photo (embedded by a bounded pool of processes, off the event loop: 503 when it is
    full) or of an item. The search itself is an index lookup: on the loop, like `similar`."""
    if (image is None) == (item_id is None):
        raise BadInput("send either an image upload (field 'image') or an item_id")
    k, categories, style = min(k, settings.max_k), categories_of(category, catalog), facet_of(facet, pattern_weight)
    if item_id is not None:
        results = catalog.similar(item_id, k, user_id or None, categories, style)
    else:
        data = await read_upload(image, settings.max_upload_bytes)
        vector = await embedder.embed(data)
        results = catalog.shop_this_style(vector, k, user_id or None, categories, style)
    return recommendations_out(catalog, results, user_id)


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; 413 as soon as it passes `limit`, 422 when empty."""
    chunks, size = [], 0
    while chunk := await upload.read(1 << 16):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, "upload")
        chunks.append(chunk)
    if size == 0:
        raise BadInput("the uploaded file is empty")
    return b"".join(chunks)
