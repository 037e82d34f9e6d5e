"""The served form of a collaborative filtering model: flat `.npy` arrays that web workers memory-map.

A CF version folder holds `cf.json` (config, item ids, the format) and one `.npy` file per array: the user ids as
a sorted fixed-width bytes array (`SortedIds`, looked up by binary search), user and item factors, the BM25
statistics and the users x items counts as CSR (indptr, indices, data). `read_arrays` maps them read-only
(`np.load(mmap_mode="r")`; the item factors copy-on-write): every worker of a host serving the same version
shares the pages through the page cache, so a worker's private memory does not grow with the shoppers or the
events. The files of a version are never rewritten (a new version is a new folder), so a mapping stays valid
while another process publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ARRAYS_FORMAT = 2  # `cf.json`'s "format": 2 is this layout; folders without it are the older npz/JSON one
USER_IDS, USER_FACTORS, ITEM_FACTORS, IDF = "user_ids.npy", "user_factors.npy", "item_factors.npy", "idf.npy"
INDPTR, INDICES, DATA = "counts_indptr.npy", "counts_indices.npy", "counts_data.npy"


def _encode(text: str) -> bytes:
    """UTF-8, lone surrogates (ids decoded from broken input) kept rather than an error."""
    return text.encode("utf-8", "surrogatepass")


def _decode(key: bytes) -> str:
    return key.decode("utf-8", "surrogatepass")


class SortedIds:
    """Ids as a sorted fixed-width bytes array (UTF-8), a position per id by binary search: no dict, no Python
    string per id. The array may be a read-only memory map."""

    def __init__(self, keys: np.ndarray) -> None:
        if keys.ndim != 1 or keys.dtype.kind != "S":
            raise ValueError(f"ids must be a 1-d bytes array, not {keys.dtype} of shape {keys.shape}")
        self.keys = keys

    @classmethod
    def build(cls, ids: list[str]) -> tuple[SortedIds, np.ndarray]:
        """(the ids sorted by their UTF-8 bytes, the order: `order[position] = index in ids`). Raises
        ValueError on duplicates or on ids that the fixed-width array cannot hold (ending in a NUL)."""
        keys = np.array([_encode(i) for i in ids], dtype=bytes) if ids else np.zeros(0, "S1")
        if any(i.endswith("\x00") for i in ids):
            raise ValueError("an id ends with a NUL character")
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        if len(keys) > 1 and not np.all(keys[1:] > keys[:-1]):
            raise ValueError("ids are not unique")
        return cls(keys), order

    def __len__(self) -> int:
        return len(self.keys)

    def position(self, item: str | None) -> int | None:
        """The id's position in the sorted array, or None when it is not there. O(log n), reads log n pages."""
        if item is None:
            return None
        key = _encode(item)
        if len(key) > self.keys.dtype.itemsize or not key or key.endswith(b"\x00"):
            return None  # longer than every id (the cast below would cut it), or not storable
        at = int(np.searchsorted(self.keys, np.array(key, dtype=self.keys.dtype)))
        return at if at < len(self.keys) and self.keys[at] == key else None

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and self.position(item) is not None

    def tolist(self) -> list[str]:
        """Every id as a string, in order (O(n) memory: for saving and tests, not for serving)."""
        return [_decode(k) for k in self.keys.tolist()]


@dataclass
class CFArrays:
    """The arrays of one CF version (memory maps when read by `read_arrays`)."""

    users: SortedIds
    user_factors: np.ndarray
    item_factors: np.ndarray
    idf: np.ndarray
    counts: sp.csr_matrix


def write_arrays(folder: Path, arrays: CFArrays) -> None:
    """Write `arrays` as `.npy` files into `folder` (users must be sorted: `SortedIds`)."""
    counts = arrays.counts.tocsr()
    np.save(folder / USER_IDS, np.ascontiguousarray(arrays.users.keys))
    np.save(folder / USER_FACTORS, np.ascontiguousarray(arrays.user_factors, np.float32))
    np.save(folder / ITEM_FACTORS, np.ascontiguousarray(arrays.item_factors, np.float32))
    np.save(folder / IDF, np.ascontiguousarray(arrays.idf, np.float32))
    np.save(folder / INDPTR, counts.indptr)
    np.save(folder / INDICES, counts.indices)
    np.save(folder / DATA, counts.data.astype(np.float32, copy=False))


def read_arrays(folder: Path, n_items: int) -> CFArrays:
    """Map the `.npy` files of `folder` read-only; nothing is copied into the process's private memory."""

    def mapped(name: str, mode: str = "r") -> np.ndarray:  # a plain array over the map: memmap's slicing is slow
        return np.asarray(np.load(folder / name, mmap_mode=mode, allow_pickle=False))

    users = SortedIds(mapped(USER_IDS))
    indptr, indices, data = mapped(INDPTR), mapped(INDICES), mapped(DATA)
    if len(indptr) != len(users) + 1 or len(indices) != len(data):
        raise ValueError(f"the counts in {folder} do not match its {len(users)} users")
    counts = sp.csr_matrix((data, indices, indptr), shape=(len(users), n_items), copy=False)
    # item factors copy-on-write: shared pages as well, but a writable buffer, which implicit's fold-in solver
    # (Cython) insists on although it only reads them
    return CFArrays(users, mapped(USER_FACTORS), mapped(ITEM_FACTORS, "c"), mapped(IDF), counts)


def is_mapped(array: np.ndarray) -> bool:
    """Whether `array` is a view of a memory-mapped file (not a copy in the process's own memory)."""
    import mmap

    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False
