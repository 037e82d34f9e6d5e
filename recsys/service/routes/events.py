"""Shopper events: durable once acknowledged, stored once per client `event_id`, in that shopper's feed (item
events) or preferred styles (style feedback) at once."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from recsys.service.deps import get_catalog, get_event_writer, off_loop
from recsys.service.event_writer import EventWriter
from recsys.service.schemas import EventIn, EventOut
from recsys.shop.catalog import Catalog

router = APIRouter(tags=["events"])


@router.post("/events", response_model=EventOut, status_code=201)
async def post_event(
    event: EventIn, catalog: Catalog = Depends(get_catalog), writer: EventWriter = Depends(get_event_writer)
):
    """Record an event. With an `event_id`, a retry of the same post is stored once and answered with the
    first event (whatever else the retry says)."""
    if event.style is not None:
        stored = await off_loop(
            catalog.record_style_event, event.user_id, event.style, event.event, event.timestamp, event.event_id
        )
        return {**stored, "event_id": event.event_id}
    # Checked and folded in here; only the commit (which waits for the disk) runs on the writer's thread, with
    # the other events waiting for it (one disk sync for all). A worker thread that ran the whole of it would
    # wait for the interpreter lock at every step while this loop computes feeds.
    event_id = catalog.check_event(event.user_id, event.item_id, event.event, event.event_id)
    if event_id is None:
        event_id = await writer.commit(event.user_id, event.item_id, event.event, event.timestamp, event.event_id)
    return {**catalog.event_recorded(event_id), "event_id": event.event_id}
