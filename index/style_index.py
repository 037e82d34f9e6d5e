"""`StyleIndex`: FAISS inner-product search over L2-normalised style vectors with string item ids.

- The index type follows the size (`spec="auto"`): exact `Flat` up to 50k vectors, `IVF<n>,Flat` beyond, and
  `IVF<n>,PQ<m>` from 10M; any FAISS factory string may be given instead. Approximate indexes have their search
  parameter (nprobe / efSearch) tuned at build time so that recall@10 against exact search reaches a target.
- Allow-lists (a category, in-stock items) are FAISS `IDSelector`s, so results are the true top-k among allowed
  items, not an over-fetch filtered afterwards.
- On a machine with CUDA and a FAISS GPU build, unfiltered searches run on a GPU copy (`index_cpu_to_gpu`).
- Searches run concurrently; updates are serialised; `rebuild` builds aside and swaps the reference when ready.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
from faiss.contrib.evaluation import knn_intersection_measure

from common.errors import BadInput
from index.ids import IdMap
from index.locks import ReadWriteLock
from index.persistence import IndexFileError, read_version, sha256, write_version

log = logging.getLogger(__name__)

EXACT_LIMIT = 50_000
PQ_FROM = 10_000_000
TARGET_RECALL = 0.95


def auto_spec(n: int, dim: int) -> str:
    """The FAISS factory string `spec="auto"` picks for n vectors of this dimension."""
    if n <= EXACT_LIMIT:
        return "Flat"
    nlist = 2 ** round(math.log2(4 * math.sqrt(n)))
    if n < PQ_FROM:
        return f"IVF{nlist},Flat"
    m = max(m for m in (64, 48, 32, 16, 8, 4) if dim % m == 0 and m <= dim // 4) if dim >= 16 else 1
    return f"IVF{nlist},PQ{m}"


def as_vectors(x: np.ndarray | Sequence, dim: int | None = None) -> np.ndarray:
    """Validate (n, dim) finite float32 vectors (a single vector becomes one row)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        want = f"(n, {dim})" if dim is not None else "(n, dim)"
        raise ValueError(f"vectors must have shape {want}, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinity")
    return np.ascontiguousarray(x)


def as_item_vectors(vectors: np.ndarray | Sequence, ids: Sequence[str], dim: int | None = None) -> np.ndarray:
    """`as_vectors`, plus one distinct id per vector (checked before anything changes)."""
    vectors = as_vectors(vectors, dim)
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
    if len(set(ids)) != len(ids):
        raise ValueError("the same item id appears twice in one batch")
    return vectors


def _ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    return faiss.try_extract_index_ivf(index)


def _hnsw(index: faiss.Index):
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return inner if isinstance(inner, faiss.IndexHNSW) else None


@dataclass
class _State:
    """One immutable-by-reference version of the index: swapped whole by `rebuild`/`load`."""

    index: faiss.Index
    ids: IdMap
    spec: str
    params: dict[str, int] = field(default_factory=dict)
    gpu: faiss.Index | None = None
    fingerprint: str | None = None  # the checksum of the version it was read from or saved as; None once changed


def _gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class StyleIndex:
    """Nearest style neighbours by inner product (= cosine on unit vectors), with string item ids."""

    def __init__(self, dim: int, model_id: str = "", use_gpu: bool | None = None) -> None:
        self.dim = dim
        self.model_id = model_id
        self.use_gpu = _gpu_available() if use_gpu is None else use_gpu
        self._gpu_resources = faiss.StandardGpuResources() if self.use_gpu else None
        self._lock = ReadWriteLock()
        self._build_lock = threading.Lock()
        self._state = _State(self._new_index("Flat"), IdMap(), "Flat")

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: Sequence[str],
        spec: str = "auto",
        model_id: str = "",
        target_recall: float = TARGET_RECALL,
        use_gpu: bool | None = None,
        seed: int = 0,
    ) -> StyleIndex:
        """A new index over `vectors` (n, dim) with item `ids`."""
        vectors = as_vectors(vectors)
        index = cls(vectors.shape[1], model_id, use_gpu)
        index.rebuild(vectors, ids, spec, target_recall, seed)
        return index

    def rebuild(
        self,
        vectors: np.ndarray,
        ids: Sequence[str],
        spec: str = "auto",
        target_recall: float = TARGET_RECALL,
        seed: int = 0,
    ) -> None:
        """Build a new version aside (searches go on against the old one) and swap it in when ready."""
        vectors = as_item_vectors(vectors, ids, self.dim)
        with self._build_lock:
            spec = auto_spec(len(vectors), self.dim) if spec == "auto" else spec
            index = self._new_index(spec)
            if not index.is_trained:
                index.train(self._training_sample(vectors, index, seed))
            id_map = IdMap()
            index.add_with_ids(vectors, id_map.assign(ids))
            state = _State(index, id_map, spec)
            state.params = self._tune(state, vectors, target_recall, seed)
            state.gpu = self._to_gpu(index, state.params)
            with self._lock.write():
                self._state = state
        log.info("built %s over %d vectors, params %s", spec, len(vectors), state.params)

    def _new_index(self, spec: str) -> faiss.Index:
        try:
            index = faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise BadInput(f"not a usable FAISS factory string {spec!r}: {exc}") from exc
        # IVF indexes store our int64 labels themselves; others need an id map around them.
        return index if _ivf(index) is not None else faiss.IndexIDMap2(index)

    @staticmethod
    def _training_sample(vectors: np.ndarray, index: faiss.Index, seed: int) -> np.ndarray:
        ivf = _ivf(index)
        cap = 64 * ivf.nlist if ivf is not None else 100_000
        if len(vectors) <= cap:
            return vectors
        rows = np.random.default_rng(seed).choice(len(vectors), cap, replace=False)
        return vectors[np.sort(rows)]

    def _tune(self, state: _State, vectors: np.ndarray, target: float, seed: int, k: int = 10) -> dict[str, int]:
        """Smallest nprobe / efSearch whose recall@k against exact search (self-matches excluded) meets target."""
        ivf, hnsw = _ivf(state.index), _hnsw(state.index)
        if ivf is None and hnsw is None:
            return {}
        n_queries = min(1000, len(vectors))
        rows = np.random.default_rng(seed + 1).choice(len(vectors), n_queries, replace=False)
        queries = vectors[rows]
        _, exact = faiss.knn(queries, vectors, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
        # A fresh build labels items 0..n-1 in row order, so exact row numbers and index labels agree.
        exact = _drop_self(exact, rows, k)
        name, candidates = ("nprobe", _powers(1, ivf.nlist)) if ivf is not None else ("efSearch", _powers(16, 4096))
        best = candidates[-1]
        for value in candidates:
            labels = self._search_state(state, queries, k + 1, None, {name: value})[1]
            recall = knn_intersection_measure(_drop_self(labels, rows, k), exact)
            if recall >= target:
                best = value
                break
        log.info("tuned %s=%d for recall@%d >= %.2f", name, best, k, target)
        return {name: best}

    def _to_gpu(self, index: faiss.Index, params: dict[str, int]) -> faiss.Index | None:
        """A GPU copy for unfiltered searches, with the tuned search parameters set once, here."""
        if not self.use_gpu:
            return None
        try:
            gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, index)
        except RuntimeError as exc:  # e.g. an index type without a GPU implementation
            log.warning("searching on the CPU: %s", exc)
            return None
        if "nprobe" in params:
            faiss.GpuParameterSpace().set_index_parameter(gpu, "nprobe", params["nprobe"])
        return gpu

    # -- updates ---------------------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        """Add new items (ValueError if an id is already present)."""
        vectors = as_item_vectors(vectors, ids, self.dim)
        with self._lock.write():
            state = self._state
            state.index.add_with_ids(vectors, state.ids.assign(ids))
            self._changed(state)

    def remove(self, ids: Sequence[str]) -> int:
        """Remove items by id (KeyError for an unknown id); returns how many were removed."""
        with self._lock.write():
            removed = self._remove(self._state, ids)
            self._changed(self._state)
            return removed

    def upsert(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        """Insert new items and replace the vectors of existing ones."""
        vectors = as_item_vectors(vectors, ids, self.dim)
        with self._lock.write():
            state = self._state
            self._remove(state, [i for i in ids if i in state.ids])
            state.index.add_with_ids(vectors, state.ids.assign(ids))
            self._changed(state)

    @staticmethod
    def _remove(state: _State, ids: Sequence[str]) -> int:
        """Remove from the FAISS index first, then from the id map, so a refusal leaves both as they were."""
        if not ids:
            return 0
        labels = state.ids.labels(ids)
        try:
            removed = state.index.remove_ids(faiss.IDSelectorBatch(labels))
        except RuntimeError as exc:
            raise ValueError(f"index type {state.spec!r} does not support removal; rebuild instead") from exc
        state.ids.drop(ids)
        return int(removed)

    def _changed(self, state: _State) -> None:
        """After an in-place change: the state is no longer a persisted version, and its GPU copy is refreshed."""
        state.fingerprint = None
        if state.gpu is not None:
            state.gpu = self._to_gpu(state.index, state.params)

    # -- search ----------------------------------------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        allow: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
    ) -> tuple[list[list[str]], list[list[float]]]:
        """Top-k item ids and scores per query, best first; with `allow`, only among those item ids; with
        `exclude`, never those (a shopper's own purchases: k stays the k wanted however many they bought).

        Unknown ids in `allow` or `exclude` are ignored; fewer than k results come back when fewer items qualify.
        """
        queries = as_vectors(queries, self.dim)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        with self._lock.read():
            state = self._state
            scores, labels = self._search_state(state, queries, k, allow, state.params, exclude)
            ids = [state.ids.ids(row) for row in labels]
        out_ids = [[i for i in row if i is not None] for row in ids]
        out_scores = [
            [float(s) for s, i in zip(srow, irow, strict=True) if i is not None]
            for srow, irow in zip(scores, ids, strict=True)
        ]
        return out_ids, out_scores

    def similar(self, query: np.ndarray, k: int = 10, exclude: str | None = None) -> list[tuple[str, float]]:
        """Top-k (item id, score) for one query vector, leaving out `exclude` (the query's own item)."""
        ids, scores = self.search(query, k + (exclude is not None))
        return [(i, s) for i, s in zip(ids[0], scores[0], strict=True) if i != exclude][:k]

    def _search_state(
        self,
        state: _State,
        queries: np.ndarray,
        k: int,
        allow: Sequence[str] | None,
        params: dict[str, int],
        exclude: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        selector = None
        if allow is not None:
            labels = state.ids.labels(allow, strict=False)
            if len(labels) == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            selector = faiss.IDSelectorBatch(labels)
        excluded = state.ids.labels(exclude, strict=False) if exclude else ()
        if len(excluded):  # (FAISS's Python wrappers keep the selectors they combine alive)
            left_out = faiss.IDSelectorNot(faiss.IDSelectorBatch(excluded))
            selector = left_out if selector is None else faiss.IDSelectorAnd(selector, left_out)
        if state.gpu is not None and selector is None:
            return state.gpu.search(queries, k)
        if allow is not None and "nprobe" in params:
            # Probe proportionally more lists for a selective allow-list, so as many allowed candidates are seen
            # as an unfiltered search sees: the recall target holds for filtered searches too.
            ivf = _ivf(state.index)
            scale = max(1.0, len(state.ids) / len(labels))
            params = {**params, "nprobe": min(ivf.nlist, math.ceil(params["nprobe"] * scale))}
        search_params = _search_parameters(state.index, selector, params)
        return state.index.search(queries, k, params=search_params)

    # -- persistence -----------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write a new version of the index to `folder` (atomically; see index.persistence)."""
        with self._lock.read():
            state = self._state
            index_bytes = _serialize(state.index)
            ids, labels = state.ids.items()
            manifest = {**self._info(state), "next_label": state.ids.next_label, "format": 1}
            state.fingerprint = sha256(index_bytes)  # it is the version written below (a change after resets it)
        manifest.pop("device")
        return write_version(Path(folder), index_bytes, ids, labels, manifest)

    @classmethod
    def load(cls, folder: str | os.PathLike, model_id: str | None = None, use_gpu: bool | None = None) -> StyleIndex:
        """Read the current version in `folder`, verified; with `model_id`, refuse an index of another model."""
        index_bytes, ids, labels, manifest = read_version(Path(folder))
        if model_id is not None and manifest.get("model_id") != model_id:
            raise IndexFileError(
                f"{folder}: index holds vectors of model {manifest.get('model_id')!r}, expected {model_id!r}"
            )
        try:
            index = faiss.deserialize_index(np.frombuffer(index_bytes, dtype=np.uint8))
        except RuntimeError as exc:
            raise IndexFileError(f"{folder}: not a readable FAISS index ({exc})") from exc
        if index.d != manifest["dim"] or index.ntotal != len(ids):
            raise IndexFileError(f"{folder}: index has {index.ntotal} x {index.d}, manifest and ids disagree")
        loaded = cls(manifest["dim"], manifest.get("model_id", ""), use_gpu)
        state = _State(index, IdMap(ids, labels, manifest.get("next_label")), manifest["spec"], manifest["params"])
        state.fingerprint = manifest.get("index_sha256")
        state.gpu = loaded._to_gpu(index, state.params)
        loaded._state = state
        return loaded

    def replace_with(self, other: StyleIndex) -> None:
        """Swap in another index's current version (e.g. one just loaded or rebuilt elsewhere)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot swap a {other.dim}-d index into a {self.dim}-d one")
        with self._lock.write():
            self._state = other._state
            self.model_id = other.model_id

    # -- information -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._state.ids)

    def item_ids(self) -> list[str]:
        """The ids of the items in the index."""
        return list(self._state.ids.items()[0])

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._state.ids

    @property
    def spec(self) -> str:
        return self._state.spec

    @property
    def fingerprint(self) -> str | None:
        """The checksum of the persisted version this index is (read, or just saved), None when it has changed
        since or was never saved: what says that lists searched in another process came from the same index."""
        return self._state.fingerprint

    def info(self) -> dict:
        """What `stylerec index info` prints."""
        return self._info(self._state)

    def _info(self, state: _State) -> dict:
        return {
            "model_id": self.model_id,
            "dim": self.dim,
            "count": len(state.ids),
            "spec": state.spec,
            "params": dict(state.params),
            "device": "gpu" if state.gpu is not None else "cpu",
        }


def _powers(start: int, stop: int) -> list[int]:
    values, v = [], start
    while v < stop:
        values.append(v)
        v *= 2
    return [*values, stop]


def _drop_self(labels: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Per query, its results without the query's own row, cut to k (padded with -1)."""
    out = np.full((len(labels), k), -1, dtype=np.int64)
    for q, (row, own) in enumerate(zip(labels, rows, strict=True)):
        kept = row[row != own][:k]
        out[q, : len(kept)] = kept
    return out


def _search_parameters(index: faiss.Index, selector, params: dict[str, int]):
    if _ivf(index) is not None:
        return faiss.SearchParametersIVF(sel=selector, nprobe=params.get("nprobe", 1))
    if _hnsw(index) is not None:
        return faiss.SearchParametersHNSW(sel=selector, efSearch=params.get("efSearch", 16))
    return faiss.SearchParameters(sel=selector) if selector is not None else None


def _serialize(index: faiss.Index) -> bytes:
    return faiss.serialize_index(index).tobytes()
