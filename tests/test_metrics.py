"""Ranking metrics against hand-computed examples, and the splits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation import metrics
from recsys.evaluation.splits import leave_last_k_split, random_split, split, temporal_split, validation_split


def test_user_metrics_by_hand():
    # hits at ranks 1 and 3 of 4; 3 relevant items
    m = metrics.user_metrics(["a", "x", "b", "y"], {"a", "b", "c"}, k=4)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["hitrate"] == 1.0
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"] == pytest.approx(dcg / idcg)
    assert m["map"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_user_metrics_cut_at_k_and_misses():
    m = metrics.user_metrics(["x", "y", "a"], {"a"}, k=2)
    assert m == {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "hitrate": 0.0}
    perfect = metrics.user_metrics(["a", "b"], {"a", "b", "c", "d"}, k=2)
    assert perfect["ndcg"] == pytest.approx(1.0) and perfect["map"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.user_metrics(["a"], set(), k=1)


def test_ranking_metrics_means_over_users_with_relevant_items():
    recs = {"u1": ["a", "b"], "u2": ["c", "d"], "u3": ["e"]}
    relevant = {"u1": {"a"}, "u2": {"z"}, "u3": set(), "u4": {"a"}}  # u3 left out; u4 has no list: all misses
    m = metrics.ranking_metrics(recs, relevant, k=2)
    assert m["precision@2"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert m["hitrate@2"] == pytest.approx(1 / 3)


def test_catalog_measures():
    recs = {"u1": ["a", "b"], "u2": ["a", "c"]}
    assert metrics.coverage(recs, 10, k=2) == pytest.approx(0.3)
    assert metrics.cold_recall(recs, {"u1": {"b", "q"}, "u2": {"a"}}, cold_items={"b"}, k=2) == 1.0
    assert metrics.cold_recall(recs, {"u1": {"a"}}, cold_items={"zz"}, k=2) is None
    popularity = {"a": 10.0, "b": 1.0, "c": 5.0}
    assert metrics.popularity_bias({"u": ["a"]}, popularity, 1) == 1.0
    assert metrics.popularity_bias({"u": ["b", "new"]}, popularity, 2) == pytest.approx((1 / 3 + 0) / 2)
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 0.0]), "c": np.array([0.0, 1.0])}
    assert metrics.intra_list_similarity({"u": ["a", "b"]}, vectors, 2) == pytest.approx(1.0)
    assert metrics.intra_list_similarity({"u": ["a", "c", "b"]}, vectors, 3) == pytest.approx(1 / 3)
    assert metrics.intra_list_similarity({"u": ["x", "y"]}, vectors, 2) is None


@pytest.fixture()
def events() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{rng.integers(50)}", float(t), 1.0, "purchase") for u in range(20) for t in range(u % 7 + 1)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight", "event"])


def test_random_split_is_stratified_per_user(events):
    train, test = random_split(events, 0.25, seed=1)
    assert len(train) + len(test) == len(events)
    sizes = events.groupby("user_id").size()
    test_sizes = test.groupby("user_id").size().reindex(sizes.index, fill_value=0)
    for user, n in sizes.items():
        expected = 0 if n < 2 else min(max(round(n * 0.25), 1), n - 1)
        assert test_sizes[user] == expected
    again = random_split(events, 0.25, seed=1)[1]
    assert again.index.equals(test.index)  # same seed, same split


def test_temporal_and_leave_last_k(events):
    train, test = temporal_split(events, 3.0)
    assert train["timestamp"].max() < 3.0 <= test["timestamp"].min()
    train, test = leave_last_k_split(events, 2)
    for user, frame in test.groupby("user_id"):
        assert len(frame) == 2
        assert frame["timestamp"].min() >= train[train["user_id"] == user]["timestamp"].max()
    assert set(test["user_id"]) == set(events.groupby("user_id").filter(lambda f: len(f) > 2)["user_id"])
    train, test = split(events, "temporal", test_size=0.3)
    assert len(test) / len(events) == pytest.approx(0.3, abs=0.15)
    fit, held = validation_split(train, "temporal", test_duration=1.0)
    assert fit["timestamp"].max() < held["timestamp"].min()
    with pytest.raises(ValueError, match="unknown split"):
        split(events, "sideways")


def test_bootstrap_intervals_hold_the_mean_and_shrink_with_more_users():
    rng = np.random.default_rng(3)
    few = rng.binomial(1, 0.1, 100).astype(float)
    many = rng.binomial(1, 0.1, 10_000).astype(float)
    for values in (few, many):
        lo, hi = metrics.bootstrap_ci(values, seed=1)
        assert lo <= values.mean() <= hi
    assert (
        np.subtract(*metrics.bootstrap_ci(many, seed=1)[::-1])
        < np.subtract(*metrics.bootstrap_ci(few, seed=1)[::-1]) / 5
    )
    better = metrics.paired_bootstrap(few + 0.2, few, seed=1)
    assert better["difference"] == pytest.approx(0.2) and better["ci"][0] > 0 and better["p_not_better"] == 0.0
    same = metrics.paired_bootstrap(few, few, seed=1)
    assert same["ci"] == [0.0, 0.0] and same["p_not_better"] == 1.0
    with pytest.raises(ValueError):
        metrics.paired_bootstrap(few, many)
    per_user = metrics.per_user({"u1": ["a"], "u2": ["b"]}, {"u1": {"a"}, "u2": {"c"}}, k=1)
    assert list(per_user["ndcg@1"]) == [1.0, 0.0]
