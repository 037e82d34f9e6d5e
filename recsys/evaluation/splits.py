"""Train/test splits of an interaction table (see `recsys.store.data_io`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.errors import BadInput

SPLITS = ("temporal", "leave-last-k", "random")


def temporal_split(
    interactions: pd.DataFrame, cutoff: float, end: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train = events before `cutoff` (epoch seconds), test = events from `cutoff` up to `end` (exclusive)."""
    before = interactions["timestamp"] < cutoff
    after = ~before if end is None else ~before & (interactions["timestamp"] < end)
    return interactions[before], interactions[after]


def leave_last_k_split(interactions: pd.DataFrame, k: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's last k events (by time) go to test; users with k events or fewer stay whole in train."""
    if k < 1:
        raise ValueError("k must be at least 1")
    ordered = interactions.sort_values("timestamp", kind="stable")
    from_end = ordered.groupby("user_id").cumcount(ascending=False)
    sizes = ordered.groupby("user_id")["item_id"].transform("size")
    test = (from_end < k) & (sizes > k)
    return ordered[~test].sort_index(), ordered[test].sort_index()


def random_split(
    interactions: pd.DataFrame, test_size: float = 0.25, seed: int = 42, min_events: int = 2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user stratified random split: each user with at least `min_events` events puts round(test_size * n)
    of them (at least one, never all) in test; Microsoft Recommenders' `python_stratified_split` protocol."""
    if not 0 < test_size < 1:
        raise ValueError("test_size must be between 0 and 1")
    rng = np.random.default_rng(seed)
    shuffled = interactions.iloc[rng.permutation(len(interactions))]
    rank = shuffled.groupby("user_id").cumcount()
    sizes = shuffled.groupby("user_id")["item_id"].transform("size")
    n_test = np.clip(np.round(sizes * test_size), 1, sizes - 1)
    test = (rank < n_test) & (sizes >= min_events)
    return shuffled[~test].sort_index(), shuffled[test].sort_index()


def split(
    interactions: pd.DataFrame,
    method: str,
    test_size: float = 0.25,
    seed: int = 42,
    cutoff: float | None = None,
    last_k: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One entry point for the CLI: `temporal` (at `cutoff`, or at the time that leaves `test_size` of the
    events after it), `leave-last-k`, or `random`."""
    if method == "temporal":
        if cutoff is None:
            cutoff = float(interactions["timestamp"].quantile(1 - test_size))
        return temporal_split(interactions, cutoff)
    if method == "leave-last-k":
        return leave_last_k_split(interactions, last_k)
    if method == "random":
        return random_split(interactions, test_size, seed)
    raise BadInput(f"unknown split {method!r} (one of {', '.join(SPLITS)})")


def validation_split(
    train: pd.DataFrame, method: str, test_duration: float | None = None, seed: int = 42, last_k: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve a validation set from training data the same way the test set was made (for tuning alpha):
    temporal = the last `test_duration` seconds of train; leave-last-k and random as their test splits."""
    if method == "temporal":
        end = float(train["timestamp"].max())
        duration = test_duration if test_duration else (end - float(train["timestamp"].min())) * 0.1
        return temporal_split(train, end - duration + 1e-9)
    if method == "leave-last-k":
        return leave_last_k_split(train, last_k)
    return random_split(train, 0.25, seed + 1)
