"""Dependencies shared by the routers: the service state and the admin check."""

from __future__ import annotations

import hmac

from fastapi import Depends, Header, HTTPException, Request

from recsys.service.state import ServiceState


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


def require_admin(
    x_api_key: str | None = Header(None, description="the admin API key"), state: ServiceState = Depends(get_state)
) -> None:
    """401 without a key, 403 with a wrong one (or when no key is configured: admin is then off)."""
    if x_api_key is None:
        raise HTTPException(401, "admin route: send the API key in the X-API-Key header")
    expected = state.settings.api_key
    if not expected or not hmac.compare_digest(x_api_key.encode(), expected.encode()):
        raise HTTPException(403, "admin route: wrong API key" if expected else "admin routes are disabled")


def item_out(item: dict) -> dict:
    """A stored item as the API shows it."""
    return {
        "id": item["item_id"],
        "title": item["title"],
        "category": item["category"],
        "attributes": item["attributes"],
        "image_url": f"/items/{item['item_id']}/image" if item["image"] else None,
    }


def recommendations_out(state: ServiceState, results, user_id: str | None = None) -> dict:
    known = state.store.items_by_id([r.item_id for r in results])
    # An item deleted between ranking and now is left out rather than failing the whole list.
    items = [{**r.as_dict(), "item": item_out(known[r.item_id])} for r in results if r.item_id in known]
    return {"items": items, "user_id": user_id}
