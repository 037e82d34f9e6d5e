"""Co-purchase lists as arrays a web worker memory-maps, read through a mapping like the dict they replace.

`stylerec train` writes them into its tables version beside `co_purchases.parquet` (CSR over item positions):
`co_ids.npy` (every item id of the lists, sorted fixed-width bytes), `co_offsets.npy` (where each item's list
starts), `co_other.npy` (the other items' positions) and `co_n.npy` (the counts), each list most often first. A
worker maps them read-only (`CoBought`): the pages are shared by every worker of the host, and an item's list is
built when the feed asks for it, so nothing per pair lives in a worker's private memory (only the item ids, as
strings, which the catalog bounds).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.models.cf_arrays import SortedIds

CO_IDS, CO_OFFSETS, CO_OTHER, CO_N = "co_ids.npy", "co_offsets.npy", "co_other.npy", "co_n.npy"


def write_co_purchases(folder: Path, table: pd.DataFrame) -> None:
    """Write a co-purchase table (item_id, other, n; sorted by item, most often first: `co_purchase_table`) as
    the arrays `CoBought` maps."""
    items = table["item_id"].astype(str).to_numpy()
    others = table["other"].astype(str).to_numpy()
    ids, _ = SortedIds.build(sorted(set(items) | set(others)))
    keys = ids.keys
    position = {item: at for at, item in enumerate(ids.tolist())}  # the batch's, bounded by the catalog
    item_at = np.fromiter((position[i] for i in items), np.int64, len(items))
    other_at = np.fromiter((position[i] for i in others), np.int64, len(others))
    order = np.argsort(item_at, kind="stable")  # grouped by item, each list in the table's order
    offsets = np.zeros(len(keys) + 1, np.int64)
    np.cumsum(np.bincount(item_at, minlength=len(keys)), out=offsets[1:])
    np.save(folder / CO_IDS, keys)
    np.save(folder / CO_OFFSETS, offsets)
    np.save(folder / CO_OTHER, other_at[order].astype(np.int32))
    np.save(folder / CO_N, table["n"].to_numpy(np.float64)[order])


def has_co_purchases(folder: Path) -> bool:
    """Whether `folder` holds the arrays (tables versions written before them hold only the Parquet table)."""
    return all((folder / name).is_file() for name in (CO_IDS, CO_OFFSETS, CO_OTHER, CO_N))


class CoBought(Mapping[str, list[tuple[str, float]]]):
    """item -> [(other item, co-purchases)], most often first, read from memory-mapped arrays on each lookup
    (a binary search for the item, then its slice); read-only."""

    def __init__(self, folder: Path) -> None:
        def mapped(name: str) -> np.ndarray:  # a plain array over the map: memmap's own slicing costs ~10 us
            return np.asarray(np.load(folder / name, mmap_mode="r", allow_pickle=False))

        self._ids = SortedIds(mapped(CO_IDS))
        self._offsets, self._other, self._n = mapped(CO_OFFSETS), mapped(CO_OTHER), mapped(CO_N)
        if len(self._offsets) != len(self._ids) + 1 or len(self._other) != len(self._n):
            raise ValueError(f"the co-purchase arrays in {folder} do not match")
        # the item ids as strings once (bounded by the catalog, like the item tables); the pairs stay mapped
        self._names = self._ids.tolist()

    def __getitem__(self, item: str) -> list[tuple[str, float]]:
        at = self._ids.position(item) if isinstance(item, str) else None
        start, end = (int(self._offsets[at]), int(self._offsets[at + 1])) if at is not None else (0, 0)
        if start == end:
            raise KeyError(item)
        names = self._names
        return [
            (names[j], n) for j, n in zip(self._other[start:end].tolist(), self._n[start:end].tolist(), strict=True)
        ]

    def __iter__(self) -> Iterator[str]:
        sizes = np.diff(self._offsets)
        return (self._ids.keys[j].decode("utf-8") for j in np.flatnonzero(sizes).tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(np.diff(self._offsets)))
