"""Dependencies shared by the routers: one part of the service state each, and the admin check."""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Callable
from typing import TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from common.errors import StylerecError
from recsys.service.admin_jobs import AdminJobs
from recsys.service.event_writer import EventWriter
from recsys.service.render_queue import RenderQueue
from recsys.service.state import Embedder
from recsys.settings import Settings
from recsys.shop.catalog import Catalog


# The dependencies are `async def`: FastAPI would run a plain `def` one on a worker thread (a thread hop per
# dependency per request).
async def get_settings(request: Request) -> Settings:
    return request.app.state.service.settings


async def get_catalog(request: Request) -> Catalog:
    """The catalog, caught up with what other worker processes recorded: their events folded in (here: when
    nothing changed this is one cheap SQLite pragma), their model changes loaded (on a thread: that reads files)."""
    catalog = request.app.state.service.catalog
    if catalog.catch_up():
        await off_loop(catalog.reload, True)
    return catalog


T = TypeVar("T")


async def off_loop(function: Callable[..., T], *args) -> T:
    """Run blocking work (a commit that waits for the disk, reading model files) on a thread of the event loop's
    executor. Unlike Starlette's `run_in_threadpool` it is handed over at once: anyio first yields to the loop,
    which under load means waiting behind every request queued there (measured: 57 ms median before an event's
    commit started, 0.3 ms this way)."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))


async def get_embedder(request: Request) -> Embedder:
    return request.app.state.service.embedder


async def get_renders(request: Request) -> RenderQueue:
    return request.app.state.service.renders


async def get_jobs(request: Request) -> AdminJobs:
    return request.app.state.service.jobs


async def get_event_writer(request: Request) -> EventWriter:
    return request.app.state.service.events


class AdminRefused(StylerecError):
    """An admin route called without the API key (401) or with a wrong one, or with admin off (403)."""

    http_status = 403


def is_admin(x_api_key: str | None, settings: Settings) -> bool:
    expected = settings.api_key
    return bool(expected and x_api_key and hmac.compare_digest(x_api_key.encode(), expected.encode()))


ADMIN_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="the admin API key (STYLEREC_API_KEY)")


def require_admin(x_api_key: str | None = Security(ADMIN_KEY), settings: Settings = Depends(get_settings)) -> None:
    """401 without a key, 403 with a wrong one (or when no key is configured: admin is then off)."""
    if x_api_key is None:
        raise AdminRefused("admin route: send the API key in the X-API-Key header", http_status=401)
    if not is_admin(x_api_key, settings):
        raise AdminRefused("admin route: wrong API key" if settings.api_key else "admin routes are disabled")


def item_out(item: dict) -> dict:
    """A stored item as the API shows it."""
    return {
        "id": item["item_id"],
        "title": item["title"],
        "category": item["category"],
        "attributes": item["attributes"],
        "image_url": f"/items/{item['item_id']}/image" if item["image"] else None,
    }


def recommendations_out(catalog: Catalog, results, user_id: str | None = None) -> dict:
    known = catalog.items_by_id([r.item_id for r in results])
    # An item deleted between ranking and now is left out rather than failing the whole list.
    items = [{**r.as_dict(), "item": item_out(known[r.item_id])} for r in results if r.item_id in known]
    return {"items": items, "user_id": user_id}
