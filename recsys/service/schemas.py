"""Request and response models of the API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MAX_K = 1000  # results asked for at most (the service then caps them at its `max_k` setting)
MAX_OFFSET = 1_000_000_000  # list offsets at most (SQLite takes 64-bit integers; a bigger one would be a 500)


class Item(BaseModel):
    id: str
    title: str
    category: str
    attributes: dict = Field(default_factory=dict)
    image_url: str | None = None


class ItemList(BaseModel):
    items: list[Item]
    total: int


class Recommendation(BaseModel):
    item: Item
    score: float
    reason: str
    cf: float | None = None
    style: float | None = None
    popularity: float | None = None


class Recommendations(BaseModel):
    items: list[Recommendation]
    user_id: str | None = None


class EventIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    event: Literal["view", "click", "like", "add_to_cart", "purchase"] = "click"
    timestamp: float | None = Field(None, ge=0, le=4e9, description="epoch seconds (default: now)")
    event_id: str | None = Field(
        None, min_length=1, max_length=200, description="the client's id for this event: a retry is stored once"
    )


class EventOut(BaseModel):
    id: int
    user_id: str
    item_id: str
    event: str
    weight: float
    timestamp: float
    event_id: str | None = None


class StyleScore(BaseModel):
    name: str
    score: float


class PaletteStyle(BaseModel):
    name: str
    image_url: str
    has_vector: bool


class Job(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    result_url: str | None = None
    error: str | None = None


class Health(BaseModel):
    status: Literal["ok"]
    ready: bool
    items: int
    events: int
    style_vectors: int
    model_id: str | None
    index_version: str | None = Field(description="the persisted index version served (None: built in memory)")
    index_spec: str | None
    index_device: str | None
    cf_version: str | None = Field(description="the persisted CF model version served")
    cf_users: int
    cf_items: int
    renders_pending: int
