"""What the service exposes: feeds, similar items, shop this style and preferred styles, over one store.

`Recommender` ties the SQLite store (items, events, styles), the catalog's style vectors, collaborative
filtering and popularity together through the hybrid ranker. New events are folded into CF at once, so a
shopper's feed changes without retraining or a restart.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np
import pandas as pd

from recsys.candidates import ItemInfo, Snapshot
from recsys.cf import CFConfig, CollaborativeFilter
from recsys.hybrid import HybridConfig, HybridRanker, Popularity, Recommendation, StyleSpace, style_profile
from recsys.ranker import Feed, LearnedRanker, RankerConfig
from recsys.store import Store

ImageEmbedder = Callable[[bytes | str | os.PathLike], np.ndarray]


class Recommender:
    """Feeds and style search over a `Store`; `style` may be None (no photos) and CF is trained on demand.

    The feed is the two-stage pipeline of `recsys.ranker` when a trained `LearnedRanker` is given (or trained
    with `train_ranker`), else the hand-set blend of `recsys.hybrid` (`feed_model` says which)."""

    def __init__(
        self,
        store: Store,
        style: StyleSpace | None,
        cf: CollaborativeFilter | None = None,
        config: HybridConfig | None = None,
        embed_image: ImageEmbedder | None = None,
        ranker: LearnedRanker | None = None,
    ) -> None:
        self.store, self.style, self.config = store, style, config or HybridConfig()
        self.embed_image = embed_image
        self.lock = threading.RLock()  # the service holds it while it swaps models or vectors
        interactions = store.interactions()
        self.popularity = Popularity(interactions, self.config.popularity_half_life_days)
        if cf is None and len(interactions):
            cf = CollaborativeFilter(CFConfig()).fit(interactions)
        self.cf = cf
        self.learned = ranker if ranker is not None and ranker.trained else None
        self.snapshot: Snapshot | None = None
        self.refresh_catalog()

    @property
    def feed_model(self) -> str:
        """ "learned" (candidate sources + LightGBM ranker) or "blend" (the hand-set fallback)."""
        return "learned" if self.pipeline is not None else "blend"

    def refresh_catalog(self) -> None:
        """Rebuild the rankers over the store's current items (ids, categories, titles, groups)."""
        items = self.store.items()
        categories = {item["item_id"]: item["category"] for item in items}
        self.ranker = HybridRanker(self.cf, self.style, self.popularity, categories, self.config)
        self.pipeline = None
        if self.learned is None:
            return
        info = ItemInfo(pd.DataFrame(items, columns=["item_id", "title", "category", "attributes"]))
        if self.snapshot is None:
            self.snapshot = Snapshot.build(self.store.interactions(), info, self.style, cf=self.cf, allowed=categories)
        else:
            self.snapshot = self.snapshot.with_catalog(info, categories)
        self.pipeline = Feed(self.snapshot, self.learned)

    def train_ranker(self, config: RankerConfig | None = None) -> LearnedRanker:
        """Train the feed's ranker on windows of the store's events; the feed uses it when it could learn
        (too little data leaves the blend in charge). Returns the ranker (save it with `save(folder)`)."""
        interactions = self.store.interactions()
        items = self.store.items()
        info = ItemInfo(pd.DataFrame(items, columns=["item_id", "title", "category", "attributes"]))
        allowed = {item["item_id"] for item in items}
        ranker = LearnedRanker(config).fit(interactions, info, self.style, allowed=allowed)
        with self.lock:
            self.learned, self.snapshot = (ranker if ranker.trained else None), None
            self.refresh_catalog()
        return ranker

    def retrain(self, cf_config: CFConfig | None = None) -> None:
        """Retrain CF and popularity on every event in the store (and the feed's ranker when it has one)."""
        interactions = self.store.interactions()
        cf = CollaborativeFilter(cf_config or (self.cf.config if self.cf else CFConfig())).fit(interactions)
        with self.lock:
            self.cf, self.popularity = cf, Popularity(interactions, self.config.popularity_half_life_days)
            self.snapshot = None
            self.refresh_catalog()
        if self.learned is not None:
            self.train_ranker(self.learned.config)

    # -- shoppers -------------------------------------------------------------------------------------------
    def history(self, user_id: str) -> pd.DataFrame:
        """A shopper's events, oldest first (empty for a shopper never seen)."""
        return self.store.interactions(user_id)

    def record_event(self, user_id: str, item_id: str, event: str = "purchase", timestamp: float | None = None) -> int:
        """Store an event durably and fold it into the shopper's CF factors; returns the event id."""
        event_id = self.store.add_event(user_id, item_id, event, timestamp)
        if self.cf is not None:
            history = self.history(user_id)
            with self.lock:
                if self.cf.has_user(user_id):
                    self.cf.fold_in(user_id, {item_id: float(history["weight"].iloc[-1])})
                else:
                    self.cf.fold_in(user_id, history.groupby("item_id")["weight"].sum().to_dict())
        return event_id

    def feed(
        self, user_id: str, k: int = 10, categories: set[str] | None = None, alpha: float | None = None
    ) -> list[Recommendation]:
        """The personalised feed, each item with the reason of the source that found it ("buy again",
        "another colour of X", "often bought with X", "same style as X", "trending in ..."); last week's top
        sellers for a shopper we know nothing about. `alpha` (CF against style) asks for the hand-set blend."""
        with self.lock:
            history = self.history(user_id)
            if self.pipeline is None or alpha is not None:
                return self.ranker.rank(user_id, k, history=history, categories=categories, alpha=alpha)
            catalog = self.ranker.categories  # the service drops deleted items here
            allow = {i for i, c in catalog.items() if c in categories} if categories else set(catalog)
            feed = self.pipeline.recommend(user_id, k, history=history, allow=allow)
            if len(feed) < k:  # a narrow category: the blend fills the rest
                shown = {r.item_id for r in feed}
                more = self.ranker.rank(user_id, k, history=history, categories=categories, exclude=shown)
                feed += more[: k - len(feed)]
            return feed

    def similar_items(
        self, item_id: str, k: int = 10, user_id: str | None = None, categories: set[str] | None = None
    ) -> list[Recommendation]:
        """Items in the same style as `item_id`; with `user_id`, re-ranked for that shopper."""
        self.store.item(item_id)  # KeyError for an unknown id
        if self.style is None or item_id not in self.style:
            raise KeyError(f"item {item_id!r} has no style vector (no image, or not embedded yet)")
        return self._by_style(self.style.vector(item_id), k, user_id, categories, exclude={item_id})

    def shop_this_style(
        self,
        image_or_vector: bytes | str | os.PathLike | np.ndarray,
        k: int = 10,
        user_id: str | None = None,
        categories: set[str] | None = None,
    ) -> list[Recommendation]:
        """Items in the style of a photo (bytes or path) or of a style vector."""
        if isinstance(image_or_vector, np.ndarray):
            vector = image_or_vector
        elif self.embed_image is None:
            raise ValueError("this recommender cannot embed photos (no encoder configured)")
        else:
            vector = self.embed_image(image_or_vector)
        if self.style is None:
            raise ValueError("the catalog has no style vectors yet")
        vector = np.asarray(vector, np.float32).ravel()
        if vector.shape != (self.style.vectors.shape[1],):
            raise ValueError(f"a style vector has {self.style.vectors.shape[1]} values, got {vector.shape}")
        return self._by_style(vector, k, user_id, categories)

    def _by_style(self, query, k, user_id, categories, exclude=None) -> list[Recommendation]:
        history = self.history(user_id) if user_id else None
        alpha = 0.3 if user_id else 0.0  # the query's style leads; the shopper's taste re-orders
        if user_id:
            ranker = self.ranker
        else:
            config = self.config.model_copy(update={"filter_seen": False})
            ranker = HybridRanker(None, self.style, self.popularity, self.ranker.categories, config)
        with self.lock:
            return ranker.rank(user_id, k, history=history, query=query, categories=categories, exclude=exclude,
                               alpha=alpha)  # fmt: skip

    def preferred_styles(self, user_id: str, k: int = 3) -> list[dict]:
        """The palette styles nearest to the shopper's style profile, best first, with cosine scores."""
        history = self.history(user_id)
        if self.style is None or history.empty:
            return []
        rows = history[history["item_id"].isin(self.style.row)]
        if rows.empty:
            return []
        vectors = np.stack([self.style.vector(i) for i in rows["item_id"]])
        profile = style_profile(vectors, rows["timestamp"].to_numpy(float), self.config.profile_half_life_days)
        dim = self.style.vectors.shape[1]
        palette = [
            s
            for s in self.store.styles()
            if s["vector"] is not None and s["vector"].shape == (dim,) and s["model_id"] == self.style.model_id
        ]
        scored = [{"name": s["name"], "score": float((profile @ s["vector"]).max())} for s in palette]
        return sorted(scored, key=lambda s: -s["score"])[:k]
