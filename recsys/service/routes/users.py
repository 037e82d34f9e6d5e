"""Shoppers: the personalised feed and the preferred palette styles."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from recsys.service.deps import get_state, recommendations_out
from recsys.service.schemas import Recommendations, StyleScore
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
    return state.recommender.preferred_styles(user_id, k)
