"""One popularity: the blend's `Popularity`, the batch tables' `pop_decayed` and the `popularity` baseline all
come from `recsys.batch.tables.decayed_popularity_sql`, and give what the formula says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.batch.engine import connect
from recsys.batch.tables import DAY, item_table
from recsys.models.hybrid import Popularity


def _events(seed: int = 0, n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": [f"u{u:03d}" for u in rng.integers(0, 150, n)],
            "item_id": [f"i{i:03d}" for i in rng.zipf(1.6, n) % 120],
            "timestamp": rng.uniform(0, 200 * DAY, n).round(),
            "weight": rng.choice([1.0, 2.0, 0.5], n),
        }
    )


def _by_the_formula(events: pd.DataFrame, half_life_days: float | None) -> dict[str, float]:
    """The definition written out: each event's weight halving every half-life before the latest event."""
    weight = events["weight"].to_numpy(float)
    if half_life_days:
        age = events["timestamp"].max() - events["timestamp"].to_numpy(float)
        weight = weight * np.exp2(-age / (half_life_days * DAY))
    return pd.Series(weight, index=events["item_id"].to_numpy()).groupby(level=0).sum().to_dict()


@pytest.mark.parametrize("half_life", [30.0, 7.0, None])
def test_popularity_is_the_formula_ranked_with_ties_by_id(half_life):
    events = _events()
    popularity = Popularity(events, half_life)
    expected = _by_the_formula(events, half_life)
    assert popularity.scores == pytest.approx(expected, rel=1e-12)
    assert popularity.ranked == sorted(expected, key=lambda i: (-popularity.scores[i], i))


def test_events_without_weights_count_once_and_no_events_is_empty():
    events = _events().drop(columns="weight")
    assert Popularity(events, None).scores == events["item_id"].value_counts().astype(float).to_dict()
    empty = Popularity(events.iloc[:0])
    assert empty.scores == {} and empty.top(5) == []


def test_tied_items_rank_by_id():
    events = pd.DataFrame({"item_id": ["b", "a", "c", "c"], "timestamp": [5.0, 5.0, 5.0, 5.0]})
    assert Popularity(events).ranked == ["c", "a", "b"]
    assert Popularity.from_scores({"b": 1.0, "a": 1.0, "c": 2.0}).ranked == ["c", "a", "b"]


def test_the_batch_tables_count_the_same_popularity():
    events = _events(1)
    con = connect(threads=1)
    try:
        con.register("events_frame", events)
        table = item_table(con, "SELECT * FROM events_frame", now=float(events["timestamp"].max()) + 1)
    finally:
        con.close()
    decayed = dict(zip(table["item_id"], table["pop_decayed"].astype(float), strict=True))
    assert decayed == pytest.approx(Popularity(events, 30.0).scores, rel=1e-12)
    assert Popularity.from_scores(decayed).ranked == Popularity(events, 30.0).ranked
