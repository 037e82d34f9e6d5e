"""What the service exposes: feeds, similar items, shop this style and preferred styles, over one store.

`Recommender` ties the SQLite store (items, events, styles), the catalog's style vectors, collaborative
filtering and popularity together through the hybrid ranker. New events are folded into CF at once, so a
shopper's feed changes without retraining or a restart.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.batch.bundle import read_popularity, read_snapshot
from recsys.batch.tables import POPULARITY_HALF_LIFE_DAYS
from recsys.candidates import ItemInfo, Snapshot
from recsys.models.cf import CFConfig, CollaborativeFilter
from recsys.models.feeds import FeedModel
from recsys.models.hybrid import HybridConfig, HybridRanker, Popularity, Recommendation, StyleSpace, style_profile
from recsys.models.ranker import Feed, LearnedRanker, RankerConfig
from recsys.store.sqlite import NotFound, Store

ImageEmbedder = Callable[[bytes | str | os.PathLike], np.ndarray]
KEEP = object()  # `use_models`: keep the ranker being served
Facet = str | float | None  # "pattern", "colour", "both" or a pattern weight in [0, 1] (`transfer.facets`)


def _zscores(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 1e-12 else np.zeros_like(values)


class Recommender:
    """Feeds and style search over a `Store`; `style` may be None (no photos) and CF is trained on demand.

    The feed is the two-stage pipeline of `recsys.models.ranker` when a trained `LearnedRanker` is given (or trained
    with `train_ranker`), else the hand-set blend of `recsys.models.hybrid` (`feed_model` says which)."""

    def __init__(
        self,
        store: Store,
        style: StyleSpace | None,
        cf: CollaborativeFilter | None = None,
        config: HybridConfig | None = None,
        embed_image: ImageEmbedder | None = None,
        ranker: LearnedRanker | None = None,
        tables: Path | None = None,
    ) -> None:
        self.store, self.style, self.config = store, style, config or HybridConfig()
        self.embed_image = embed_image
        self.lock = threading.RLock()  # the service holds it while it swaps models or vectors
        self.tables = self._usable(tables)
        if self.tables is not None:  # a `stylerec train` tables version: no events read
            self.popularity = read_popularity(self.tables)
        else:
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
        if self.snapshot is None and self.tables is not None:
            self.snapshot = read_snapshot(self.tables, info, self.style, self.cf, categories)
        elif self.snapshot is None:  # no shopper histories kept: the feed reads them from the store per request
            interactions = self.store.interactions()
            self.snapshot = Snapshot.build(interactions, info, self.style, cf=self.cf, allowed=categories, shoppers=())
        else:
            self.snapshot = self.snapshot.with_catalog(info, categories)
        self.pipeline = Feed(self.snapshot, self.learned)
        self.pipeline.warm()

    def use_ranker(self, ranker: LearnedRanker | None) -> None:
        """Serve the feed with this ranker (loaded or trained elsewhere); None or an untrained one: the blend."""
        with self.lock:
            self.learned, self.snapshot = (ranker if ranker is not None and ranker.trained else None), None
            self.refresh_catalog()

    def train_ranker(self, config: RankerConfig | None = None) -> LearnedRanker:
        """Train the feed's ranker on windows of the store's events; the feed uses it when it could learn
        (too little data leaves the blend in charge). Returns the ranker (save it with `save(folder)`)."""
        interactions = self.store.interactions()
        items = self.store.items()
        info = ItemInfo(pd.DataFrame(items, columns=["item_id", "title", "category", "attributes"]))
        allowed = {item["item_id"] for item in items}
        ranker = LearnedRanker(config).fit(interactions, info, self.style, allowed=allowed)
        self.use_ranker(ranker)
        return ranker

    def retrain(self, cf_config: CFConfig | None = None) -> None:
        """Retrain CF and popularity on every event in the store (and the feed's ranker when it has one)."""
        interactions = self.store.interactions()
        cf = CollaborativeFilter(cf_config or (self.cf.config if self.cf else CFConfig())).fit(interactions)
        self.use_models(self.style, cf)
        if self.learned is not None:
            self.train_ranker(self.learned.config)

    def use_models(
        self,
        style: StyleSpace | None,
        cf: CollaborativeFilter | None,
        events_through: int | None = None,
        tables: Path | None = None,
        ranker: LearnedRanker | object | None = KEEP,
    ) -> None:
        """Swap in other style vectors and CF model (loaded or retrained elsewhere); popularity is recounted
        over the events up to id `events_through` (those the model was trained on; None: all), or read from the
        `tables` version `stylerec train` wrote with that model (`recsys.batch.bundle`); `ranker`: the feed's
        learned ranker to serve with them (default: keep the current one), swapped in with them at once."""
        tables = self._usable(tables)
        popularity = read_popularity(tables) if tables is not None else self.count_popularity(events_through)
        with self.lock:
            self.style, self.cf, self.popularity, self.tables = style, cf, popularity, tables
            if ranker is not KEEP:
                self.learned = ranker if isinstance(ranker, LearnedRanker) and ranker.trained else None
            self.snapshot = None  # the feed's snapshot is rebuilt over the new models
            self.refresh_catalog()

    def _usable(self, tables: Path | None) -> Path | None:
        """`tables` when its counts are the ones this recommender's popularity setting asks for."""
        if tables is None or self.config.popularity_half_life_days != POPULARITY_HALF_LIFE_DAYS:
            return None
        return tables

    def count_popularity(self, events_through: int | None = None) -> Popularity:
        interactions = self.store.interactions()
        if events_through is not None:
            interactions = interactions[interactions["id"] <= events_through]
        return Popularity(interactions, self.config.popularity_half_life_days)

    # -- shoppers -------------------------------------------------------------------------------------------
    def history(self, user_id: str) -> pd.DataFrame:
        """A shopper's events, oldest first (empty for a shopper never seen)."""
        return self.store.interactions(user_id)

    def record_event(
        self,
        user_id: str,
        item_id: str,
        event: str = "purchase",
        timestamp: float | None = None,
        client_event_id: str | None = None,
    ) -> int:
        """Store an event durably and fold the shopper's history into CF; returns the event id (the first
        event's id when `client_event_id` repeats one already stored)."""
        event_id = self.store.add_event(user_id, item_id, event, timestamp, client_event_id=client_event_id)
        self.refresh_users([user_id])
        return event_id

    def refresh_users(self, user_ids: list[str]) -> None:
        """Fold each shopper's whole stored history into CF (their row and factors; idempotent, and the cost
        of their own history, whichever process recorded the events)."""
        if self.cf is None:
            return
        for user_id in user_ids:
            weights = self.store.item_weights(user_id)
            with self.lock:
                self.cf.set_history(user_id, weights)

    @property
    def feed_ranker(self) -> FeedModel:
        """The feed's model over the rankers being served (`recsys.models.feeds.FeedModel`, which decides between the
        learned pipeline and the blend; `stylerec evaluate`'s `hybrid` calls the same)."""
        model = getattr(self, "_feed_ranker", None)
        if model is None or model.learned is not self.pipeline or model.blend is not self.ranker:
            # the catalog mapping itself answers `in` (the service drops deleted items there): no per-request copy
            model = self._feed_ranker = FeedModel(self.pipeline, self.ranker, catalog=self.ranker.categories)
        return model

    def feed(
        self, user_id: str, k: int = 10, categories: set[str] | None = None, alpha: float | None = None
    ) -> list[Recommendation]:
        """The personalised feed, each item with the reason of the source that found it ("buy again",
        "another colour of X", "often bought with X", "same style as X", "trending in ..."); last week's top
        sellers for a shopper we know nothing about. `alpha` (CF against style) asks for the hand-set blend."""
        with self.lock:
            history = self.history(user_id)
            catalog = self.ranker.categories
            allow = {i for i, c in catalog.items() if c in categories} if categories else None
            return self.feed_ranker.rank(user_id, k, history=history, allow=allow, alpha=alpha)

    def similar_items(
        self,
        item_id: str,
        k: int = 10,
        user_id: str | None = None,
        categories: set[str] | None = None,
        facet: Facet = None,
    ) -> list[Recommendation]:
        """Items in the same style as `item_id` (reason "same style as <its title>"); with `user_id`, re-ordered
        for that shopper within the style's nearest (`_by_style`). `facet`: see `_by_style`."""
        item = self.store.item(item_id)  # NotFound for an unknown id
        if self.style is None or item_id not in self.style:
            raise NotFound(f"item {item_id!r} has no style vector (no image, or not embedded yet)")
        reason = f"same style as {item.get('title') or item_id}"
        return self._by_style(self.style.vector(item_id), k, user_id, categories, {item_id}, reason, facet)

    def shop_this_style(
        self,
        image_or_vector: bytes | str | os.PathLike | np.ndarray,
        k: int = 10,
        user_id: str | None = None,
        categories: set[str] | None = None,
        facet: Facet = None,
        reason: str = "same style as your photo",
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
        return self._by_style(vector, k, user_id, categories, set(), reason, facet)

    def _by_style(
        self, query, k: int, user_id, categories, exclude: set[str], reason: str, facet: Facet = None
    ) -> list[Recommendation]:
        """Style first, shopper second: the k + k/6 (at least 2 more) nearest items to the query in style, without
        `exclude` and what the shopper already has; the shopper's CF taste only re-orders those (0.3 of a
        z-score against the style's), so a shopper changes at most a few of the k and never brings in another
        style. `facet`: "pattern", "colour", "both" (default) or a pattern weight in [0, 1]."""
        if isinstance(facet, str) or facet is None:
            query = self.style.weigh(query, facet)
        else:
            query = self.style.weigh(query, pattern=float(facet))
        exclude = set(exclude)
        history = self.history(user_id) if user_id else None
        if history is not None:
            exclude |= set(history["item_id"])
        pool = k + max(2, k // 6) if user_id else k
        with self.lock:
            listed = self._listed(exclude, pool, query) if not categories and history is None else None
            found = listed if listed is not None else self._nearest(query, pool, categories, exclude)
            cf_scores = self._cf_scores(user_id, found) if user_id and found else None
        if cf_scores is not None:
            style = np.array([s for _, s in found])
            order = np.argsort(-(_zscores(style) + 0.3 * _zscores(cf_scores)), kind="stable")
            found = [found[i] for i in order]
        popularity = self.popularity.scores
        return [
            Recommendation(item, score, reason, style=score,
                           popularity=float(np.log1p(popularity[item])) if item in popularity else None)
            for item, score in found[:k]
        ]  # fmt: skip

    def _cf_scores(self, user_id: str, found: list[tuple[str, float]]) -> np.ndarray | None:
        """The shopper's CF scores of the `found` items only (an item CF never saw gets the lowest); None without
        CF or when CF does not know the shopper."""
        if self.cf is None or not self.cf.has_user(user_id):
            return None
        vector = self.cf.user_vector(user_id)
        if vector is None:
            return None
        columns = self.ranker._cf_col  # item id -> CF column, built once per catalog
        rows = [columns.get(item) for item, _ in found]
        known = [r for r in rows if r is not None]
        values = np.full(len(found), np.nan)
        if known:
            scores = self.cf.item_factors[known] @ np.asarray(vector, np.float32)
            values[[i for i, r in enumerate(rows) if r is not None]] = scores
        return np.where(np.isfinite(values), values, np.nanmin(values) if known else 0.0)

    def _listed(self, exclude: set[str], k: int, query: np.ndarray) -> list[tuple[str, float]] | None:
        """`_nearest` of one item's own style (`exclude` is that item alone) from the batch's nearest-item lists
        (`StyleSpace.neighbours`, searched in this very index: the same items, scored by the same inner
        product); None when there are no lists, the query is not one item's, or its list has too few left."""
        style = self.style
        if style.neighbours is None or len(exclude) != 1 or query.ndim != 1:
            return None
        (item,) = exclude
        if item not in style or not np.array_equal(query, style.weigh(style.vector(item))):
            return None
        catalog = self.ranker.categories
        rows = style.listed(item, k, lambda other: not catalog or other in catalog)
        if rows is None:
            return None
        scores = style.vectors[rows] @ query
        return [(style.ids[j], float(s)) for j, s in zip(rows, scores.tolist(), strict=True)]

    def _nearest(self, query, k: int, categories, exclude: set[str]) -> list[tuple[str, float]]:
        """The k catalog items nearest to the query (the index's inner products), without `exclude`, in the
        `categories` when given; asks the index for more when exclusions and deleted items leave too few."""
        catalog = self.ranker.categories
        allow = [i for i, c in catalog.items() if c in categories and i in self.style] if categories else None
        fetch = k + len(exclude)
        while True:
            ids, scores = self.style.index.search(query, fetch, allow=allow)
            found = [
                (i, float(s))
                for i, s in zip(ids[0], scores[0], strict=True)
                if i not in exclude and (not catalog or i in catalog)
            ]
            if len(found) >= k or len(ids[0]) < fetch or fetch >= len(self.style.ids):
                return found[:k]
            fetch = min(4 * fetch, len(self.style.ids))

    def preferred_styles(self, user_id: str, k: int = 3) -> list[dict]:
        """The palette styles the shopper prefers, best first: cosine between their style profile and each style's
        vector, moved at once by their likes and dislikes of renders (`recsys.style.feedback`)."""
        from recsys.style.feedback import blend_scores, latest_feedback

        palette = self.store.styles()
        feedback = latest_feedback(self.store.style_events(user_id))
        return blend_scores(self._history_style_scores(user_id, palette), feedback, {s["name"] for s in palette})[:k]

    def _history_style_scores(self, user_id: str, palette: list[dict]) -> dict[str, float]:
        """Cosine between the shopper's history-derived style profile and each palette style with a vector."""
        history = self.history(user_id)
        if self.style is None or history.empty:
            return {}
        rows = history[history["item_id"].isin(self.style.row)]
        if rows.empty:
            return {}
        vectors = np.stack([self.style.vector(i) for i in rows["item_id"]])
        profile = style_profile(vectors, rows["timestamp"].to_numpy(float), self.config.profile_half_life_days)
        dim = self.style.vectors.shape[1]
        return {  # palette styles are matched on their pattern (their colours are the picture's, not a taste)
            s["name"]: float((profile @ self.style.weigh(s["vector"], "pattern")).max())
            for s in palette
            if s["vector"] is not None and s["vector"].shape == (dim,) and s["model_id"] == self.style.model_id
        }

    def in_style(
        self, style_name: str, user_id: str | None = None, k: int = 10, facet: Facet = "pattern"
    ) -> list[Recommendation]:
        """Catalog items near a palette style's vector (its pattern unless `facet` says otherwise), without what
        the shopper has already bought or seen, re-ordered for them within the style's nearest; reason "in the
        style you liked"."""
        found = [s for s in self.store.styles() if s["name"] == style_name]
        if not found:
            raise NotFound(f"unknown style {style_name!r}")
        vector = found[0]["vector"]
        if self.style is None or vector is None or found[0]["model_id"] != self.style.model_id:
            raise NotFound(f"style {style_name!r} has no style vector from the catalog's embedding model")
        return self.shop_this_style(vector, k, user_id, facet=facet or "pattern", reason="in the style you liked")
