"""Liveness and readiness, and what the service is serving (index and CF versions)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from recsys.service.deps import get_catalog, get_renders
from recsys.service.render_queue import RenderQueue
from recsys.service.schemas import Health
from recsys.shop.catalog import Catalog

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(catalog: Catalog = Depends(get_catalog), renders: RenderQueue = Depends(get_renders)):
    info = catalog.health()
    ready = info["style_vectors"] > 0 and info["cf_version"] is not None
    return {"status": "ok", "ready": ready, "renders_pending": renders.pending(), **info}
