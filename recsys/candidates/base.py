"""What every candidate source shares: the catalog's item facts, a snapshot of the shop at one time, a shopper.

A `Snapshot` holds everything the sources and the ranker's features know at time `now`, computed from the
interactions before it only (popularity windows, co-purchases, first sales, collaborative filtering), so that the
same code serves a live shop (now = the latest event) and the ranker's training windows (now = a cutoff in the
past) without leaking the future. A `Shopper` is one shopper's history as of `now`, with the per-request values
several sources need (CF scores, style vectors) computed once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from recsys.models.cf import CFConfig, CollaborativeFilter
from recsys.models.hybrid import DAY, StyleSpace, style_profile

GROUP_COLUMNS = ("group", "product_code")  # items.csv's `group`; H&M's product code (colours of one garment)
KIND_COLUMNS = ("product_type_name", "kind")  # the finest product type a catalog has; else its category
SECTION_COLUMNS = ("section_name", "index_name", "department")  # who a garment is for (H&M: "Womens Casual")


@dataclass(frozen=True)
class Candidate:
    """One item a source proposes for a shopper, with the source's score (higher is better) and a reason."""

    item_id: str
    score: float
    reason: str


class CandidateSource(ABC):
    """A way of finding items a shopper may buy next."""

    name: str = ""

    @abstractmethod
    def generate(self, snapshot: Snapshot, shopper: Shopper, n: int) -> list[Candidate]:
        """At most `n` candidates, best first; only items the snapshot allows."""


class ItemInfo:
    """Facts about items: title, product type (`kind`), variant group, section (who it is for) and usual price;
    any of them may be unknown.

    Groups come from a catalog's `group` column (H&M: `product_code`). When every catalog item's group is the
    start of its id (as H&M's article ids are built), the same rule groups items the catalog lacks."""

    def __init__(self, catalog: pd.DataFrame | None = None, prices: Mapping[str, float] | None = None) -> None:
        self.title: dict[str, str] = {}
        self.kind: dict[str, str] = {}
        self.group: dict[str, str] = {}
        self.section: dict[str, str] = {}
        self.price: dict[str, float] = dict(prices or {})
        if catalog is not None and len(catalog):
            for item, title, category, attributes in zip(
                catalog["item_id"], catalog["title"], catalog["category"], catalog["attributes"], strict=False
            ):
                attributes = attributes or {}
                self.title[item] = str(title)
                kind = next((attributes[c] for c in KIND_COLUMNS if attributes.get(c)), None) or category
                if kind:
                    self.kind[item] = str(kind)
                group = next((str(attributes[c]) for c in GROUP_COLUMNS if attributes.get(c)), None)
                if group:
                    self.group[item] = group
                section = next((str(attributes[c]) for c in SECTION_COLUMNS if attributes.get(c)), None)
                if section:
                    self.section[item] = section
        self._prefix = self._group_prefix_length()
        self._group_cache: dict[str, str | None] = {}

    def _group_prefix_length(self) -> int | None:
        if not self.group:
            return None
        width = {len(g.zfill(7)) for g in self.group.values()}
        if len(width) != 1:
            return None
        n = width.pop()
        if all(item[:n] == g.zfill(n) for item, g in self.group.items()):
            return n
        return None

    def group_of(self, item: str) -> str | None:
        """The item's variant group, or None when unknown."""
        if item in self._group_cache:
            return self._group_cache[item]
        group = self._find_group(item)
        self._group_cache[item] = group
        return group

    def _find_group(self, item: str) -> str | None:
        group = self.group.get(item)
        if group is not None:
            return group.zfill(self._prefix) if self._prefix else group
        return item[: self._prefix] if self._prefix and len(item) > self._prefix else None

    def name(self, item: str) -> str:
        """A short human name for reasons: the title, else the id."""
        return self.title.get(item) or item

    @classmethod
    def from_data(cls, catalog: pd.DataFrame | None, interactions: pd.DataFrame) -> ItemInfo:
        """Item facts from a catalog table (`recsys.store.data_io.read_catalog`) and mean prices paid, when known."""
        prices = None
        if "price" in interactions and interactions["price"].notna().any():
            prices = interactions.dropna(subset=["price"]).groupby("item_id")["price"].mean().to_dict()
        return cls(catalog, prices)


@dataclass
class Snapshot:
    """The shop as of `now` (see module docstring). Build with `Snapshot.build`."""

    now: float
    items: ItemInfo
    style: StyleSpace | None
    cf: CollaborativeFilter | None
    allowed: set[str]
    histories: dict[str, pd.DataFrame]
    popularity: dict[str, dict[str, float]]  # "7d", "30d", "all" -> item -> purchases
    first_sale: dict[str, float]
    trending: list[str]  # last week's top sellers, best first
    trending_by_kind: dict[str, list[str]]
    group_members: dict[str, list[str]]
    # item -> [(other item, co-purchases within the window)]; a served worker's maps arrays (`recsys.batch.served`)
    co_bought: Mapping[str, list[tuple[str, float]]]
    style_neighbour_popularity: dict[str, float] = field(default_factory=dict)
    last_sale: dict[str, float] = field(default_factory=dict)
    repeat_rate: dict[str, float] = field(default_factory=dict)  # item -> share of its buyers who bought it again
    kind_rank: dict[str, int] = field(default_factory=dict)  # item -> rank among last week's sellers of its kind

    @classmethod
    def build(
        cls,
        interactions: pd.DataFrame,
        items: ItemInfo,
        style: StyleSpace | None = None,
        now: float | None = None,
        cf: CollaborativeFilter | None = None,
        cf_config: CFConfig | None = None,
        allowed: Iterable[str] | None = None,
        together_days: float = 7.0,
        shoppers: Iterable[str] | None = None,
    ) -> Snapshot:
        """The shop as of `now` (default: the latest event) from `interactions` before it; `cf` is trained on
        them unless given; `allowed` (default: the catalog's and every bought item) limits what may be proposed;
        `shoppers`: keep only these shoppers' histories (default: everyone's)."""
        from recsys.batch.engine import connect
        from recsys.batch.windows import frame_source, snapshot_at

        if now is None:
            now = float(interactions["timestamp"].max()) + 1.0 if len(interactions) else 0.0
        con = connect()
        try:  # the same queries `stylerec train` runs over its Parquet export (one way to build a snapshot)
            source = frame_source(con, interactions)
            return snapshot_at(con, source, now, items, style, cf, cf_config, allowed, together_days, shoppers)
        finally:
            con.close()

    def with_catalog(self, items: ItemInfo, allowed: Iterable[str]) -> Snapshot:
        """The same snapshot over a changed catalog (item facts, what may be proposed); cheap, no retraining."""
        allowed = set(allowed)
        week = [i for i in self.popularity["7d"] if i in allowed]  # most sold first
        by_kind: dict[str, list[str]] = {}
        for item in week:
            kind = items.kind.get(item)
            if kind:
                by_kind.setdefault(kind, []).append(item)
        kind_rank = {item: rank for ranked in by_kind.values() for rank, item in enumerate(ranked, 1)}
        members: dict[str, list[str]] = {}
        for item in sorted(allowed):
            group = items.group_of(item)
            if group is not None:
                members.setdefault(group, []).append(item)
        return replace(
            self,
            items=items,
            allowed=allowed,
            trending=week,
            trending_by_kind=by_kind,
            kind_rank=kind_rank,
            group_members=members,
        )

    def history(self, user_id: str | None) -> pd.DataFrame | None:
        return self.histories.get(user_id) if user_id is not None else None

    @cached_property
    def item_facts(self) -> dict[str, tuple]:
        """Per-item values the ranker's features read for every candidate, filled on first use
        (`recsys.models.ranker.features`): one lookup per candidate instead of a dozen; bounded by the catalog."""
        return {}

    def cf_best_sellers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(CF columns, their factors, contiguous) of the `n` items CF knows that sold most in the last 30 days,
        then ever (ties in the tables' order), built once per snapshot and size."""
        found = self.__dict__.setdefault("_cf_best_sellers", {})
        if n not in found:
            col = self.cf_col
            ranked = dict.fromkeys(i for i in (*self.popularity["30d"], *self.popularity["all"]) if i in col)
            columns = np.fromiter((col[i] for i in ranked), np.intp)[:n]
            if len(columns) < n:  # never sold: in CF's column order
                rest = np.setdiff1d(np.arange(len(col)), columns, assume_unique=True)
                columns = np.concatenate([columns, rest[: n - len(columns)]])
            found[n] = columns, np.ascontiguousarray(self.cf.item_factors[columns])
        return found[n]

    @cached_property
    def cf_col(self) -> dict[str, int]:
        """CF's column of each item it knows."""
        return {} if self.cf is None else {item: j for j, item in enumerate(self.cf.item_ids)}


def _co_purchases(
    past: pd.DataFrame, days: float, keep: int = 30, max_per_shopper: int = 500
) -> dict[str, list[tuple[str, float]]]:
    """For each item, the items the same shoppers bought within `days` of it, most often first: the grouped count
    of `recsys.batch.tables.co_purchases`. Only each shopper's latest `max_per_shopper` purchases count: the
    pairing is quadratic per shopper, and one bot-like shopper with thousands of events would otherwise dominate
    the cost (H&M's busiest has 344)."""
    from recsys.batch.tables import co_purchases

    return co_purchases(past, days, keep, max_per_shopper)


def _style_neighbour_popularity(
    style: StyleSpace | None, popularity: dict[str, float], k: int = 10
) -> dict[str, float]:
    """Each item's mean recent popularity of its `k` nearest style neighbours (how well its look sells), from the
    style index's k nearest (approximate for an IVF index; the batch's lists `StyleSpace.neighbours` when the
    space has them, else a batched search): never all pairs."""
    if style is None or len(style.ids) < 2:
        return {}
    k = min(k, len(style.ids) - 1)
    lists = style.neighbours
    rows = lists[:, :k] if lists is not None and lists.shape[1] >= k else style.nearest_rows(k)
    sold = np.array([popularity.get(i, 0.0) for i in style.ids] + [0.0])  # row -1 (no neighbour) sells nothing
    means = sold[rows].sum(axis=1) / k
    return dict(zip(style.ids, means.tolist(), strict=True))


class Shopper:
    """One shopper as of the snapshot's time: their events (item_id, timestamp, weight), oldest first."""

    def __init__(self, snapshot: Snapshot, user_id: str | None, history: pd.DataFrame | None = None) -> None:
        self.snapshot, self.user_id = snapshot, user_id
        if history is None:
            history = snapshot.history(user_id)
        if history is None or len(history) == 0:
            history = pd.DataFrame({"item_id": [], "timestamp": [], "weight": []})
        timestamps = history["timestamp"].to_numpy(float)
        order = np.argsort(timestamps, kind="stable") if np.any(np.diff(timestamps) < 0) else slice(None)
        self.items = history["item_id"].to_numpy().astype(str)[order]
        self.timestamps = timestamps[order]
        self.weights = history["weight"].to_numpy(float)[order] if "weight" in history else np.ones(len(history))
        self.now = max(snapshot.now, float(self.timestamps.max()) if len(self.timestamps) else snapshot.now)
        self._recency: dict[float, dict[str, float]] = {}

    def recency_weights(self, half_life_days: float = 30.0) -> dict[str, float]:
        """Each bought item's summed event weight, halving every `half_life_days` before now; most recent first.
        Computed once per half-life (three sources read it); the caller must not change it."""
        known = self._recency.get(half_life_days)
        if known is not None:
            return known
        decayed = (self.weights * np.exp2(-(self.now - self.timestamps) / (half_life_days * DAY)))[::-1]
        items, first, inverse = np.unique(self.items[::-1], return_index=True, return_inverse=True)
        sums = np.bincount(inverse, weights=decayed, minlength=len(items))  # summed in event order, as a loop would
        order = np.argsort(first, kind="stable")
        out = dict(zip(items[order].tolist(), sums[order].tolist(), strict=True))
        self._recency[half_life_days] = out
        return out

    @cached_property
    def recent(self) -> list[str]:
        """Distinct items, most recent first."""
        return list(dict.fromkeys(self.items[::-1]))

    @cached_property
    def cf_vector(self) -> np.ndarray | None:
        """The shopper's CF vector (float32), or None when CF knows nothing of them."""
        cf = self.snapshot.cf
        if cf is None:
            return None
        known = self.user_id is not None and cf.has_user(self.user_id)
        # CF's own vector when it knows exactly this history (trained on it, or kept current by the service's
        # fold-in at every event): an ALS solve per request would cost more than the rest of the feed
        column = self.snapshot.cf_col
        if known and set(cf.seen_columns(self.user_id).tolist()) == {column[i] for i in self.items if i in column}:
            vector = cf.user_vector(self.user_id)
        else:
            extra: dict[str, float] = {}
            for item, w in zip(self.items, self.weights, strict=False):
                extra[item] = extra.get(item, 0.0) + float(w)
            vector = cf.user_vector(None, extra)
        return None if vector is None else np.asarray(vector, np.float32)

    @cached_property
    def cf_scores(self) -> np.ndarray | None:
        """CF scores of every item CF knows (aligned with `cf.item_ids`), or None when CF knows nothing of them.
        A pass over the whole catalog's factors: the feed reads `cf_scores_of` (its pool) and `cf_top` instead."""
        vector = self.cf_vector
        # einsum, not BLAS: a threaded gemv of one vector is 50x slower on a busy two-core machine
        return None if vector is None else np.einsum("ij,j->i", self.snapshot.cf.item_factors, vector)

    def cf_scores_of(self, columns: np.ndarray) -> np.ndarray | None:
        """CF scores of the items in CF `columns` (the same values as `cf_scores[columns]`), or None."""
        vector = self.cf_vector
        if vector is None:
            return None
        return np.einsum("ij,j->i", self.snapshot.cf.item_factors[columns], vector)

    def cf_top(self, pool: int | None) -> tuple[np.ndarray, np.ndarray] | None:
        """(CF columns, their scores) to take CF's top items from: every item CF knows, or with `pool` only the
        `pool` best sellers among them (`Snapshot.cf_best_sellers`: the scan per request is then bounded by the
        pool, not by the catalog); None when CF knows nothing of the shopper."""
        if self.cf_vector is None:
            return None
        cf = self.snapshot.cf
        if pool is None or pool >= len(cf.item_ids):
            return np.arange(len(cf.item_ids)), self.cf_scores
        columns, factors = self.snapshot.cf_best_sellers(pool)
        return columns, np.einsum("ij,j->i", factors, self.cf_vector)

    @cached_property
    def styled(self) -> tuple[list[str], np.ndarray | None, np.ndarray | None]:
        """(recent distinct items with a style vector, their vectors, the style profile)."""
        style = self.snapshot.style
        if style is None:
            return [], None, None
        recent = [i for i in self.recent if i in style]
        if not recent:
            return [], None, None
        vectors = style.vectors_of(recent)
        mask = np.isin(self.items, recent)
        all_vectors = style.vectors_of(self.items[mask])
        profile = style_profile(all_vectors, self.timestamps[mask])
        return recent, vectors, profile
