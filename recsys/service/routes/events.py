"""Shopper events: durable once acknowledged, and in that shopper's feed (item events) or preferred styles
(style feedback) at once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from recsys.service.deps import get_state
from recsys.service.schemas import EventIn, EventOut
from recsys.service.state import ServiceState

router = APIRouter(tags=["events"])


@router.post("/events", response_model=EventOut, status_code=201)
def post_event(event: EventIn, state: ServiceState = Depends(get_state)):
    if event.style is not None:
        if event.style not in {s["name"] for s in state.store.styles()}:
            raise HTTPException(404, f"unknown style {event.style!r}")
        event_id = state.store.add_style_event(event.user_id, event.style, event.event, event.timestamp)
        return {"id": event_id, "user_id": event.user_id, "style": event.style, "event": event.event}
    event_id = state.recommender.record_event(event.user_id, event.item_id, event.event, event.timestamp)
    return {"id": event_id, "user_id": event.user_id, "item_id": event.item_id, "event": event.event}
