"""Request and response models of the API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

STYLE_EVENTS = ("style_like", "style_dislike", "style_clear")

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
    """An item event (`item_id`), or a shopper's feedback on a palette style (`style`, `style_like`/`style_dislike`)."""

    # The rule between fields, in the schema too: an item event names an item_id and no style, a style event a
    # style and no item_id.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "title": "item event",
                    "required": ["item_id"],
                    "properties": {
                        "item_id": {"type": "string"},
                        "style": {"type": "null"},
                        "event": {"enum": ["view", "click", "like", "add_to_cart", "purchase"]},
                    },
                },
                {
                    "title": "style feedback",
                    "required": ["style", "event"],
                    "properties": {
                        "style": {"type": "string"},
                        "item_id": {"type": "null"},
                        "event": {"enum": list(STYLE_EVENTS)},
                    },
                },
            ]
        }
    )

    user_id: str = Field(min_length=1, max_length=200)
    item_id: str | None = Field(None, min_length=1, max_length=200)
    style: str | None = Field(None, min_length=1, max_length=64, description="a palette style name (style events)")
    event: Literal["view", "click", "like", "add_to_cart", "purchase", "style_like", "style_dislike", "style_clear"] = (
        "click"
    )
    timestamp: float | None = Field(None, ge=0, le=4e9, description="epoch seconds (default: now)")
    event_id: str | None = Field(
        None, min_length=1, max_length=200, description="the client's id for this event: a retry is stored once"
    )

    @model_validator(mode="after")
    def _item_or_style(self) -> EventIn:
        if self.event in STYLE_EVENTS and (self.style is None or self.item_id is not None):
            raise ValueError(f"a {self.event} event names a `style` (and no item_id)")
        if self.event not in STYLE_EVENTS and (self.item_id is None or self.style is not None):
            raise ValueError(f"a {self.event} event names an `item_id` (and no style)")
        return self


class EventOut(BaseModel):
    id: int
    user_id: str
    item_id: str | None = None
    style: str | None = None
    event: str
    weight: float
    timestamp: float
    event_id: str | None = None


class StyleScore(BaseModel):
    name: str
    score: float = Field(description="history score plus feedback")
    history: float | None = Field(None, description="cosine with the shopper's style profile (None: no history)")
    feedback: float = Field(0.0, description="the shift from the shopper's likes and dislikes of renders")
    state: Literal["liked", "disliked"] | None = Field(
        None, description="the shopper's latest word on the style (`style_clear` takes it back): None when none"
    )


class RenderSettings(BaseModel):
    """A shopper's render adjustments, remembered as their defaults for the next renders."""

    model_config = ConfigDict(extra="forbid")

    strength: float = Field(1.0, ge=0, le=1, description="1 = full style, 0 = the original product")
    style_amount: float = Field(1.0, ge=0, le=1, description="fast: less style = towards the product's own")
    brightness: float = Field(1.0, ge=0.2, le=3)
    contrast: float = Field(1.0, ge=0.2, le=3)
    saturation: float = Field(1.0, ge=0.1, le=3)


class PaletteStyle(BaseModel):
    name: str
    image_url: str
    has_vector: bool
    renderer: str = Field("fast", description="the renderer measured to carry this style: renders use it by default")


class Job(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    result_url: str | None = None
    error: str | None = None


class AdminJob(BaseModel):
    id: str
    task: Literal["index", "cf", "ranker"] = Field(description="index rebuild, CF (+ ranker) or ranker retrain")
    status: Literal["queued", "running", "done", "failed"]
    result: dict | None = Field(None, description="once done: the new version(s) and what was trained")
    error: str | None = Field(None, description="once failed: why")
    created: float
    updated: float
    status_url: str


class Health(BaseModel):
    status: Literal["ok"]
    ready: bool
    items: int
    events: int = Field(
        description="events recorded so far: the latest event's id (replaced imports leave gaps; a count would read "
        "the whole table)"
    )
    style_vectors: int
    model_id: str | None
    index_version: str | None = Field(description="the persisted index version served (None: built in memory)")
    index_spec: str | None
    index_device: str | None
    cf_version: str | None = Field(description="the persisted CF model version served")
    cf_users: int
    cf_items: int
    feed_model: Literal["learned", "blend"] = Field(
        description="learned: candidate sources + the LightGBM ranker; blend: the hand-set fallback (no ranker)"
    )
    ranker_version: str | None = Field(description="the persisted feed ranker version served (None: the blend)")
    renders_pending: int
