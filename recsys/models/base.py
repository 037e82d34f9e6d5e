"""Ranking models behind one contract: fitted on a shop's snapshot, each ranks items for a shopper.

`RankingModel` is the contract (after implicit's `RecommenderBase`): `fit`, `rank` / `recommend` (one shopper),
`recommend_many` (many), `save` / `load`, with `allow` / `exclude` filters. `recsys.evaluation.evaluate` compares
these models and the service serves the feed through the same `FeedModel` (`recsys.models.feeds`) as the `hybrid` model
here. The models: the classic baselines of fashion recommendation (`repurchase`, `popularity-1w`), the project's earlier
models (`popularity`, `cf`, `style`, `blend`: the hand-set blend of `recsys.models.hybrid`) and the feed (`hybrid`: the
learned pipeline with the blend as its fallback; `hybrid-nostyle` without the style source and features, to measure
what style adds). A model without the data it needs (no style vectors) raises `ValueError` in `fit`.
`tests/model_contract.py` holds the contract's tests, run against every model.
"""

from __future__ import annotations

import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from common.errors import BadInput, NoSuchFile, NothingToTrain
from recsys.candidates import Shopper, Snapshot, repurchase_order
from recsys.candidates.siblings import Siblings
from recsys.models.feeds import FeedModel
from recsys.models.hybrid import HybridConfig, HybridRanker, Popularity, Recommendation
from recsys.models.ranker import LearnedRanker, RankerConfig

MODEL_FILE = "model.json"  # a saved model's name, settings and learned state (`RankingModel.save`)
RANKER_FOLDER = "ranker"  # the learned feed's LightGBM ranker inside a saved model's folder
POPULARITY_HALF_LIFE_DAYS = 30.0
_MODEL_CLASSES: dict[str, type[RankingModel]] = {}


class RankingModel(ABC):
    """The contract every ranking model implements.

    - `fit(snapshot, train)`: learn from a `Snapshot` of the shop and the training events it was built from; no
      events: `ValueError`. Returns the model.
    - `rank(user_id, k, history, allow, exclude)`: at most `k` distinct `Recommendation`s, best first, each with its
      reason; only items of the snapshot's catalog that are in `allow` (when given), never one in `exclude`.
      `history`: the shopper's events (default: their snapshot history). A shopper the model does not know gets
      what it gives a stranger, never an error; `k` = 0 gives [], a negative `k` is a `ValueError`. The same call
      gives the same answer. `recommend`: the ids of `rank`.
    - `recommend_many(user_ids, k, ...)`: `recommend` for many shoppers, equal to one by one (the default loops; a
      model overrides it where batching is cheaper).
    - `save(folder)` / `RankingModel.load(folder, snapshot)`: the snapshot is the shop's data (built from the events
      or read from a `stylerec train` bundle), not the model's: a model saves its settings and what it learned
      beyond the snapshot (`model.json`, and the LightGBM ranker for the feed), and `load` attaches the snapshot it
      was fitted on. A model that learns nothing beyond the snapshot (`repurchase`, `popularity-1w`) saves its name
      and settings only.
    """

    name: ClassVar[str] = ""
    snapshot: Snapshot

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _MODEL_CLASSES[cls.__name__] = cls

    # -- fitting --------------------------------------------------------------------------------------------
    def fit(self, snapshot: Snapshot, train: pd.DataFrame) -> RankingModel:
        """Learn what the model needs from the snapshot (and the raw training events it was built from)."""
        if train is None or len(train) == 0:
            raise NothingToTrain(f"{self.name}: no training events to fit on (the training data is empty)")
        self.snapshot = snapshot
        self._fit(snapshot, train)
        return self

    @abstractmethod
    def _fit(self, snapshot: Snapshot, train: pd.DataFrame) -> None:
        """The model's own fitting (`fit` has checked the data and kept the snapshot)."""

    # -- ranking --------------------------------------------------------------------------------------------
    def rank(
        self,
        user_id: str | None,
        k: int,
        history: pd.DataFrame | None = None,
        allow: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
    ) -> list[Recommendation]:
        """The top-k for a shopper with scores and reasons (see the class docstring for the filters)."""
        if not hasattr(self, "snapshot"):
            raise RuntimeError(f"{self.name}: fit or load the model before ranking")
        if k < 0:
            raise ValueError(f"k is a number of items, at least 0 (got {k})")
        if k == 0:
            return []
        if history is None:
            history = self.snapshot.history(user_id)
        return self._rank(user_id, int(k), history, allow, frozenset(exclude or ()))

    @abstractmethod
    def _rank(
        self,
        user_id: str | None,
        k: int,
        history: pd.DataFrame | None,
        allow: Collection[str] | None,
        exclude: Collection[str],
    ) -> list[Recommendation]:
        """The model's own ranking (`rank` has checked k and looked the history up)."""

    def recommend(
        self,
        user_id: str | None,
        k: int,
        history: pd.DataFrame | None = None,
        allow: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
    ) -> list[str]:
        """The top-k item ids for a shopper, best first (`rank` without the scores and reasons)."""
        return [r.item_id for r in self.rank(user_id, k, history, allow, exclude)]

    def explain(self, user_id: str | None, k: int, history: pd.DataFrame | None = None) -> list[Recommendation]:
        """The top-k with scores and reasons (`rank`)."""
        return self.rank(user_id, k, history)

    def recommend_many(
        self,
        user_ids: Iterable[str],
        k: int,
        histories: Mapping[str, pd.DataFrame] | None = None,
        allow: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
    ) -> dict[str, list[str]]:
        """`recommend` for each shopper (their history in `histories` when given there), as {user: ids}."""
        histories = histories or {}
        return {user: self.recommend(user, k, histories.get(user), allow, exclude) for user in user_ids}

    def _catalog(self, allow: Collection[str] | None) -> Collection[str]:
        """What may be proposed: the snapshot's catalog, within `allow` when given."""
        allowed = self.snapshot.allowed
        return allowed if allow is None else {i for i in allow if i in allowed}

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the model's name, settings and learned state into `folder` (see the class docstring)."""
        if not hasattr(self, "snapshot"):
            raise RuntimeError(f"{self.name}: fit the model before saving it")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"model": type(self).__name__, "name": self.name, "settings": self._settings()}
        meta["state"] = self._state(folder)
        (folder / MODEL_FILE).write_text(json.dumps(meta))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, snapshot: Snapshot) -> RankingModel:
        """A model written by `save`, over the snapshot it was fitted on."""
        folder = Path(folder)
        if not (folder / MODEL_FILE).is_file():
            raise NoSuchFile(f"no saved model in {folder} (no {MODEL_FILE})")
        meta = json.loads((folder / MODEL_FILE).read_text())
        model_cls = _MODEL_CLASSES.get(meta.get("model", ""))
        if model_cls is None or not issubclass(model_cls, cls):
            raise BadInput(f"{folder} holds a {meta.get('model')!r}, not a {cls.__name__}")
        model = model_cls._from_settings(meta.get("settings", {}))
        model.snapshot = snapshot
        model._restore(snapshot, meta.get("state", {}), folder)
        return model

    def _settings(self) -> dict:
        """The constructor's settings (JSON); none by default."""
        return {}

    @classmethod
    def _from_settings(cls, settings: dict) -> RankingModel:
        return cls(**settings)

    def _state(self, folder: Path) -> dict:
        """What the model learned beyond the snapshot (JSON; large parts may go to files in `folder`)."""
        return {}

    def _restore(self, snapshot: Snapshot, state: dict, folder: Path) -> None:
        """Take back what `_state` wrote (nothing by default)."""
        return None


def _popularity_state(popularity: Popularity) -> dict:
    return {"popularity": popularity.scores}


class PopularityModel(RankingModel):
    """Most bought items (purchases halving every 30 days), without what the shopper bought."""

    name = "popularity"

    def _fit(self, snapshot: Snapshot, train: pd.DataFrame) -> None:
        self._use(snapshot, Popularity(train, POPULARITY_HALF_LIFE_DAYS))

    def _use(self, snapshot: Snapshot, popularity: Popularity) -> None:
        self.popularity = popularity
        self.ranked = [i for i in popularity.ranked if i in snapshot.allowed]

    def _rank(self, user_id, k, history, allow, exclude) -> list[Recommendation]:
        seen = set(history["item_id"]) if history is not None else set()
        out = []
        for item in self.ranked:
            if item in seen or item in exclude or (allow is not None and item not in allow):
                continue
            score = self.popularity.scores[item]
            out.append(Recommendation(item, score, "popular right now", popularity=math.log1p(score)))
            if len(out) == k:
                break
        return out

    def _state(self, folder: Path) -> dict:
        return _popularity_state(self.popularity)

    def _restore(self, snapshot: Snapshot, state: dict, folder: Path) -> None:
        self._use(snapshot, Popularity.from_scores(state["popularity"]))


class LastWeekModel(RankingModel):
    """Last week's top sellers, the same for everyone (bought items allowed): Kaggle H&M's first baseline."""

    name = "popularity-1w"

    def _fit(self, snapshot: Snapshot, train: pd.DataFrame) -> None:
        pass  # the snapshot's `trending` is the model

    def _rank(self, user_id, k, history, allow, exclude) -> list[Recommendation]:
        week = self.snapshot.popularity["7d"]
        items = [i for i in self.snapshot.trending if i not in exclude and (allow is None or i in allow)][:k]
        return [Recommendation(i, float(week[i]), "trending now", popularity=math.log1p(week[i])) for i in items]

    def recommend_many(self, user_ids, k, histories=None, allow=None, exclude=None) -> dict[str, list[str]]:
        """The same list for everyone: ranked once."""
        users = list(user_ids)
        if not users:
            return {}
        same = self.recommend(users[0], k, None, allow, exclude)
        return {user: list(same) for user in users}


class RepurchaseModel(RankingModel):
    """The shopper's purchases (most recent first), then other colours of them, then last week's top sellers."""

    name = "repurchase"

    def _fit(self, snapshot: Snapshot, train: pd.DataFrame) -> None:
        pass  # the rule reads the snapshot (histories, variant groups, last week's sales)

    def _rank(self, user_id, k, history, allow, exclude) -> list[Recommendation]:
        shopper = Shopper(self.snapshot, user_id, history)
        # unfiltered: the rule's k; filtered: its list deep enough that the filters leave k when there are k
        depth = k if allow is None and not exclude else max(k, len(self.snapshot.allowed))
        items = [i for i in repurchase_order(self.snapshot, shopper, depth) if i not in exclude]
        items = [i for i in items if allow is None or i in allow][:k]
        bought = set(shopper.items)
        siblings = {c.item_id: c.reason for c in Siblings().generate(self.snapshot, shopper, depth)}
        reasons = ["buy again" if i in bought else siblings.get(i, "trending now") for i in items]
        scores = range(len(items), 0, -1)
        return [Recommendation(i, float(s), r) for i, s, r in zip(items, scores, reasons, strict=True)]


class CFModel(RankingModel):
    """ALS top-k without already-bought items; popularity for shoppers CF does not know."""

    name = "cf"

    def _fit(self, snapshot: Snapshot, train: pd.DataFrame) -> None:
        self.popular = PopularityModel().fit(snapshot, train)

    def _rank(self, user_id, k, history, allow, exclude) -> list[Recommendation]:
        cf = self.snapshot.cf
        if cf is None or user_id is None or not cf.has_user(user_id):
            return self.popular._rank(user_id, k, history, allow, exclude)
        allowed = self._catalog(allow)
        depth = k + 50 + len(exclude) if allow is None else len(cf.item_ids)
        found = [(i, s) for i, s in cf.recommend(user_id, depth) if i in allowed and i not in exclude][:k]
        return [Recommendation(i, s, "shoppers like you bought this", cf=s) for i, s in found]

    def _state(self, folder: Path) -> dict:
        return self.popular._state(folder)

    def _restore(self, snapshot: Snapshot, state: dict, folder: Path) -> None:
        self.popular = PopularityModel()
        self.popular.snapshot = snapshot
        self.popular._restore(snapshot, state, folder)


class BlendModel(RankingModel):
    """The hand-set blend of `recsys.models.hybrid` (CF, style and popularity z-scores, `HybridConfig`)."""

    name = "blend"

    def __init__(self, config: HybridConfig | None = None, use_cf: bool = True, use_style: bool = True) -> None:
        self.config = config or HybridConfig()
        self.use_cf, self.use_style = use_cf, use_style

    def _fit(self, snapshot: Snapshot, train: pd.DataFrame) -> None:
        self._use(snapshot, Popularity(train, POPULARITY_HALF_LIFE_DAYS))

    def _use(self, snapshot: Snapshot, popularity: Popularity) -> None:
        cf = snapshot.cf if self.use_cf else None
        style = snapshot.style if self.use_style else None
        self.ranker = HybridRanker(cf, style, popularity, config=self.config)

    def _rank(self, user_id, k, history, allow, exclude) -> list[Recommendation]:
        return self.ranker.rank(user_id, k, history=history, allow=self._catalog(allow), exclude=exclude)

    def _settings(self) -> dict:
        return {"config": self.config.model_dump(), "use_cf": self.use_cf, "use_style": self.use_style}

    @classmethod
    def _from_settings(cls, settings: dict) -> BlendModel:
        settings = dict(settings)
        config = HybridConfig.model_validate(settings.pop("config"))
        model = cls.__new__(cls)
        BlendModel.__init__(model, config, **settings)
        return model

    def _state(self, folder: Path) -> dict:
        return _popularity_state(self.ranker.popularity)

    def _restore(self, snapshot: Snapshot, state: dict, folder: Path) -> None:
        self._use(snapshot, Popularity.from_scores(state["popularity"]))


class StyleModel(BlendModel):
    """Items nearest the shopper's style profile (the blend at alpha 0), without already-bought items."""

    name = "style"

    def __init__(self) -> None:
        super().__init__(HybridConfig(alpha=0.0), use_cf=False)

    def _fit(self, snapshot: Snapshot, train: pd.DataFrame) -> None:
        if snapshot.style is None:
            raise BadInput("no style vectors: pass --catalog with product images")
        super()._fit(snapshot, train)


class HybridModel(RankingModel):
    """The feed (`recsys.models.feeds.FeedModel`, as the service serves it): candidate sources and a LightGBM ranker
    trained on windows of the training data; the hand-set blend of `recsys.models.hybrid` when there is too little data
    to train (`fallback` says so) and to fill a short list."""

    name = "hybrid"

    def __init__(self, config: RankerConfig | None = None, split: str = "temporal", folds=None) -> None:
        self.config = config or RankerConfig()
        self.split, self.folds = split, folds

    def _fit(self, snapshot: Snapshot, train: pd.DataFrame) -> None:
        ranker = LearnedRanker(self.config).fit(
            train, snapshot.items, snapshot.style, allowed=snapshot.allowed, split=self.split, folds=self.folds
        )
        self._use(snapshot, ranker, Popularity(train, POPULARITY_HALF_LIFE_DAYS))

    def _use(self, snapshot: Snapshot, ranker: LearnedRanker, popularity: Popularity) -> None:
        self.ranker = ranker
        style = snapshot.style if self.config.use_style else None
        config = HybridConfig(filter_seen=not self.config.allow_bought)
        self.feed = FeedModel.build(snapshot, ranker, HybridRanker(snapshot.cf, style, popularity, config=config))

    @property
    def fallback(self) -> str | None:
        """Why the hand-set blend ranks instead of the learned ranker (None: the ranker learned)."""
        return self.feed.fallback

    def _rank(self, user_id, k, history, allow, exclude) -> list[Recommendation]:
        return self.feed.rank(user_id, k, history=history, allow=self._catalog(allow), exclude=exclude)

    def _settings(self) -> dict:
        return {"config": self.config.model_dump(), "split": self.split}

    @classmethod
    def _from_settings(cls, settings: dict) -> HybridModel:
        return cls(RankerConfig.model_validate(settings["config"]), settings.get("split", "temporal"))

    def _state(self, folder: Path) -> dict:
        self.ranker.save(folder / RANKER_FOLDER)
        return _popularity_state(self.feed.blend.popularity)

    def _restore(self, snapshot: Snapshot, state: dict, folder: Path) -> None:
        ranker = LearnedRanker.load(folder / RANKER_FOLDER)
        self._use(snapshot, ranker, Popularity.from_scores(state["popularity"]))


def make_models(names: Sequence[str], config: RankerConfig, split: str, folds=None) -> dict[str, RankingModel]:
    """Unfitted models by name (see module docstring)."""
    makers = {
        "repurchase": RepurchaseModel,
        "popularity-1w": LastWeekModel,
        "popularity": PopularityModel,
        "cf": CFModel,
        "style": StyleModel,
        "blend": BlendModel,
        "hybrid": lambda: HybridModel(config, split, folds),
        "hybrid-nostyle": lambda: HybridModel(config.model_copy(update={"use_style": False}), split, folds),
    }
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise BadInput(f"unknown model(s) {', '.join(unknown)} (choose from {', '.join(makers)})")
    return {n: makers[n]() for n in names}


MODELS = ("repurchase", "popularity-1w", "popularity", "cf", "style", "hybrid", "hybrid-nostyle")
BASELINES = ("repurchase", "popularity-1w", "popularity", "cf")
