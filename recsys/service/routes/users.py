"""Shoppers: the personalised feed, the preferred palette styles (with their feedback), products in a style they
liked, and their remembered render adjustments."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from recsys.service.deps import get_state, recommendations_out
from recsys.service.schemas import Recommendations, RenderSettings, StyleScore
from recsys.service.state import ServiceState

router = APIRouter(tags=["shoppers"])


@router.get("/users", response_model=list[str])
def list_users(limit: int = Query(50, ge=1, le=1000), state: ServiceState = Depends(get_state)):
    """Shoppers with recorded events (for the demo page's picker)."""
    return state.store.users(limit)


@router.get("/users/{user_id}/feed", response_model=Recommendations)
def feed(
    user_id: str,
    k: int = Query(10, ge=1),
    category: str | None = None,
    alpha: float | None = Query(None, ge=0, le=1, description="CF weight against style"),
    state: ServiceState = Depends(get_state),
):
    categories = {c for c in category.split(",") if c} if category else None
    results = state.recommender.feed(user_id, min(k, state.settings.max_k), categories, alpha)
    return recommendations_out(state, results, user_id)


@router.get("/users/{user_id}/styles", response_model=list[StyleScore])
def preferred_styles(user_id: str, k: int = Query(3, ge=1, le=50), state: ServiceState = Depends(get_state)):
    """Palette styles by the shopper's history, moved at once by their `style_like` / `style_dislike` events."""
    return state.recommender.preferred_styles(user_id, k)


@router.get("/users/{user_id}/styles/{name}/items", response_model=Recommendations)
def in_liked_style(user_id: str, name: str, k: int = Query(10, ge=1), state: ServiceState = Depends(get_state)):
    """Catalog products near a palette style, without what the shopper already has, re-ranked for them."""
    results = state.recommender.in_style(name, user_id, min(k, state.settings.max_k))
    return recommendations_out(state, results, user_id)


@router.get("/users/{user_id}/render-settings", response_model=RenderSettings)
def render_settings(user_id: str, state: ServiceState = Depends(get_state)):
    """The shopper's remembered render adjustments (the defaults when none)."""
    return RenderSettings.model_validate(state.store.render_settings(user_id))


@router.put("/users/{user_id}/render-settings", response_model=RenderSettings)
def put_render_settings(user_id: str, settings: RenderSettings, state: ServiceState = Depends(get_state)):
    """Remember the shopper's adjustments: their renders (`?user_id=`) use them unless a request overrides them."""
    state.store.put_render_settings(user_id, settings.model_dump())
    return settings
