"""Collaborative filtering with `implicit`: ALS (default) or BPR on a weighted user x item confidence matrix.

The model keeps its own id maps (catalog ids are strings), the weighted training matrix (for "already bought"
filters and fold-in) and the weighting statistics, so that new events for a user are folded in with
`recalculate_user` without retraining. A fold-in costs the shopper's own history (one row solved), never the
whole matrix: folded users live beside the trained matrix until `save` merges them.

Saved as one folder of `.npy` arrays that `load` memory-maps (`recsys.models.cf_arrays`): every web worker opening the
same version shares its pages, and a worker's private memory holds only the users folded in since. User ids are
a sorted fixed-width bytes array, looked up by binary search (no dict of every shopper). Folders of the older
format (`model.npz`, `cf.json` with the user ids, `user_items.npz`) still load, into memory.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Literal

import implicit
import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from common.errors import NoSuchFile, NothingToTrain
from common.topk import top_k
from recsys.models.cf_arrays import ARRAYS_FORMAT, CFArrays, SortedIds, read_arrays, write_arrays

log = logging.getLogger(__name__)

MODEL_FILE, META_FILE, MATRIX_FILE = "model.npz", "cf.json", "user_items.npz"  # the older format: npz + JSON ids


class CFConfig(BaseModel):
    """Collaborative filtering hyper-parameters."""

    model_config = ConfigDict(extra="forbid")

    model: Literal["als", "bpr"] = "als"
    factors: int = Field(32, ge=1)
    regularization: float | None = Field(None, ge=0, description="None: 10 for ALS, 0.01 for BPR")
    iterations: int | None = Field(None, ge=1, description="None: 15 for ALS, 100 for BPR")
    alpha: float = Field(1.0, gt=0, description="ALS confidence scale on the weighted matrix")
    learning_rate: float = Field(0.01, gt=0, description="BPR only")
    weighting: Literal["bm25", "log", "none"] = "log"
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    seed: int = 42
    use_gpu: bool | None = Field(None, description="None: use CUDA when implicit was built with it")


class CollaborativeFilter:
    """`fit` on interactions, then score, recommend and fold in new events; `save`/`load` a folder."""

    def __init__(self, config: CFConfig | None = None) -> None:
        self.config = config or CFConfig()
        self._users = SortedIds.build([])[0]  # trained users, sorted: a row by binary search (`_row`)
        self.item_ids: list[str] = []
        self._item_col: dict[str, int] = {}
        self.counts = sp.csr_matrix((0, 0), dtype=np.float32)  # summed event weights, users x items
        self.user_factors = np.zeros((0, 0), np.float32)
        self.item_factors = np.zeros((0, 0), np.float32)
        self._idf = np.zeros(0, np.float32)
        self._mean_length = 1.0
        self._model = None
        # Users whose row changed since training (new events folded in): their summed weights and factors.
        self._folded: dict[str, tuple[sp.csr_matrix, np.ndarray]] = {}

    # -- training -----------------------------------------------------------------------------------------
    def fit(self, interactions: pd.DataFrame, show_progress: bool = False) -> CollaborativeFilter:
        """Train on a table with user_id, item_id and weight (see `recsys.store.data_io`)."""
        if len(interactions) == 0:
            raise NothingToTrain("no interactions to train collaborative filtering on")
        users = pd.Categorical(interactions["user_id"].astype(str))
        items = pd.Categorical(interactions["item_id"].astype(str))
        weights = interactions["weight"].to_numpy(np.float32) if "weight" in interactions else 1.0
        counts = sp.csr_matrix(
            (np.broadcast_to(weights, len(interactions)), (users.codes, items.codes)),
            shape=(len(users.categories), len(items.categories)),
            dtype=np.float32,
        )
        return self.fit_counts(list(users.categories), list(items.categories), counts, show_progress)

    def fit_counts(
        self, user_ids: list[str], item_ids: list[str], counts: sp.csr_matrix, show_progress: bool = False
    ) -> CollaborativeFilter:
        """Train on a users x items matrix of summed event weights (rows `user_ids`, columns `item_ids`, both
        sorted as `fit` sorts them), e.g. aggregated out of core by DuckDB (`recsys.batch.windows.fit_cf`)."""
        if counts.nnz == 0:
            raise NothingToTrain("no interactions to train collaborative filtering on")
        self._users, order = SortedIds.build(list(user_ids))
        self.item_ids = list(item_ids)
        self._item_col = {item: i for i, item in enumerate(self.item_ids)}
        counts = sp.csr_matrix(counts, dtype=np.float32)
        # rows in the ids' byte order (pandas' and DuckDB's sort of the ids is that order already: the identity)
        self.counts = counts if np.array_equal(order, np.arange(len(order))) else counts[order]
        self.counts.sum_duplicates()
        self._fit_weighting(self.counts)
        self._folded = {}
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; a threaded BLAS inside slows it down
            self._model = self._new_model()
            self._model.fit(self._weigh(self.counts), show_progress=show_progress)
        self._pull_factors()
        return self

    def _new_model(self):
        c = self.config
        gpu = implicit.gpu.HAS_CUDA if c.use_gpu is None else c.use_gpu
        if c.model == "als":
            return implicit.als.AlternatingLeastSquares(
                factors=c.factors,
                regularization=10.0 if c.regularization is None else c.regularization,
                alpha=c.alpha,
                iterations=c.iterations or 15,
                random_state=c.seed,
                use_gpu=gpu,
            )
        return implicit.bpr.BayesianPersonalizedRanking(
            factors=c.factors,
            learning_rate=c.learning_rate,
            regularization=0.01 if c.regularization is None else c.regularization,
            iterations=c.iterations or 100,
            random_state=c.seed,
            use_gpu=gpu,
        )

    def _pull_factors(self) -> None:
        model = self._model.to_cpu() if hasattr(self._model, "to_cpu") else self._model
        self._model = model
        self.user_factors = np.asarray(model.user_factors, np.float32)
        self.item_factors = np.asarray(model.item_factors, np.float32)

    # BM25 as implicit's `bm25_weight` (items are the terms), with the statistics kept so that a single new
    # user row is weighted exactly like the training rows.
    def _fit_weighting(self, counts: sp.csr_matrix) -> None:
        n_users = max(counts.shape[0], 1)
        document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
        self._idf = (np.log(n_users) - np.log1p(document_frequency)).astype(np.float32)
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        self._mean_length = float(lengths.mean()) if lengths.size else 1.0

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        c = self.config
        weighted = counts.tocsr(copy=True).astype(np.float32)
        if c.weighting == "log":
            weighted.data = 1.0 + np.log1p(weighted.data)
        elif c.weighting == "bm25":
            lengths = np.asarray(counts.sum(axis=1)).ravel()
            norm = (1.0 - c.bm25_b) + c.bm25_b * lengths / max(self._mean_length, 1e-9)
            rows = np.repeat(np.arange(counts.shape[0]), np.diff(weighted.indptr))
            idf = np.maximum(self._idf[weighted.indices], 1e-3)
            weighted.data = weighted.data * (c.bm25_k1 + 1.0) / (c.bm25_k1 * norm[rows] + weighted.data) * idf
        return weighted

    # -- lookups --------------------------------------------------------------------------------------------
    def _row(self, user_id: str | None) -> int | None:
        """The trained row of a user (binary search in the sorted ids), or None."""
        return self._users.position(user_id)

    @property
    def user_ids(self) -> list[str]:
        """The trained users' ids in row order (decodes every id: for saving and tests, not per request)."""
        return self._users.tolist()

    def has_user(self, user_id: str) -> bool:
        return user_id in self._folded or self._row(user_id) is not None

    @property
    def user_count(self) -> int:
        """Users with factors: trained ones and new ones folded in since."""
        return len(self._users) + sum(self._row(u) is None for u in self._folded)

    def has_item(self, item_id: str) -> bool:
        return item_id in self._item_col

    def seen_items(self, user_id: str) -> list[str]:
        """Items the user interacted with in the training data (and events folded in since)."""
        return [self.item_ids[j] for j in self.seen_columns(user_id).tolist()]

    def seen_columns(self, user_id: str | None) -> np.ndarray:
        """`seen_items` as item columns (a slice of the counts, no row matrix built)."""
        if user_id in self._folded:
            return self._folded[user_id][0].indices
        row = self._row(user_id)
        if row is None:
            return np.zeros(0, np.int32)
        indptr = self.counts.indptr
        return self.counts.indices[indptr[row] : indptr[row + 1]]

    # -- scoring --------------------------------------------------------------------------------------------
    def user_vector(self, user_id: str | None = None, items: dict[str, float] | None = None) -> np.ndarray | None:
        """The user's latent factors: learnt ones, or folded in from `items` ({item_id: weight}) for a user
        CF has not seen (ALS solves for them exactly; BPR takes the mean of the items' factors).
        None when there is nothing to go on."""
        if user_id is not None and not items:
            if user_id in self._folded:
                return self._folded[user_id][1]
            row = self._row(user_id)
            if row is not None:
                return np.asarray(self.user_factors[row])
        row = self._row_matrix(user_id, items or {})
        return self._solve(row) if row.nnz else None

    def _solve(self, row: sp.csr_matrix) -> np.ndarray:
        """The factors of one user row of summed weights (at least one non-zero)."""
        if self.config.model == "als":
            return np.asarray(self._model.recalculate_user(0, self._weigh(row)), np.float32).ravel()
        vector = self.item_factors[row.indices].mean(axis=0)
        vector[-1] = 1.0  # BPR's item-bias column
        return vector

    def _user_counts(self, user_id: str | None) -> sp.csr_matrix:
        """One user's summed event weights as a 1 x items row (empty for an unknown user)."""
        if user_id in self._folded:
            return self._folded[user_id][0]
        row = self._row(user_id)
        if row is not None:
            return self.counts[row]
        return sp.csr_matrix((1, len(self.item_ids)), dtype=np.float32)

    def _row_matrix(self, user_id: str | None, items: dict[str, float]) -> sp.csr_matrix:
        base = self._user_counts(user_id)
        cols = [self._item_col[i] for i in items if i in self._item_col]
        extra = sp.csr_matrix(
            ([items[i] for i in items if i in self._item_col], ([0] * len(cols), cols)),
            shape=(1, len(self.item_ids)),
            dtype=np.float32,
        )
        return (base + extra).tocsr()

    def scores(self, user_vector: np.ndarray) -> np.ndarray:
        """Scores of every item in `item_ids` for one user vector."""
        return self.item_factors @ np.asarray(user_vector, np.float32)

    def recommend(
        self, user_id: str, k: int = 10, filter_seen: bool = True, items: dict[str, float] | None = None
    ) -> list[tuple[str, float]]:
        """Top-k (item_id, score) for a user (or a new one with `items`); [] when CF knows nothing of them."""
        vector = self.user_vector(user_id, items)
        if vector is None:
            return []
        scores = self.scores(vector)
        if filter_seen:
            seen = [self._item_col[i] for i in self.seen_items(user_id)]
            seen += [self._item_col[i] for i in (items or {}) if i in self._item_col]
            scores[seen] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        top = top_k(scores, k)
        return [(self.item_ids[j], float(scores[j])) for j in top]

    def fold_in(self, user_id: str, items: dict[str, float]) -> None:
        """Add new events of one user (known or new) and recompute their factors; items CF never saw are
        ignored until the next training."""
        items = {i: w for i, w in items.items() if i in self._item_col}
        if items:
            self._set_row(user_id, self._row_matrix(user_id, items))

    def set_history(self, user_id: str, items: dict[str, float]) -> None:
        """Make one user's row exactly `items` ({item_id: summed weight}, their whole history) and recompute
        their factors. Idempotent, so any process may apply the same history again (events tailed from the
        store). Costs the length of that history."""
        cols = sorted((self._item_col[i], w) for i, w in items.items() if i in self._item_col)
        if cols:
            indices, data = np.array([j for j, _ in cols], np.int32), np.array([w for _, w in cols], np.float32)
            self._set_row(user_id, sp.csr_matrix((data, indices, [0, len(cols)]), shape=(1, len(self.item_ids))))

    def _set_row(self, user_id: str, row: sp.csr_matrix) -> None:
        row = row.tocsr().astype(np.float32)
        row.sum_duplicates()
        self._folded[user_id] = (row, self._solve(row))

    def _merged(self) -> tuple[list[str], sp.csr_matrix, np.ndarray]:
        """User ids, counts and user factors with the folded-in users written into them (O(nnz): for saving)."""
        user_ids, factors = self.user_ids, np.array(self.user_factors, np.float32)
        counts = self.counts.tolil(copy=True)
        new_rows, new_factors = [], []
        for user_id, (row, vector) in self._folded.items():
            at = self._row(user_id)
            if at is not None:
                counts[at] = row
                factors[at] = vector
            else:
                user_ids.append(user_id)
                new_rows.append(row)
                new_factors.append(vector)
        merged = sp.vstack([counts.tocsr(), *new_rows]).tocsr() if new_rows else counts.tocsr()
        if new_factors:
            factors = np.vstack([factors, np.stack(new_factors)])
        return user_ids, merged.astype(np.float32), factors

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> None:
        """Write the model into `folder` as `.npy` arrays `load` maps (`recsys.models.cf_arrays`) and `cf.json`;
        users folded in since training are merged in (rows sorted by id again)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        user_ids, counts, user_factors = self._merged()
        users, order = SortedIds.build(user_ids)
        if not np.array_equal(order, np.arange(len(order))):  # new users were appended: back into id order
            counts, user_factors = counts[order], user_factors[order]
        write_arrays(folder, CFArrays(users, user_factors, self.item_factors, self._idf, counts))
        meta = {
            "format": ARRAYS_FORMAT,
            "config": self.config.model_dump(),
            "item_ids": self.item_ids,
            "users": len(users),
            "mean_length": self._mean_length,
        }
        (folder / META_FILE).write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> CollaborativeFilter:
        """Open a folder written by `save`: its arrays memory-mapped read-only (shared by every process that maps
        the same version); a folder of the older format (npz + JSON user ids) is read into memory."""
        folder = Path(folder)
        if not (folder / META_FILE).is_file():
            raise NoSuchFile(f"no collaborative filtering model in {folder}")
        meta = json.loads((folder / META_FILE).read_text())
        cf = cls(CFConfig.model_validate(meta["config"]))
        cf.item_ids = meta["item_ids"]
        cf._item_col = {item: i for i, item in enumerate(cf.item_ids)}
        if meta.get("format") == ARRAYS_FORMAT:
            arrays, cf._mean_length = read_arrays(folder, len(cf.item_ids)), float(meta["mean_length"])
        else:
            arrays, cf._mean_length = cls._read_older(folder, meta["user_ids"])
        cf._users, cf.user_factors, cf.item_factors = arrays.users, arrays.user_factors, arrays.item_factors
        cf._idf, cf.counts = arrays.idf, arrays.counts
        with threadpool_limits(1, "blas"):  # as in `fit` (and implicit then has no threaded BLAS to warn about)
            cf._model = cf._new_model()
        cf._model.user_factors, cf._model.item_factors = cf.user_factors, cf.item_factors
        if cf.config.model == "als":
            cf._model = cf._model.to_cpu() if hasattr(cf._model, "to_cpu") else cf._model
        return cf

    @staticmethod
    def _read_older(folder: Path, user_ids: list[str]) -> tuple[CFArrays, float]:
        """(the arrays, the mean history length) of a folder of the older format (`model.npz`, user ids in
        `cf.json`, `user_items.npz`), rows re-sorted by user id when they were not."""
        data = np.load(folder / MODEL_FILE)
        users, order = SortedIds.build(user_ids)
        user_factors, counts = data["user_factors"], sp.load_npz(folder / MATRIX_FILE).tocsr()
        if not np.array_equal(order, np.arange(len(order))):
            user_factors, counts = user_factors[order], counts[order]
        arrays = CFArrays(users, user_factors, data["item_factors"], data["idf"], counts.astype(np.float32))
        return arrays, float(data["mean_length"])
