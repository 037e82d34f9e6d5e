"""The learned ranker of the feed: candidates from every source, one feature row each, LightGBM (a bought /
not-bought classifier by default, LambdaRank as an option: `RankerConfig.objective`).

Training carves windows from the interactions it is given (never anything later): for each window the shop is
rebuilt as of the window's start (`Snapshot.build`), candidates are generated for the shoppers who bought in the
window, and a candidate's label is whether they bought it in the window. With too few such shoppers no model is
trained (`LearnedRanker.trained` is False) and callers fall back to the hand-set blend of `recsys.models.hybrid`.

`Feed` is the pipeline a shop serves: sources -> features -> ranker -> top-k with the reason of the source that
found each item ("buy again", "another colour of X", "often bought with X", "same style as X", "trending in ...").
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Container, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from common.errors import NoSuchFile
from recsys.batch.engine import connect
from recsys.batch.windows import WINDOW_END, frame_source, iter_folds
from recsys.candidates import (
    SOURCES,
    CandidateSource,
    ItemInfo,
    Pool,
    Shopper,
    Snapshot,
    generate,
    repurchase_order,
)
from recsys.evaluation.splits import random_split
from recsys.models.cf import CFConfig
from recsys.models.hybrid import DAY, Recommendation, StyleSpace

log = logging.getLogger(__name__)

MODEL_FILE, META_FILE = "ranker.txt", "ranker.json"
RANKER_DIR = "ranker"  # the ranker's folder inside a shop's models folder
STYLE_SOURCES = ("style",)
EXTRA_FEATURES = (
    "repurchase_rank",  # the item's place in the classic rule's list (`repurchase_order`)
    "repeat_share",  # share of the shopper's purchases that repeat an earlier one
    "item_repeat_rate",  # share of the item's buyers who bought it again
    "item_days_since_sale",  # days since anyone last bought the item (sold out, out of season)
    "kind_rank_7d",  # the item's rank among last week's sellers of its product type
    "item_since_visit",  # days between the shopper's purchase of the item and their latest visit
)
REPURCHASE_DEPTH = 40
STYLE_FEATURES = ("style_profile", "style_last", "style_max", "style_neighbour_popularity")


class RankerConfig(BaseModel):
    """How candidates are gathered and how the LightGBM model is trained."""

    model_config = ConfigDict(extra="forbid")

    sources: tuple[str, ...] = tuple(SOURCES)
    candidates: int = Field(40, ge=1, description="candidates taken from each source")
    # measured at H&M's size (BENCHMARKS.md, "Issue 21: load at full size"): CF's top items are best sellers, and
    # scoring all 105k articles per feed was a fifth of its CPU; a catalog this size or smaller is unaffected
    cf_pool: int | None = Field(
        20_000, ge=1, description="CF candidates only among its this many best sellers (None: every item CF knows)"
    )
    use_style: bool = Field(True, description="False: no style source and no style features (style's lift)")
    # measured on train-only H&M windows: within the noise of the LightGBM seed, and they cost the demo shop's
    # planted styles their lift (BENCHMARKS.md, issue 13); kept as an option for larger shops
    repurchase_features: bool = Field(False, description="add EXTRA_FEATURES (the repurchase rule's rank, ...)")
    allow_bought: bool = Field(True, description="already-bought items may be recommended (fashion: yes)")
    new_every: int = Field(
        12, ge=0, description="every n-th feed position shows the best-ranked never-sold candidate (0: none)"
    )
    windows: int = Field(30, ge=1, description="training windows carved from the end of the training data")
    window_days: float = Field(28.0, gt=0, description="length of each training window (its labels)")
    window_step_days: float = Field(14.0, gt=0, description="windows start this far apart (they may overlap)")
    window_new_share: float = Field(
        1.0, ge=0, le=1, description="share of a window's first-sold articles in its catalog (as --keep-new)"
    )
    max_users_per_window: int = Field(1000, ge=1)
    window_cf_iterations: int | None = Field(
        None, ge=1, description="ALS iterations of each training window's CF (None: the served CF's)"
    )
    min_shoppers: int = Field(20, ge=1, description="fewer shoppers with a hit among candidates: no model")
    # chosen on train-only validation (BENCHMARKS.md, issue 13): the binary objective with bagging and L2 beat
    # LambdaRank with the same trees on the H&M windows before the first test window
    objective: Literal["binary", "lambdarank"] = Field("binary", description="pointwise log loss or LambdaRank")
    rounds: int = Field(100, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    leaves: int = Field(7, ge=2)
    min_data_in_leaf: int = Field(100, ge=1)
    bagging: float = Field(0.8, gt=0, le=1, description="share of rows each tree sees (1: no bagging)")
    l2: float = Field(1.0, ge=0, description="L2 regularisation of leaf values")
    seed: int = 42

    def active_sources(self) -> list[CandidateSource]:
        return [
            SOURCES[s](pool=self.cf_pool) if s == "cf" else SOURCES[s]()
            for s in self.sources
            if self.use_style or s not in STYLE_SOURCES
        ]


def feature_names(config: RankerConfig) -> list[str]:
    names = []
    for source in config.sources:
        if config.use_style or source not in STYLE_SOURCES:
            names += [f"{source}_score", f"{source}_rank"]
    names += ["n_sources", "item_bought", "item_days_since", "group_bought", "group_days_since", "kind_share"]
    names += ["section_share"]
    names += ["pop_7d", "pop_30d", "pop_all", "trend", "item_age_days", "price_ratio", "cf_affinity"]
    names += ["user_events", "user_days_since_last"]
    if config.repurchase_features:
        names += list(EXTRA_FEATURES)
    if config.use_style:
        names += list(STYLE_FEATURES)
    return names


def features(snapshot: Snapshot, shopper: Shopper, pool: Pool, config: RankerConfig) -> np.ndarray:
    """One row per pooled candidate, columns as `feature_names(config)`; NaN where a value does not exist."""
    items, info = pool.items, snapshot.items
    nan = math.nan
    now = shopper.now
    item_last: dict[str, float] = {}
    item_count: dict[str, float] = {}
    group_last: dict[str, float] = {}
    group_count: dict[str, float] = {}
    kind_count: dict[str, float] = {}
    section_count: dict[str, float] = {}
    prices = []
    for item, t in zip(shopper.items, shopper.timestamps, strict=False):
        item_last[item] = t
        item_count[item] = item_count.get(item, 0.0) + 1
        group = info.group_of(item)
        if group is not None:
            group_last[group] = t
            group_count[group] = group_count.get(group, 0.0) + 1
        kind = info.kind.get(item)
        if kind:
            kind_count[kind] = kind_count.get(kind, 0.0) + 1
        section = info.section.get(item)
        if section:
            section_count[section] = section_count.get(section, 0.0) + 1
        if item in info.price:
            prices.append(info.price[item])
    usual_price = float(np.mean(prices)) if prices else nan
    n_events = float(len(shopper.items))
    days_since_last = (now - shopper.timestamps.max()) / DAY if len(shopper.timestamps) else nan
    extra = config.repurchase_features
    repeat_share = 1.0 - len(item_count) / n_events if extra and n_events else nan
    rule = repurchase_order(snapshot, shopper, REPURCHASE_DEPTH) if extra else []
    rule_rank = {item: rank for rank, item in enumerate(rule, 1)}

    sources = [s for s in config.sources if config.use_style or s not in STYLE_SOURCES]
    names = feature_names(config)
    m = len(items)
    rows = np.full((m, len(names)), nan)
    # column by column over the pool (one pass per feature, not a Python row per candidate)
    column = {name: at for at, name in enumerate(names)}
    score_column = {source: column[f"{source}_score"] for source in sources}  # its rank is the next column
    at, cols, scores, ranks = [], [], [], []
    found_of = pool.found
    for n, item in enumerate(items):
        for source, (score, rank, _) in found_of[item].items():
            score_at = score_column.get(source)
            if score_at is not None:
                at.append(n)
                cols.append(score_at)
                scores.append(score)
                ranks.append(rank)
    if at:
        at_rows, at_cols = np.array(at), np.array(cols)
        rows[at_rows, at_cols] = scores
        rows[at_rows, at_cols + 1] = ranks
    facts = snapshot.item_facts
    known = [facts.get(item) for item in items]
    for n, fact in enumerate(known):
        if fact is None:
            known[n] = facts[items[n]] = _item_facts(snapshot, items[n])
    group, kind, section, p7, p30, p_all, first, price, cf_col = zip(*known, strict=True) if known else ([],) * 9
    p7, p30 = np.array(p7, float), np.array(p30, float)
    first_sale = np.array([nan if t is None else t for t in first], float)

    def fill(name: str, values) -> None:
        rows[:, column[name]] = values

    fill("n_sources", [len(found_of[item]) for item in items])
    fill("item_bought", [item_count.get(item, 0.0) for item in items])
    fill("item_days_since", (now - np.array([item_last.get(item, nan) for item in items], float)) / DAY)
    fill("group_bought", [group_count.get(g, 0.0) if g is not None else nan for g in group])
    fill("group_days_since", (now - np.array([group_last.get(g, nan) for g in group], float)) / DAY)
    if n_events:
        fill("kind_share", [kind_count.get(k, 0.0) / n_events if k else nan for k in kind])
        fill("section_share", [section_count.get(c, 0.0) / n_events if c else nan for c in section])
    fill("pop_7d", p7)
    fill("pop_30d", p30)
    fill("pop_all", p_all)
    fill("trend", (p7 + 1.0) / (p30 / 4.0 + 1.0))
    fill("item_age_days", (now - first_sale) / DAY)
    if usual_price > 0:
        fill("price_ratio", [p / usual_price if p is not None else nan for p in price])
    fill("user_events", n_events)
    fill("user_days_since_last", days_since_last)
    if extra:
        last_visit = shopper.timestamps.max() if len(shopper.timestamps) else nan
        fill("repurchase_rank", [rule_rank.get(item, nan) for item in items])
        fill("repeat_share", repeat_share)
        fill("item_repeat_rate", [snapshot.repeat_rate.get(item, nan) for item in items])
        fill("item_days_since_sale", (now - np.array([snapshot.last_sale.get(i, nan) for i in items], float)) / DAY)
        fill("kind_rank_7d", [snapshot.kind_rank.get(item, nan) for item in items])
        fill("item_since_visit", (last_visit - np.array([item_last.get(item, nan) for item in items], float)) / DAY)
    cf_rows = [n for n, j in enumerate(cf_col) if j is not None]
    # CF's score of the pooled items only (never the whole catalog)
    cf_scores = shopper.cf_scores_of(np.array([cf_col[n] for n in cf_rows], np.intp)) if cf_rows else None
    if cf_scores is not None:
        rows[cf_rows, column["cf_affinity"]] = cf_scores
    if config.use_style:
        _style_features(snapshot, shopper, items, rows[:, -len(STYLE_FEATURES) :])
    return rows


def _item_facts(snapshot: Snapshot, item: str) -> tuple:
    """What `features` reads of one item, the same for every shopper of the snapshot (`Snapshot.item_facts`):
    group, kind, section, sales in 7 / 30 days / ever, first sale, usual price, CF column."""
    info, popularity = snapshot.items, snapshot.popularity
    return (
        info.group_of(item),
        info.kind.get(item),
        info.section.get(item),
        popularity["7d"].get(item, 0.0),
        popularity["30d"].get(item, 0.0),
        popularity["all"].get(item, 0.0),
        snapshot.first_sale.get(item),
        info.price.get(item),
        snapshot.cf_col.get(item),
    )


def _style_features(snapshot: Snapshot, shopper: Shopper, items: Sequence[str], out: np.ndarray) -> None:
    style = snapshot.style
    if style is None:
        return
    for n, item in enumerate(items):
        out[n, 3] = snapshot.style_neighbour_popularity.get(item, math.nan)
    _, vectors, profile = shopper.styled
    if vectors is None:
        return
    rows = [n for n, item in enumerate(items) if item in style]
    if not rows:
        return
    candidates = style.vectors_of(items[n] for n in rows)
    similarity = candidates @ vectors.T  # history ordered most recent first
    out[rows, 0] = (candidates @ profile.T).max(axis=1)
    out[rows, 1] = similarity[:, :5].max(axis=1)
    out[rows, 2] = similarity.max(axis=1)


# -- training ---------------------------------------------------------------------------------------------
def training_windows(
    interactions: pd.DataFrame, window_days: float, windows: int, step_days: float | None = None
) -> list[tuple[float, float]]:
    """(start, end) of `windows` windows of `window_days`, `step_days` apart (default: back to back), the first
    ending with the last event of `interactions`, latest first. A window's features come from the events before
    its start, its labels from the events inside it; nothing after the last event is ever used."""
    if len(interactions) == 0:
        return []
    first, last = float(interactions["timestamp"].min()), float(interactions["timestamp"].max())
    return training_windows_between(first, last, window_days, windows, step_days)


def training_windows_between(
    first: float, last: float, window_days: float, windows: int, step_days: float | None = None
) -> list[tuple[float, float]]:
    """`training_windows` of events from `first` to `last` (their earliest and latest timestamps)."""
    end = float(last) + 1.0
    step = (step_days or window_days) * DAY
    out = []
    for n in range(windows):
        stop = end - n * step
        start = stop - window_days * DAY
        if start <= first:
            break
        out.append((start, stop))
    return out


def training_folds(
    interactions: pd.DataFrame,
    items: ItemInfo,
    style: StyleSpace | None,
    config: RankerConfig,
    cf_config: CFConfig | None = None,
    allowed: set[str] | None = None,
    split: str = "temporal",
) -> list[tuple[Snapshot, pd.DataFrame]]:
    """(the shop as of a window's start, the purchases inside the window) for each training window carved from
    `interactions` (`training_windows`); for random splits, where time means nothing, one random hold-out."""
    return list(iter_training_folds(interactions, items, style, config, cf_config, allowed, split))


def iter_training_folds(
    interactions: pd.DataFrame,
    items: ItemInfo,
    style: StyleSpace | None,
    config: RankerConfig,
    cf_config: CFConfig | None = None,
    allowed: set[str] | None = None,
    split: str = "temporal",
    sampled_histories: bool = False,
) -> Iterator[tuple[Snapshot, pd.DataFrame]]:
    """`training_folds` one window at a time (a window's snapshot is built when the previous one was used);
    `sampled_histories`: a window's snapshot keeps the histories, and its labels the purchases, of the shoppers
    the ranker learns from only (`window_shoppers`), not every shopper's. Built by DuckDB over the frame, as
    `stylerec train` builds them over its Parquet export (`recsys.batch.windows.iter_folds`)."""
    if split == "temporal":
        con = connect()
        try:  # the same window builder `stylerec train` runs over its Parquet export
            source = frame_source(con, interactions)
            folds = iter_folds(con, source, items, style, config, cf_config, allowed, sampled_histories)
            for snapshot, labels in folds:
                rows = interactions.iloc[np.sort(labels.index.to_numpy())]  # the frame's own rows of the window
                rows.attrs[WINDOW_END] = labels.attrs[WINDOW_END]
                yield snapshot, rows
        finally:
            con.close()
    else:
        past, held_out = random_split(interactions, 0.25, config.seed + 1)
        if len(past) and len(held_out):
            yield Snapshot.build(past, items, style, cf_config=cf_config, allowed=allowed), held_out


def train_booster(x: np.ndarray, y: np.ndarray, groups: list[int], names: list[str], config: RankerConfig):
    """A LightGBM booster on feature rows `x` (columns `names`), labels `y`, one group per shopper."""
    import lightgbm as lgb

    c = config
    params = {
        "objective": c.objective,
        "learning_rate": c.learning_rate,
        "num_leaves": c.leaves,
        "min_data_in_leaf": c.min_data_in_leaf,
        "feature_fraction": 0.9,
        "bagging_fraction": c.bagging,
        "bagging_freq": 1 if c.bagging < 1 else 0,
        "lambda_l2": c.l2,
        "lambdarank_truncation_level": 20,
        "num_threads": 2,
        "deterministic": True,
        "force_row_wise": True,
        "seed": c.seed,
        "verbose": -1,
    }
    return lgb.train(params, lgb.Dataset(x, y, group=groups, feature_name=names), num_boost_round=c.rounds)


def window_shoppers(users, config: RankerConfig) -> list[str]:
    """The shoppers of a training window the ranker learns from: all of them, or a seeded sample of
    `max_users_per_window`."""
    users = sorted(users)
    if len(users) > config.max_users_per_window:
        rng = np.random.default_rng(config.seed)
        users = sorted(rng.choice(users, config.max_users_per_window, replace=False))
    return users


class LearnedRanker:
    """LightGBM over candidate features (`RankerConfig.objective`); `fit`, `score`, `save(folder)`, `load(folder)`."""

    def __init__(self, config: RankerConfig | None = None) -> None:
        self.config = config or RankerConfig()
        self.booster = None
        self.windows: list[tuple[float, float]] = []
        self.training: dict[str, float] = {}

    @property
    def trained(self) -> bool:
        return self.booster is not None

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.config)

    def fit(
        self,
        interactions: pd.DataFrame | None,
        items: ItemInfo,
        style: StyleSpace | None = None,
        cf_config: CFConfig | None = None,
        allowed: set[str] | None = None,
        split: str = "temporal",
        folds: Iterable[tuple[Snapshot, pd.DataFrame]] | None = None,
        progress: bool = False,
    ) -> LearnedRanker:
        """Train on windows carved from `interactions` (see `training_folds`; pass `folds` to reuse them, or to
        train out of core: `recsys.batch.windows.iter_folds`, then `interactions` may be None), built one at a
        time; leaves the ranker untrained when there is too little data. `progress`: a bar per window and one
        over each window's shoppers."""
        c = self.config
        if folds is None:  # one window at a time: only the current window's snapshot is alive
            folds = iter_training_folds(interactions, items, style, c, cf_config, allowed, split, True)
        self.windows = []
        matrices, labels, groups = [], [], []
        n_folds = 0
        bar = tqdm(folds, desc="ranker windows", unit="window", total=c.windows if split == "temporal" else 1,
                   disable=not progress)  # fmt: skip
        for snapshot, bought in bar:
            if split == "temporal":
                end = bought.attrs.get(WINDOW_END, float(bought["timestamp"].max()) + 1.0)
                self.windows.append((snapshot.now, end))
            x, y, g = self._examples(snapshot, bought, progress)
            matrices.append(x)
            labels.append(y)
            groups += g
            n_folds += 1
            del snapshot, bought
        self.training = {"shoppers": len(groups), "rows": int(sum(groups)), "folds": n_folds}
        if len(groups) < c.min_shoppers:
            log.warning("only %d shoppers to learn from (< %d): no learned ranker", len(groups), c.min_shoppers)
            self.booster = None
            return self
        self.booster = train_booster(np.vstack(matrices), np.concatenate(labels), groups, self.feature_names, c)
        self.training["positives"] = int(np.concatenate(labels).sum())
        return self

    def _examples(
        self, snapshot: Snapshot, bought: pd.DataFrame, progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Feature rows, labels and group sizes of the shoppers of one window that have a hit among candidates."""
        c = self.config
        sources = c.active_sources()
        relevant = bought.groupby("user_id")["item_id"].agg(set)
        xs, ys, groups = [], [], []
        users = window_shoppers(relevant.index, c)
        for user in tqdm(users, desc="window shoppers", unit="shopper", leave=False, disable=not progress):
            shopper = Shopper(snapshot, user)
            exclude = None if c.allow_bought else set(shopper.items)
            pool = generate(snapshot, shopper, sources, c.candidates, exclude)
            y = np.array([item in relevant[user] for item in pool.items], float)
            if 0 < y.sum() < len(y):
                xs.append(features(snapshot, shopper, pool, c))
                ys.append(y)
                groups.append(len(y))
        width = len(self.feature_names)
        return (np.vstack(xs) if xs else np.zeros((0, width))), (np.concatenate(ys) if ys else np.zeros(0)), groups

    def score(self, x: np.ndarray) -> np.ndarray:
        """Model scores of feature rows (higher = more likely bought)."""
        if self.booster is None:
            raise RuntimeError("the ranker is not trained (too little data): use the blend")
        return self.booster.predict(x, num_threads=1)

    def importance(self) -> dict[str, float]:
        """Total gain per feature, largest first."""
        if self.booster is None:
            return {}
        gains = self.booster.feature_importance("gain")
        return dict(sorted(zip(self.feature_names, map(float, gains), strict=True), key=lambda kv: -kv[1]))

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> None:
        """Write the config, the training summary and (when trained) the LightGBM model into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"config": self.config.model_dump(), "windows": self.windows, "training": self.training}
        (folder / META_FILE).write_text(json.dumps(meta, indent=1))
        if self.booster is not None:
            self.booster.save_model(str(folder / MODEL_FILE))
        else:
            (folder / MODEL_FILE).unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> LearnedRanker:
        """Read a folder written by `save`."""
        folder = Path(folder)
        if not (folder / META_FILE).is_file():
            raise NoSuchFile(f"no ranker in {folder}")
        meta = json.loads((folder / META_FILE).read_text())
        ranker = cls(RankerConfig.model_validate(meta["config"]))
        ranker.windows = [tuple(w) for w in meta["windows"]]
        ranker.training = meta["training"]
        if (folder / MODEL_FILE).is_file():
            import lightgbm as lgb

            ranker.booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
        return ranker


class Feed:
    """The served pipeline over one snapshot: candidates, features, the learned ranker, reasons."""

    def __init__(self, snapshot: Snapshot, ranker: LearnedRanker) -> None:
        if not ranker.trained:
            raise ValueError("the ranker is not trained (too little data): use the blend")
        self.snapshot, self.ranker = snapshot, ranker
        self.sources = ranker.config.active_sources()

    def warm(self) -> None:
        """Compute every allowed item's facts for the features now (`Snapshot.item_facts`, bounded by the
        catalog): a web worker does it when it opens the shop, so that its first feeds do not."""
        facts, snapshot = self.snapshot.item_facts, self.snapshot
        for item in snapshot.allowed:
            if item not in facts:
                facts[item] = _item_facts(snapshot, item)

    def pool(self, user_id: str | None, history: pd.DataFrame | None = None, exclude: set[str] | None = None):
        """(shopper, candidate pool) for a shopper (their `history` if given, else the snapshot's)."""
        shopper = Shopper(self.snapshot, user_id, history)
        exclude = set(exclude or ())
        if not self.ranker.config.allow_bought:
            exclude |= set(shopper.items)
        return shopper, generate(self.snapshot, shopper, self.sources, self.ranker.config.candidates, exclude)

    def recommend(
        self,
        user_id: str | None,
        k: int = 10,
        history: pd.DataFrame | None = None,
        exclude: set[str] | None = None,
        allow: Container[str] | None = None,
    ) -> list[Recommendation]:
        """The top-k for a shopper, each with the reason of the source that found it (only items `in` allow)."""
        shopper, pool = self.pool(user_id, history, exclude)
        if allow is not None:
            pool = _restrict(pool, allow)
        if not pool.items:
            return []
        x = features(self.snapshot, shopper, pool, self.ranker.config)
        scores = self.ranker.score(x)
        order = self._with_new_items(np.argsort(-scores, kind="stable"), pool, k)
        names = self.ranker.feature_names
        cf_col, pop_col = names.index("cf_affinity"), names.index("pop_30d")
        style_col = names.index("style_profile") if "style_profile" in names else None
        out = []
        for n in order:
            item = pool.items[n]
            style = x[n, style_col] if style_col is not None else math.nan
            out.append(
                Recommendation(
                    item,
                    float(scores[n]),
                    pool.reason(item),
                    cf=None if math.isnan(x[n, cf_col]) else float(x[n, cf_col]),
                    style=None if math.isnan(style) else float(style),
                    popularity=float(np.log1p(x[n, pop_col])),
                )
            )
        return out

    def _with_new_items(self, order: np.ndarray, pool: Pool, k: int) -> list[int]:
        """The top-k of `order`, with at least one candidate nobody has bought yet in every `new_every` positions
        when there is one (the ranker, taught by past sales, would otherwise hardly ever show a new article; the
        style source and siblings bring them in): a block without one ends with the best-ranked of them."""
        every = self.ranker.config.new_every
        sold = self.snapshot.popularity["all"]
        is_new = [pool.items[n] not in sold for n in order]
        if not every or not any(is_new):
            return list(order[:k])
        used = [False] * len(order)
        out: list[int] = []
        block_has_new = False
        for position in range(1, min(k, len(order)) + 1):
            if position % every == 0 and not block_has_new:
                pick = next((j for j in range(len(order)) if is_new[j] and not used[j]), None)
            else:
                pick = None
            if pick is None:
                pick = next(j for j in range(len(order)) if not used[j])
            used[pick] = True
            out.append(int(order[pick]))
            block_has_new = (block_has_new or is_new[pick]) and position % every != 0
        return out


def _restrict(pool: Pool, allow: Container[str]) -> Pool:
    kept = Pool()
    for item in pool.items:
        if item in allow:
            kept.items.append(item)
            kept.found[item] = pool.found[item]
    return kept
