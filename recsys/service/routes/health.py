"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from recsys.service.deps import get_state
from recsys.service.schemas import Health
from recsys.service.state import ServiceState

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(state: ServiceState = Depends(get_state)):
    cf = state.recommender.cf
    return {
        "status": "ok",
        "ready": state.style is not None and cf is not None,
        "items": state.store.count_items(),
        "events": state.store.count_events(),
        "style_vectors": len(state.style.ids) if state.style is not None else 0,
        "model_id": state.model_id,
        "cf_users": len(cf.user_ids) if cf is not None else 0,
        "cf_items": len(cf.item_ids) if cf is not None else 0,
    }
