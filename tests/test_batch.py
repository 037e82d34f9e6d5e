"""The batch step's tables: each equals a small hand-computed answer and the plain in-memory count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.batch.tables import co_purchases
from recsys.hybrid import DAY


def plain_co_purchases(past: pd.DataFrame, days: float, keep: int = 30, max_per_shopper: int = 500) -> dict:
    """The in-memory self-join the batch count replaced: the reference answer."""
    events = past[["user_id", "item_id", "timestamp"]].drop_duplicates()
    events = events.sort_values("timestamp", ascending=False, kind="stable")
    events = events[events.groupby("user_id").cumcount() < max_per_shopper]
    pairs = events.merge(events, on="user_id", suffixes=("", "_other"))
    close = (pairs["item_id"] != pairs["item_id_other"]) & (
        (pairs["timestamp"] - pairs["timestamp_other"]).abs() <= days * DAY
    )
    pairs = pairs.loc[close, ["user_id", "item_id", "item_id_other"]].drop_duplicates()
    counts = pairs.groupby(["item_id", "item_id_other"]).size().rename("n").reset_index()
    counts = counts.sort_values(["item_id", "n", "item_id_other"], ascending=[True, False, True], kind="stable")
    counts = counts[counts.groupby("item_id").cumcount() < keep]
    out: dict = {}
    for item, other, n in zip(counts["item_id"], counts["item_id_other"], counts["n"], strict=True):
        out.setdefault(item, []).append((other, float(n)))
    return out


def test_co_purchases_on_a_hand_computed_shop():
    rows = [
        ("u1", "tee", 0), ("u1", "jeans", 2), ("u1", "belt", 20),  # belt is two weeks later: no pair with it
        ("u2", "tee", 5), ("u2", "jeans", 5), ("u2", "jeans", 6),  # a repeat counts u2 once per pair
        ("u3", "jeans", 1), ("u3", "belt", 7), ("u3", "hat", 9),  # jeans-belt within 7 days, jeans-hat 8 days apart
    ]  # fmt: skip
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    events = events.assign(timestamp=events["day"] * DAY)
    got = co_purchases(events, days=7)
    assert got == {
        "tee": [("jeans", 2.0)],
        "jeans": [("tee", 2.0), ("belt", 1.0)],  # most often first, then by id
        "belt": [("hat", 1.0), ("jeans", 1.0)],
        "hat": [("belt", 1.0)],
    }
    assert got == plain_co_purchases(events, days=7)
    assert co_purchases(events, days=7, keep=1)["jeans"] == [("tee", 2.0)]
    assert co_purchases(events.iloc[:0], days=7) == {}


def test_co_purchases_equal_the_plain_count_with_ties_and_a_cap():
    """Random shop with equal timestamps at the per-shopper cap: the same answer, tie-breaks included."""
    rng = np.random.default_rng(3)
    n = 4000
    events = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 150, n)],
            "item_id": [f"i{i:03d}" for i in (rng.zipf(1.6, n) % 300)],
            "timestamp": rng.integers(0, 60, n) * DAY / 2,  # many equal timestamps
        }
    )
    for days, keep, cap in [(7, 30, 500), (3, 5, 12), (1e9, 30, 4)]:
        assert co_purchases(events, days, keep, cap) == plain_co_purchases(events, days, keep, cap)


def test_co_purchases_equal_the_plain_count_on_the_hm_sample(datasets):
    path = datasets / "hm" / "transactions.csv"
    if not path.is_file():
        pytest.skip("the H&M sample is not in the datasets folder")
    from recsys.data_io import read_interactions

    events = read_interactions(path)
    assert co_purchases(events, 7) == plain_co_purchases(events, 7)


def test_top_k_is_the_head_of_a_stable_sort():
    from recsys.hybrid import top_k

    scores = np.random.default_rng(0).integers(0, 20, 500).astype(float)
    full = np.argsort(-scores, kind="stable")
    for k in (1, 7, 200, 500, 900):
        assert top_k(scores, k).tolist() == full[:k].tolist()
    assert top_k(scores, 0).tolist() == [] and top_k(np.zeros(0), 3).tolist() == []
