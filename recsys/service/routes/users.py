"""Shoppers: the personalised feed and the preferred palette styles."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from recsys.catalog import Catalog
from recsys.service.deps import get_catalog, get_settings, recommendations_out
from recsys.service.routes.items import categories_of
from recsys.service.schemas import MAX_K, Recommendations, StyleScore
from recsys.service.settings import Settings

router = APIRouter(tags=["shoppers"])


@router.get("/users", response_model=list[str])
def list_users(limit: int = Query(50, ge=1, le=1000), catalog: Catalog = Depends(get_catalog)):
    """The shop's own shoppers (from its imported data, never whoever posted an event), for the page's picker."""
    return catalog.shoppers(limit)


@router.get("/users/{user_id}/feed", response_model=Recommendations)
def feed(
    user_id: str,
    k: int = Query(10, ge=1, le=MAX_K),
    category: str | None = Query(None, max_length=200),
    alpha: float | None = Query(None, ge=0, le=1, description="CF weight against style"),
    catalog: Catalog = Depends(get_catalog),
    settings: Settings = Depends(get_settings),
):
    results = catalog.feed(user_id, min(k, settings.max_k), categories_of(category), alpha)
    return recommendations_out(catalog, results, user_id)


@router.get("/users/{user_id}/styles", response_model=list[StyleScore])
def preferred_styles(user_id: str, k: int = Query(3, ge=1, le=50), catalog: Catalog = Depends(get_catalog)):
    return catalog.preferred_styles(user_id, k)
