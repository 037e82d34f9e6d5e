"""The embedding store: style vectors with their item ids, source files and embedding model id.

On disk (one folder): `embeddings.parquet` (item_id, path, sha1, vector), `encoder.json` (config and model
id), `projection.npz` (the fitted projection) and `failures.json` (files that could not be embedded, why).
Every file is written to a temporary name, fsynced and renamed, so a reader never sees half a store.
No torch here: the index and the service read stores without the encoder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.atomic import atomic_write
from common.errors import NotFound, StylerecError
from common.topk import top_k

EMBEDDINGS_FILE = "embeddings.parquet"
ENCODER_FILE = "encoder.json"
PROJECTION_FILE = "projection.npz"
FAILURES_FILE = "failures.json"


class StoreError(StylerecError, ValueError):
    """A store that is missing, inconsistent, or asked for something it does not hold. The service cannot
    search by style without it: 503."""

    http_status = 503

    @property
    def detail(self) -> str:
        return f"style search is unavailable: {self.message}"


@dataclass
class EmbeddingStore:
    """Vectors (N, d) float32, L2-normalised, all from the embedding model `model_id`."""

    model_id: str
    encoder: dict
    ids: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    sha1: list[str] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    failures: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vectors.size == 0:
            self.vectors = np.zeros((0, int(self.encoder.get("dim", 0))), np.float32)
        if not (len(self.ids) == len(self.paths) == len(self.sha1) == len(self.vectors)):
            raise StoreError("ids, paths, sha1 and vectors differ in length")
        self._row = {item_id: i for i, item_id in enumerate(self.ids)}
        if len(self._row) != len(self.ids):
            raise StoreError("duplicate item ids in the store")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def row(self, item_id: str) -> int:
        """Position of an item in `ids`, `paths`, `sha1` and `vectors`; `KeyError` with the id when unknown."""
        try:
            return self._row[item_id]
        except KeyError:
            raise NotFound(f"unknown item id {item_id!r}") from None

    def vector(self, item_id: str) -> np.ndarray:
        """The style vector of one item; `KeyError` with the id when unknown."""
        return self.vectors[self.row(item_id)]

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def similar(self, query: np.ndarray, k: int = 10, exclude: str | None = None) -> list[tuple[str, float]]:
        """Exact top-k by cosine (inner product of unit vectors)."""
        if len(self) == 0:
            return []
        scores = self.vectors @ np.asarray(query, np.float32)
        if exclude is not None and exclude in self._row:
            scores[self._row[exclude]] = -np.inf
        k = min(k, len(self) - (exclude in self._row))
        top = top_k(scores, k)
        return [(self.ids[i], float(scores[i])) for i in top]

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> None:
        """Write the store's table, encoder description and failures (each atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(self.vectors.reshape(-1), pa.float32()), self.dim)
        table = pa.table(
            {
                "item_id": pa.array(self.ids, pa.string()),
                "path": pa.array(self.paths, pa.string()),
                "sha1": pa.array(self.sha1, pa.string()),
                "vector": vectors,
            },
            metadata={"model_id": self.model_id},
        )
        atomic_write(folder / EMBEDDINGS_FILE, lambda f: pq.write_table(table, f))
        encoder = {**self.encoder, "model_id": self.model_id, "dim": self.dim, "count": len(self)}
        atomic_write(folder / ENCODER_FILE, lambda f: f.write(json.dumps(encoder, indent=2).encode()))
        atomic_write(folder / FAILURES_FILE, lambda f: f.write(json.dumps(self.failures, indent=2).encode()))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> EmbeddingStore:
        """Read a store; `StoreError` when it is missing or its parts disagree."""
        folder = Path(folder)
        if not (folder / EMBEDDINGS_FILE).exists() or not (folder / ENCODER_FILE).exists():
            raise StoreError(f"no embedding store in {folder} (run `stylerec embed IMAGES_DIR --out {folder}`)")
        encoder = json.loads((folder / ENCODER_FILE).read_text())
        table = pq.read_table(folder / EMBEDDINGS_FILE)
        model_id = (table.schema.metadata or {}).get(b"model_id", b"").decode()
        if model_id != encoder.get("model_id"):
            raise StoreError(
                f"{folder}: vectors are from model {model_id!r}, encoder.json says {encoder['model_id']!r}"
            )
        dim = int(encoder["dim"])
        column = table.column("vector").combine_chunks()
        vectors = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
        failures_path = folder / FAILURES_FILE
        failures = json.loads(failures_path.read_text()) if failures_path.exists() else {}
        return cls(
            model_id=model_id,
            encoder={k: v for k, v in encoder.items() if k not in ("model_id", "count")},
            ids=table.column("item_id").to_pylist(),
            paths=table.column("path").to_pylist(),
            sha1=table.column("sha1").to_pylist(),
            vectors=vectors,
            failures=failures,
        )
