"""Request and response models of the API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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


class EventOut(BaseModel):
    id: int
    user_id: str
    item_id: str
    event: str


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
    cf_users: int
    cf_items: int
