"""`ShardedStyleIndex`: several `StyleIndex` shards (one per machine or GPU) behind the same interface.

Items are routed to a shard by a stable hash of their id, so adds, upserts and removes touch one shard; a search
asks every shard in parallel for its top-k and merges them, which gives the same answer as one index over all
items. FAISS's own `IndexShards` cannot filter with an IDSelector or remove items, hence this thin layer; a
remote shard only needs `search`/`add`/`upsert`/`remove` (e.g. behind faiss.contrib.client_server).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from index.persistence import IndexFileError
from index.style_index import TARGET_RECALL, StyleIndex, as_item_vectors, as_vectors

SHARDS_FILE = "shards.json"


def shard_of(item_id: str, shards: int) -> int:
    """Stable shard number of an item id (crc32, identical on every machine and Python run)."""
    return zlib.crc32(item_id.encode()) % shards


class ShardedStyleIndex:
    """The `StyleIndex` interface over `len(shards)` independent indexes."""

    def __init__(self, shards: list[StyleIndex]) -> None:
        if not shards or len({s.dim for s in shards}) != 1:
            raise ValueError("need at least one shard, all of the same dimension")
        self.shards = shards
        self.dim = shards[0].dim
        self.model_id = shards[0].model_id
        self._pool = ThreadPoolExecutor(max_workers=len(shards))

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: Sequence[str],
        shards: int,
        spec: str = "auto",
        model_id: str = "",
        target_recall: float = TARGET_RECALL,
        use_gpu: bool | None = None,
    ) -> ShardedStyleIndex:
        vectors = as_item_vectors(vectors, ids)
        parts = cls._split(ids, shards)
        return cls(
            [
                StyleIndex.build(vectors[rows], [ids[i] for i in rows], spec, model_id, target_recall, use_gpu)
                for rows in parts
            ]
        )

    @staticmethod
    def _split(ids: Sequence[str], shards: int) -> list[np.ndarray]:
        owner = np.array([shard_of(i, shards) for i in ids], dtype=np.int64)
        return [np.flatnonzero(owner == s) for s in range(shards)]

    def _route(self, vectors: np.ndarray | None, ids: Sequence[str]):
        for s, rows in enumerate(self._split(ids, len(self.shards))):
            if len(rows):
                yield self.shards[s], (None if vectors is None else vectors[rows]), [ids[i] for i in rows]

    def add(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        vectors = as_vectors(vectors, self.dim)
        for shard, part, part_ids in self._route(vectors, ids):
            shard.add(part, part_ids)

    def upsert(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        vectors = as_vectors(vectors, self.dim)
        for shard, part, part_ids in self._route(vectors, ids):
            shard.upsert(part, part_ids)

    def remove(self, ids: Sequence[str]) -> int:
        return sum(shard.remove(part_ids) for shard, _, part_ids in self._route(None, ids))

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        allow: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
    ) -> tuple[list[list[str]], list[list[float]]]:
        """Every shard's top-k, merged: the same result as one index over all items."""
        queries = as_vectors(queries, self.dim)
        answers = list(self._pool.map(lambda shard: shard.search(queries, k, allow, exclude), self.shards))
        out_ids, out_scores = [], []
        for q in range(len(queries)):
            merged = sorted(
                ((score, item) for ids, scores in answers for item, score in zip(ids[q], scores[q], strict=True)),
                key=lambda pair: -pair[0],
            )[:k]
            out_ids.append([item for _, item in merged])
            out_scores.append([score for score, _ in merged])
        return out_ids, out_scores

    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and item_id in self.shards[shard_of(item_id, len(self.shards))]

    def info(self) -> dict:
        return {
            "model_id": self.model_id,
            "dim": self.dim,
            "count": len(self),
            "shards": [s.info() for s in self.shards],
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Each shard in `folder/shard-<i>` (each crash-safe), plus the shard count."""
        folder = Path(folder)
        for i, shard in enumerate(self.shards):
            shard.save(folder / f"shard-{i}")
        (folder / SHARDS_FILE).write_text(json.dumps({"shards": len(self.shards)}))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, model_id: str | None = None) -> ShardedStyleIndex:
        folder = Path(folder)
        try:
            count = json.loads((folder / SHARDS_FILE).read_text())["shards"]
        except (OSError, ValueError, KeyError) as exc:
            raise IndexFileError(f"no sharded index in {folder} ({exc})") from exc
        return cls([StyleIndex.load(folder / f"shard-{i}", model_id) for i in range(count)])
