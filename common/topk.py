"""Top-k: the positions of the k highest scores, best first, without sorting every score."""

from __future__ import annotations

import numpy as np

__all__ = ["top_k"]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions (int64) of the `k` highest `scores`, best first; equal scores keep their order of position.

    `k <= 0` or no scores give an empty array; `k >= len(scores)` gives every position, fully ordered.
    NaN policy: a NaN counts as `-inf` (it never ranks above a real score; among `-inf`s and NaNs, position
    decides). The cost is one `np.partition` over all scores plus a sort of the k kept, never a full sort.
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"top_k takes a 1-D array of scores, not shape {scores.shape}")
    k = min(int(k), len(scores))
    if k <= 0:
        return np.zeros(0, np.int64)
    if np.issubdtype(scores.dtype, np.floating):
        if np.isnan(scores).any():
            scores = np.where(np.isnan(scores), -np.inf, scores)
    else:
        scores = scores.astype(np.float64)  # so that negating is safe for unsigned and bool scores
    if k < len(scores):
        threshold = -np.partition(-scores, k - 1)[k - 1]  # the k-th highest score
        above = np.flatnonzero(scores > threshold)
        head = np.sort(np.concatenate([above, np.flatnonzero(scores == threshold)[: k - len(above)]]))
    else:
        head = np.arange(len(scores), dtype=np.int64)
    return head[np.argsort(-scores[head], kind="stable")].astype(np.int64, copy=False)
