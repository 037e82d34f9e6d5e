"""String item ids <-> the int64 labels FAISS stores: one mapping, saved with the index."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from common.errors import NotFound


class IdMap:
    """Assigns each new item id the next int64 label; labels are never reused, so a removed id cannot alias."""

    def __init__(self, ids: Iterable[str] = (), labels: Iterable[int] = (), next_label: int | None = None) -> None:
        self._label: dict[str, int] = dict(zip(ids, (int(x) for x in labels), strict=True))
        self._id: dict[int, str] = {label: item_id for item_id, label in self._label.items()}
        self.next_label = max(self._id, default=-1) + 1 if next_label is None else next_label

    def __len__(self) -> int:
        return len(self._label)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._label

    def assign(self, ids: Iterable[str]) -> np.ndarray:
        """Labels for new ids (ValueError if any is already mapped or repeated)."""
        ids = list(ids)
        clash = [i for i in ids if i in self._label]
        if clash or len(set(ids)) != len(ids):
            raise ValueError(f"item ids already in the index or repeated: {(clash or ids)[:5]}")
        labels = np.arange(self.next_label, self.next_label + len(ids), dtype=np.int64)
        for item_id, label in zip(ids, labels.tolist(), strict=True):
            self._label[item_id] = label
            self._id[label] = item_id
        self.next_label += len(ids)
        return labels

    def labels(self, ids: Iterable[str], strict: bool = True) -> np.ndarray:
        """Labels of known ids; unknown ids raise KeyError (strict) or are skipped."""
        out = []
        for item_id in ids:
            if item_id in self._label:
                out.append(self._label[item_id])
            elif strict:
                raise NotFound(f"unknown item id {item_id!r}")
        return np.asarray(out, dtype=np.int64)

    def drop(self, ids: Iterable[str]) -> np.ndarray:
        labels = self.labels(ids)
        for label in labels.tolist():
            del self._label[self._id.pop(label)]
        return labels

    def ids(self, labels: np.ndarray) -> list[str | None]:
        """Item ids of FAISS labels (None for -1, FAISS's 'no result')."""
        get = self._id.get
        return [get(x) for x in np.asarray(labels).tolist()]

    def items(self) -> tuple[list[str], list[int]]:
        pairs = sorted(self._label.items(), key=lambda p: p[1])
        return [p[0] for p in pairs], [p[1] for p in pairs]
