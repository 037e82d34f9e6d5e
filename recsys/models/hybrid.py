"""The hybrid ranker: collaborative filtering, style and popularity, blended per shopper.

Candidates come from CF top-N, the style index around the shopper's style profile (or a query photo), and the
most popular items. Each candidate gets up to three scores, z-normalised over the candidate set:
`score = alpha * z(cf) + (1 - alpha) * z(style) + popularity_weight * z(log popularity)`. A score a candidate
cannot have counts as the candidates' mean (z = 0): an item without a photo has no style score; a new item that
CF never saw borrows its CF score from its nearest bought items in style space (so a shopper's CF taste reaches
new arrivals that look like what they would buy), and without those it is reachable through style alone; a
never-bought item is neither helped nor hurt by the popularity prior.
alpha = 1 ranks like CF alone (plus new arrivals through their look-alikes) and alpha = 0 like style alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from common.topk import top_k
from index.style_index import StyleIndex
from recsys.models.cf import CollaborativeFilter

DAY = 86400.0


class HybridConfig(BaseModel):
    """How the hybrid ranker blends and filters."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(0.5, ge=0, le=1, description="weight of CF against style")
    popularity_weight: float = Field(0.0, ge=0, description="weight of the popularity prior")
    candidates: int = Field(200, ge=1, description="candidates taken from each source")
    filter_seen: bool = True
    diversity: float = Field(0.0, ge=0, le=1, description="MMR trade-off: 0 = off, 1 = only diversity")
    profile_half_life_days: float = Field(60.0, gt=0)
    popularity_half_life_days: float | None = Field(30.0, gt=0, description="None: all-time counts")
    centroids: int = Field(1, ge=1, description="style centroids per shopper (several tastes)")


@dataclass
class Recommendation:
    """One ranked item with the evidence behind it."""

    item_id: str
    score: float
    reason: str
    cf: float | None = None
    style: float | None = None
    popularity: float | None = None

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


NEIGHBOUR_LIST = 64  # each item's nearest kept by the batch: the style source takes 40 of them, purchases left out


class StyleSpace:
    """Item style vectors by id, with a FAISS index over them for candidate search."""

    def __init__(self, ids: Sequence[str], vectors: np.ndarray, model_id: str = "", index: StyleIndex | None = None):
        self.ids, self.model_id = list(ids), model_id
        self.vectors = np.ascontiguousarray(vectors, np.float32)
        self.row = {item_id: i for i, item_id in enumerate(self.ids)}
        self.index = index or StyleIndex.build(self.vectors, self.ids, model_id=model_id, spec="Flat")
        # (items, NEIGHBOUR_LIST) rows of each item's nearest other items, best first, -1 padded: computed by the
        # batch (`neighbour_rows`) and read by the style source instead of a search per purchase; None: search
        self.neighbours: np.ndarray | None = None

    @property
    def pattern_dim(self) -> int | None:
        """Leading values of each vector that are the pattern facet (`transfer.facets`); None: no facets."""
        from transfer.facets import pattern_dim_of

        return pattern_dim_of(self.model_id)

    def weigh(self, query: np.ndarray, facet: str | None = None, pattern: float | None = None) -> np.ndarray:
        """The query scaled for a facet ("pattern", "colour", "both") or a pattern weight in [0, 1]; vectors
        without facets answer every facet with the whole style."""
        from transfer.facets import facet_weights, weigh_query

        return weigh_query(query, self.pattern_dim, facet_weights(facet, pattern))

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.row

    def vector(self, item_id: str) -> np.ndarray:
        return self.vectors[self.row[item_id]]

    def vectors_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """The vectors of `item_ids` (each must have one), one row each in that order: one fancy index, the same
        values as stacking `vector` per item at a fraction of its per-request cost."""
        row = self.row
        return self.vectors[np.fromiter((row[i] for i in item_ids), np.intp)]

    def nearest_rows(self, k: int, batch: int = 4096) -> np.ndarray:
        """Each item's `k` nearest other items (rows of `ids`), best first, -1 padded: the index's answers to
        every item's own vector (approximate for an IVF index), a batch of items at a time; never all pairs."""
        out = np.full((len(self.ids), k), -1, np.int32)
        row = self.row
        for start in range(0, len(self.ids), batch):
            found, _ = self.index.search(self.vectors[start : start + batch], k + 1)
            for at, neighbours in enumerate(found, start):
                rows = [row[i] for i in neighbours if i != self.ids[at]][:k]
                out[at, : len(rows)] = rows
        return out

    def listed(self, item: str, n: int, keep: Callable[[str], bool]) -> list[int] | None:
        """Rows of the `n` nearest items to `item` that `keep` accepts, best first, from the batch's lists
        (`neighbours`): the index's own answer to the item's vector with the others left out. None when there are
        no lists, or when fewer than `n` are kept from a list that may go on beyond its end."""
        if self.neighbours is None:
            return None
        listed = self.neighbours[self.row[item]]
        ids = self.ids
        kept = [j for j in listed.tolist() if j >= 0 and keep(ids[j])][:n]
        complete = listed[-1] < 0  # the list holds every other item: nothing beyond it
        return kept if len(kept) == n or complete else None

    def neighbour_rows(self) -> np.ndarray:
        """`neighbours`, computed now when missing (`nearest_rows(NEIGHBOUR_LIST)`): the batch calls this once,
        and every snapshot built over this space (training windows) reads the same lists."""
        if self.neighbours is None:
            self.neighbours = self.nearest_rows(NEIGHBOUR_LIST)
        return self.neighbours

    def upsert(self, item_id: str, vector: np.ndarray) -> None:
        """Add or replace one item's vector (and its index entry)."""
        self.neighbours = None  # the lists no longer answer for the index
        vector = np.asarray(vector, np.float32).reshape(1, -1)
        if item_id in self.row:
            self.vectors[self.row[item_id]] = vector[0]
        else:
            self.row[item_id] = len(self.ids)
            self.ids.append(item_id)
            self.vectors = np.vstack([self.vectors, vector])
        self.index.upsert(vector, [item_id])

    def remove(self, item_id: str) -> None:
        """Forget one item's vector; a no-op for an item without one."""
        if item_id not in self.row:
            return
        self.neighbours = None
        keep = [i for i in self.ids if i != item_id]
        self.vectors = self.vectors[[self.row[i] for i in keep]]
        self.ids, self.row = keep, {i: n for n, i in enumerate(keep)}
        self.index.remove([item_id])


class Popularity:
    """Time-decayed purchase counts (half-life in days; None = all-time) as of the latest event: the one
    definition of popularity (`recsys.batch.tables.decayed_popularity_sql`), which the batch tables' `pop_decayed`
    also computes. `ranked`: most popular first, ties by item id."""

    def __init__(self, interactions: pd.DataFrame, half_life_days: float | None = 30.0) -> None:
        from recsys.batch.tables import popularity_scores

        self._use(popularity_scores(interactions, half_life_days))

    def _use(self, scores: dict[str, float]) -> None:
        self.scores: dict[str, float] = dict(scores)
        self.ranked = sorted(self.scores, key=lambda item: (-self.scores[item], item))

    @classmethod
    def from_scores(cls, scores: dict[str, float]) -> Popularity:
        """Popularity from counted scores (a batch tables version's), ranked like counting them here."""
        popularity = cls.__new__(cls)
        popularity._use(scores)
        return popularity

    def top(self, n: int) -> list[str]:
        return self.ranked[:n]


def style_profile(
    vectors: np.ndarray, timestamps: np.ndarray, half_life_days: float = 60.0, centroids: int = 1, seed: int = 0
) -> np.ndarray | None:
    """Unit style centroid(s) (c, d) of the items a shopper bought, recent purchases weighing more
    (weight halves every `half_life_days` before the latest one). None without vectors."""
    if len(vectors) == 0:
        return None
    weights = np.exp2(-(timestamps.max() - timestamps) / (half_life_days * DAY)).astype(np.float32)
    if centroids > 1 and len(vectors) > centroids:
        from sklearn.cluster import KMeans

        labels = KMeans(centroids, n_init=3, random_state=seed).fit_predict(vectors, sample_weight=weights)
        means = np.stack([(vectors[labels == c] * weights[labels == c, None]).sum(0) for c in range(centroids)])
    else:
        means = (vectors * weights[:, None]).sum(0, keepdims=True)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class Candidates:
    items: list[str]
    cf: np.ndarray  # nan where the item has no CF score
    style: np.ndarray  # nan where the item has no style vector
    popularity: np.ndarray  # log1p of decayed counts; nan for never bought (no evidence, not bad evidence)
    style_source: list[str | None] = field(default_factory=list)  # history item each style score comes from


def _z(values: np.ndarray) -> np.ndarray:
    """z-scores over the finite values; missing values get 0 (the mean)."""
    out = np.zeros_like(values, dtype=np.float64)
    finite = np.isfinite(values)
    if finite.sum() >= 2:
        v = values[finite]
        out[finite] = (v - v.mean()) / (v.std() + 1e-9)
    return out


class HybridRanker:
    """Blends a `CollaborativeFilter`, a `StyleSpace` and `Popularity` (either of the first two may be None)."""

    def __init__(
        self,
        cf: CollaborativeFilter | None,
        style: StyleSpace | None,
        popularity: Popularity,
        categories: dict[str, str] | None = None,
        config: HybridConfig | None = None,
    ) -> None:
        self.cf, self.style, self.popularity = cf, style, popularity
        self.categories = categories or {}  # when given, also the catalog: only these items are ever returned
        self.config = config or HybridConfig()
        self._cf_col = {item: j for j, item in enumerate(cf.item_ids)} if cf is not None else {}
        # a cold item's style neighbours among warm items, looked up when it is first a candidate (a catalog of
        # 105k items would otherwise cost a catalog x catalog product at every open and reload)
        self._borrowed: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        self._warm: tuple[list[str], np.ndarray] | None = None

    def _borrow(self, items: list[str], m: int = 5) -> None:
        """For each item with a photo but no CF factors not looked up yet: its m nearest warm items in style space
        (CF columns and cosine weights), so that a new item borrows a CF score from the items it looks like. One
        batched search of the style index, `8 m` deep; an item whose search holds fewer than m warm items is
        compared with every warm item (exact)."""
        todo = [i for i in dict.fromkeys(items) if i not in self._borrowed]
        if not todo or self.cf is None or self.style is None:
            return
        vectors = np.stack([self.style.vector(i) for i in todo])
        found, scores = self.style.index.search(vectors, min(8 * m, len(self.style.ids)))
        for item, vector, ids, sims in zip(todo, vectors, found, scores, strict=True):
            near = [(self._cf_col[i], s) for i, s in zip(ids, sims, strict=True) if i in self._cf_col][:m]
            if len(near) < m:
                near = self._nearest_warm(vector, m)
            if not near:
                self._borrowed[item] = None
                continue
            weights = np.maximum(np.array([s for _, s in near], np.float64), 1e-6)
            self._borrowed[item] = (np.array([c for c, _ in near]), weights / weights.sum())

    def _nearest_warm(self, vector: np.ndarray, m: int) -> list[tuple[int, float]]:
        """(CF column, cosine) of the m warm items nearest to `vector`, by comparing it with all of them."""
        if self._warm is None:
            warm = [i for i in self.style.ids if i in self._cf_col]
            self._warm = (warm, np.stack([self.style.vector(i) for i in warm]) if warm else np.zeros((0, 0)))
        warm, matrix = self._warm
        if not warm:
            return []
        similarity = matrix @ vector
        top = top_k(similarity, min(m, len(warm)))
        return [(self._cf_col[warm[j]], float(similarity[j])) for j in top]

    # -- candidates and scores ------------------------------------------------------------------------------
    def candidates(
        self,
        user_id: str | None,
        history: pd.DataFrame | None = None,
        query: np.ndarray | None = None,
        exclude: set[str] | None = None,
        allow: set[str] | None = None,
    ) -> Candidates:
        """Candidates for a shopper (`history`: their events, a table with item_id, timestamp, weight) and/or
        a query style vector, with their raw CF, style and popularity scores."""
        c = self.config
        history = history if history is not None else pd.DataFrame(columns=["item_id", "timestamp", "weight"])
        exclude = exclude or set()
        pool: dict[str, None] = {}

        catalog = self.categories

        def admit(items) -> None:
            for item in items:
                if item not in exclude and (allow is None or item in allow) and (not catalog or item in catalog):
                    pool.setdefault(item, None)

        cf_scores = None
        if self.cf is not None:
            known = user_id is not None and self.cf.has_user(user_id)
            extra = None if known else dict(zip(history["item_id"], history["weight"].astype(float), strict=False))
            vector = self.cf.user_vector(user_id if known else None, extra)
            if vector is not None:
                cf_scores = self.cf.scores(vector)
                admit(self.cf.item_ids[j] for j in top_k(cf_scores, c.candidates + len(exclude)))

        profile, bought, bought_vectors = None, [], None
        if self.style is not None:
            bought = [i for i in dict.fromkeys(history["item_id"]) if i in self.style]
            if query is not None:
                profile = np.asarray(query, np.float32).reshape(1, -1)
            elif bought:
                rows = history[[i in self.style for i in history["item_id"]]]  # the history's cost, not the catalog's
                vectors = np.stack([self.style.vector(i) for i in rows["item_id"]])
                profile = style_profile(
                    vectors, rows["timestamp"].to_numpy(float), c.profile_half_life_days, c.centroids
                )
            if profile is not None:
                want = c.candidates + len(exclude)
                if allow is not None and len(allow) <= len(self.style.ids) // 2:  # a narrow filter: FAISS applies it
                    ids, _ = self.style.index.search(profile, want, allow=[i for i in allow if i in self.style])
                else:  # most of the catalog allowed: search wider and let `admit` filter (no catalog-sized list)
                    ids, _ = self.style.index.search(profile, 2 * want if allow is not None else want)
                for row in ids:
                    admit(row)
            if bought:
                bought_vectors = np.stack([self.style.vector(i) for i in bought])

        admit(self.popularity.top(c.candidates + len(exclude)))
        items = list(pool)
        cf = np.full(len(items), np.nan)
        style = np.full(len(items), np.nan)
        source: list[str | None] = [None] * len(items)
        if cf_scores is not None:
            if self.style is not None:
                self._borrow([i for i in items if i not in self._cf_col and i in self.style])
            for n, item in enumerate(items):
                j = self._cf_col.get(item)
                if j is not None:
                    cf[n] = cf_scores[j]
                elif self._borrowed.get(item) is not None:
                    cols, weights = self._borrowed[item]
                    cf[n] = float(cf_scores[cols] @ weights)
        if profile is not None:
            for n, item in enumerate(items):
                if item in self.style:
                    v = self.style.vector(item)
                    style[n] = float((profile @ v).max())
                    if query is None and bought_vectors is not None:
                        source[n] = bought[int(np.argmax(bought_vectors @ v))]
        popularity = np.log1p(np.array([self.popularity.scores.get(i, np.nan) for i in items]))
        return Candidates(items, cf, style, popularity, source)

    def blend(self, cand: Candidates, alpha: float | None = None, popularity_weight: float | None = None) -> np.ndarray:
        """Blended scores of the candidates (see module docstring)."""
        alpha = self.config.alpha if alpha is None else alpha
        beta = self.config.popularity_weight if popularity_weight is None else popularity_weight
        has_personal = np.isfinite(cand.cf).any() or np.isfinite(cand.style).any()
        if not has_personal:  # a shopper we know nothing about: popularity
            return np.nan_to_num(cand.popularity, nan=-1.0)
        return alpha * _z(cand.cf) + (1 - alpha) * _z(cand.style) + beta * _z(cand.popularity)

    # -- ranking --------------------------------------------------------------------------------------------
    def rank(
        self,
        user_id: str | None,
        k: int = 10,
        history: pd.DataFrame | None = None,
        query: np.ndarray | None = None,
        categories: set[str] | None = None,
        allow: set[str] | None = None,
        exclude: set[str] | None = None,
        alpha: float | None = None,
    ) -> list[Recommendation]:
        """The top-k items for a shopper and/or a query style vector, each with its reason."""
        c = self.config
        exclude = set(exclude or ())
        if c.filter_seen and history is not None:
            exclude |= set(history["item_id"])
        if categories:
            category_items = {i for i, cat in self.categories.items() if cat in categories}
            allow = category_items if allow is None else allow & category_items
        cand = self.candidates(user_id, history, query, exclude, allow)
        if not cand.items:
            return []
        alpha = c.alpha if alpha is None else alpha
        scores = self.blend(cand, alpha)
        order = self._diversify(cand, scores, k) if c.diversity > 0 else np.argsort(-scores, kind="stable")[:k]
        return [self._explain(cand, int(n), float(scores[n]), alpha, query is not None) for n in order]

    def _diversify(self, cand: Candidates, scores: np.ndarray, k: int) -> list[int]:
        """Maximal marginal relevance over style vectors (items without one are never similar to anything)."""
        lam = 1.0 - self.config.diversity
        relevance = (scores - scores.min()) / (np.ptp(scores) + 1e-9)
        dim = self.style.vectors.shape[1] if self.style is not None else 1
        vectors = np.stack(
            [self.style.vector(i) if self.style is not None and i in self.style else np.zeros(dim) for i in cand.items]
        )
        chosen: list[int] = []
        max_similarity = np.zeros(len(cand.items))
        available = np.ones(len(cand.items), bool)
        while len(chosen) < min(k, len(cand.items)):
            value = np.where(available, lam * relevance - (1 - lam) * max_similarity, -np.inf)
            best = int(np.argmax(value))
            chosen.append(best)
            available[best] = False
            max_similarity = np.maximum(max_similarity, vectors @ vectors[best])
        return chosen

    def _explain(self, cand: Candidates, n: int, score: float, alpha: float, from_query: bool) -> Recommendation:
        cf, style = cand.cf[n], cand.style[n]
        z_cf = alpha * _z(cand.cf)[n] if np.isfinite(cf) else -np.inf
        z_style = (1 - alpha) * _z(cand.style)[n] if np.isfinite(style) else -np.inf
        if np.isfinite(z_style) and z_style >= z_cf:
            reason = "same style as your photo" if from_query else f"same style as {cand.style_source[n]}"
            if not from_query and cand.style_source[n] is None:
                reason = "matches your style"
        elif np.isfinite(z_cf):
            reason = "shoppers like you bought this"
        else:
            reason = "popular right now"
        return Recommendation(
            cand.items[n],
            score,
            reason,
            cf=float(cf) if np.isfinite(cf) else None,
            style=float(style) if np.isfinite(style) else None,
            popularity=float(cand.popularity[n]) if np.isfinite(cand.popularity[n]) else None,
        )
