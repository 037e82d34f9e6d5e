"""Shopper events: durable once acknowledged, stored once per client `event_id`, in that shopper's feed (item
events) or preferred styles (style feedback) at once."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from recsys.catalog import Catalog
from recsys.service.deps import get_catalog
from recsys.service.schemas import EventIn, EventOut
from recsys.store import NotFound

router = APIRouter(tags=["events"])


@router.post("/events", response_model=EventOut, status_code=201)
def post_event(event: EventIn, catalog: Catalog = Depends(get_catalog)):
    """Record an event. With an `event_id`, a retry of the same post is stored once and answered with the
    first event (whatever else the retry says)."""
    if event.style is not None:
        if event.style not in {s["name"] for s in catalog.store.styles()}:
            raise NotFound(f"unknown style {event.style!r}")
        stored = catalog.store.add_style_event(event.user_id, event.style, event.event, event.timestamp, event.event_id)
        return {**stored, "event_id": event.event_id}
    stored = catalog.record_event(event.user_id, event.item_id, event.event, event.timestamp, event.event_id)
    return {**stored, "event_id": event.event_id}
