"""Shoppers: the personalised feed, the preferred palette styles (with their feedback), products in a style they
liked, and their remembered render adjustments.

The read routes are `async def`: they run on the event loop, without a hop to a worker thread and back. Their
work is a few milliseconds of CPU (SQLite reads and ranking in memory) that threads would not run in parallel
anyway (the GIL); blocking work (photo embeddings, renders, committed writes) stays off the loop."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from recsys.service.deps import get_catalog, get_settings, recommendations_out
from recsys.service.routes.items import WEIGHT_HELP, FacetName, categories_of, facet_of
from recsys.service.schemas import MAX_K, Recommendations, RenderSettings, StyleScore
from recsys.settings import Settings
from recsys.shop.catalog import Catalog

router = APIRouter(tags=["shoppers"])
LIKED_FACET_HELP = "what 'in this style' matches: the pattern/texture (the default), the colours, or both"


@router.get("/users", response_model=list[str])
async def list_users(limit: int = Query(50, ge=1, le=1000), catalog: Catalog = Depends(get_catalog)):
    """The shop's own shoppers (from its imported data, never whoever posted an event), for the page's picker."""
    return catalog.shoppers(limit)


@router.get("/users/{user_id}/feed", response_model=Recommendations)
async def feed(
    user_id: str,
    k: int = Query(10, ge=1, le=MAX_K),
    category: str | None = Query(None, max_length=200),
    alpha: float | None = Query(None, ge=0, le=1, description="CF weight against style"),
    catalog: Catalog = Depends(get_catalog),
    settings: Settings = Depends(get_settings),
):
    """The shopper's feed, each item with its reason; a shopper never seen gets the cold-start feed (what sells
    now), not a 404: a shop's new visitor is the usual case; an unknown `category` is a 404. Answers are kept
    (as response bodies) until the shopper's events or the models change: a repeat costs a lookup."""

    def body(results: list) -> bytes:
        return Recommendations.model_validate(recommendations_out(catalog, results, user_id)).model_dump_json().encode()

    found = catalog.cached_feed(user_id, min(k, settings.max_k), categories_of(category, catalog), alpha, body)
    return Response(found, media_type="application/json")


@router.get("/users/{user_id}/styles", response_model=list[StyleScore])
async def preferred_styles(user_id: str, k: int = Query(3, ge=1, le=50), catalog: Catalog = Depends(get_catalog)):
    """Palette styles by the shopper's history, moved at once by their `style_like` / `style_dislike` events."""
    return catalog.preferred_styles(user_id, k)


@router.get("/users/{user_id}/styles/{name}/items", response_model=Recommendations)
async def in_liked_style(
    user_id: str,
    name: str,
    k: int = Query(10, ge=1, le=MAX_K),
    facet: FacetName | None = Query(None, description=LIKED_FACET_HELP),
    pattern_weight: float | None = Query(None, ge=0, le=1, description=WEIGHT_HELP),
    catalog: Catalog = Depends(get_catalog),
    settings: Settings = Depends(get_settings),
):
    """Catalog products near a palette style (its pattern unless `facet` says otherwise), without what the
    shopper already has, re-ordered for them within the style's nearest; reason "in the style you liked"."""
    results = catalog.in_style(name, user_id, min(k, settings.max_k), facet_of(facet, pattern_weight))
    return recommendations_out(catalog, results, user_id)


@router.get("/users/{user_id}/render-settings", response_model=RenderSettings)
async def render_settings(user_id: str, catalog: Catalog = Depends(get_catalog)):
    """The shopper's remembered render adjustments (the defaults when none)."""
    return RenderSettings.model_validate(catalog.render_settings(user_id))


@router.put("/users/{user_id}/render-settings", response_model=RenderSettings)
def put_render_settings(user_id: str, adjustments: RenderSettings, catalog: Catalog = Depends(get_catalog)):
    """Remember the shopper's adjustments: their renders (`?user_id=`) use them unless a request overrides them."""
    catalog.put_render_settings(user_id, adjustments.model_dump())
    return adjustments
