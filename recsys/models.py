"""Ranking models behind one interface: fitted on a shop's snapshot, each ranks items for a shopper.

`RankingModel` is what `recsys.evaluate` compares and what a shop could serve: the classic baselines of fashion
recommendation (`repurchase`, `popularity-1w`), the project's earlier models (`popularity`, `cf`, `style`) and
the feed's learned pipeline (`hybrid`, and `hybrid-nostyle` without the style source and features, to measure
what style adds). A model without the data it needs (no style vectors) raises `ValueError` in `fit`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import pandas as pd

from recsys.candidates import Shopper, Snapshot, repurchase_order
from recsys.hybrid import HybridConfig, HybridRanker, Popularity, Recommendation
from recsys.ranker import Feed, LearnedRanker, RankerConfig


class RankingModel(ABC):
    """Fit on a `Snapshot` of the training data, then `recommend` item ids for a shopper, best first."""

    name: str = ""

    @abstractmethod
    def fit(self, snapshot: Snapshot, train: pd.DataFrame) -> RankingModel:
        """Learn what the model needs from the snapshot (and the raw training events it was built from)."""

    @abstractmethod
    def recommend(self, user_id: str, k: int, history: pd.DataFrame | None = None) -> list[str]:
        """The top-k item ids for a shopper (their snapshot history unless `history` is given)."""

    def _history_items(self, user_id: str, history: pd.DataFrame | None) -> set[str]:
        history = history if history is not None else self.snapshot.history(user_id)
        return set(history["item_id"]) if history is not None else set()


class PopularityModel(RankingModel):
    """Most bought items (purchases halving every 30 days), without what the shopper bought."""

    name = "popularity"

    def fit(self, snapshot: Snapshot, train: pd.DataFrame) -> PopularityModel:
        self.snapshot = snapshot
        self.ranked = [i for i in Popularity(train, 30.0).ranked if i in snapshot.allowed]
        return self

    def recommend(self, user_id: str, k: int, history: pd.DataFrame | None = None) -> list[str]:
        seen = self._history_items(user_id, history)
        return [i for i in self.ranked if i not in seen][:k]


class LastWeekModel(RankingModel):
    """Last week's top sellers, the same for everyone (bought items allowed): Kaggle H&M's first baseline."""

    name = "popularity-1w"

    def fit(self, snapshot: Snapshot, train: pd.DataFrame) -> LastWeekModel:
        self.snapshot = snapshot
        return self

    def recommend(self, user_id: str, k: int, history: pd.DataFrame | None = None) -> list[str]:
        return self.snapshot.trending[:k]


class RepurchaseModel(RankingModel):
    """The shopper's purchases (most recent first), then other colours of them, then last week's top sellers."""

    name = "repurchase"

    def fit(self, snapshot: Snapshot, train: pd.DataFrame) -> RepurchaseModel:
        self.snapshot = snapshot
        return self

    def recommend(self, user_id: str, k: int, history: pd.DataFrame | None = None) -> list[str]:
        return repurchase_order(self.snapshot, Shopper(self.snapshot, user_id, history), k)


class CFModel(RankingModel):
    """ALS top-k without already-bought items; popularity for shoppers CF does not know."""

    name = "cf"

    def fit(self, snapshot: Snapshot, train: pd.DataFrame) -> CFModel:
        self.snapshot, self.popular = snapshot, PopularityModel().fit(snapshot, train)
        return self

    def recommend(self, user_id: str, k: int, history: pd.DataFrame | None = None) -> list[str]:
        cf = self.snapshot.cf
        if cf is None or not cf.has_user(user_id):
            return self.popular.recommend(user_id, k, history)
        allowed = self.snapshot.allowed
        return [i for i, _ in cf.recommend(user_id, k + 50) if i in allowed][:k]


class StyleModel(RankingModel):
    """Items nearest the shopper's style profile (the blend at alpha 0), without already-bought items."""

    name = "style"

    def fit(self, snapshot: Snapshot, train: pd.DataFrame) -> StyleModel:
        if snapshot.style is None:
            raise ValueError("no style vectors: pass --catalog with product images")
        self.snapshot = snapshot
        self.ranker = HybridRanker(None, snapshot.style, Popularity(train, 30.0), config=HybridConfig(alpha=0.0))
        return self

    def recommend(self, user_id: str, k: int, history: pd.DataFrame | None = None) -> list[str]:
        history = history if history is not None else self.snapshot.history(user_id)
        allow = self.snapshot.allowed
        return [r.item_id for r in self.ranker.rank(user_id, k, history=history, allow=allow)]


class HybridModel(RankingModel):
    """The feed: candidate sources, a LightGBM ranker trained on windows of the training data; the hand-set
    blend of `recsys.hybrid` when there is too little data to train (`fallback` says so)."""

    name = "hybrid"

    def __init__(self, config: RankerConfig | None = None, split: str = "temporal", folds=None) -> None:
        self.config = config or RankerConfig()
        self.split, self.folds = split, folds
        self.fallback: str | None = None

    def fit(self, snapshot: Snapshot, train: pd.DataFrame) -> HybridModel:
        self.snapshot = snapshot
        self.ranker = LearnedRanker(self.config).fit(
            train, snapshot.items, snapshot.style, allowed=snapshot.allowed, split=self.split, folds=self.folds
        )
        if self.ranker.trained:
            self.feed = Feed(snapshot, self.ranker)
        else:
            self.fallback = f"too little data to learn from ({self.ranker.training}): the hand-set blend ranks"
            cf = snapshot.cf
            style = snapshot.style if self.config.use_style else None
            config = HybridConfig(filter_seen=not self.config.allow_bought)
            self.blend = HybridRanker(cf, style, Popularity(train, 30.0), config=config)
        return self

    def recommend(self, user_id: str, k: int, history: pd.DataFrame | None = None) -> list[str]:
        return [r.item_id for r in self.explain(user_id, k, history)]

    def explain(self, user_id: str, k: int, history: pd.DataFrame | None = None) -> list[Recommendation]:
        """The top-k with scores and reasons."""
        if self.fallback is None:
            return self.feed.recommend(user_id, k, history)
        history = history if history is not None else self.snapshot.history(user_id)
        return self.blend.rank(user_id, k, history=history, allow=self.snapshot.allowed)


def make_models(names: Sequence[str], config: RankerConfig, split: str, folds=None) -> dict[str, RankingModel]:
    """Unfitted models by name (see module docstring)."""
    makers = {
        "repurchase": RepurchaseModel,
        "popularity-1w": LastWeekModel,
        "popularity": PopularityModel,
        "cf": CFModel,
        "style": StyleModel,
        "hybrid": lambda: HybridModel(config, split, folds),
        "hybrid-nostyle": lambda: HybridModel(config.model_copy(update={"use_style": False}), split, folds),
    }
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)} (choose from {', '.join(makers)})")
    return {n: makers[n]() for n in names}


MODELS = ("repurchase", "popularity-1w", "popularity", "cf", "style", "hybrid", "hybrid-nostyle")
BASELINES = ("repurchase", "popularity-1w", "popularity", "cf")
