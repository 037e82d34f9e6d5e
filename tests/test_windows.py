"""The ranker's training windows out of core (DuckDB over Parquet) equal the in-memory ones, and never fetch the
events table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.batch.engine import connect
from recsys.batch.windows import WINDOW_END, iter_folds
from recsys.candidates import ItemInfo
from recsys.models.ranker import LearnedRanker, RankerConfig, iter_training_folds
from recsys.store.data_io import read_catalog, read_interactions

CONFIG = RankerConfig(windows=3, max_users_per_window=150, rounds=30, min_data_in_leaf=20, window_cf_iterations=3)


def _parquet(interactions: pd.DataFrame, path) -> str:
    """The events as `stylerec train` exports them (an `id` per event), rows shuffled: order comes from `id`."""
    frame = interactions[["user_id", "item_id", "timestamp", "weight"]].assign(id=np.arange(1, len(interactions) + 1))
    frame = frame.sample(frac=1.0, random_state=0)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return f"SELECT user_id, item_id, timestamp, weight, id AS rid FROM read_parquet('{path}')"


def _shop(demo_shop):
    catalog_dir, _, style = demo_shop
    events = read_interactions(catalog_dir / "interactions.csv")
    events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if "weight" not in events:
        events["weight"] = 1.0
    return events, ItemInfo(read_catalog(catalog_dir)), style


def test_a_window_built_out_of_core_equals_the_in_memory_one(demo_shop, tmp_path):
    events, items, style = _shop(demo_shop)
    source = _parquet(events, tmp_path / "events.parquet")
    in_memory = iter_training_folds(events, items, style, CONFIG, sampled_histories=True)
    con = connect()
    try:
        out_of_core = iter_folds(con, source, items, style, CONFIG)
        learner = LearnedRanker(CONFIG)
        n = 0
        for (a, labels_a), (b, labels_b) in zip(in_memory, out_of_core, strict=True):
            n += 1
            assert a.now == b.now and a.allowed == b.allowed
            assert a.popularity == b.popularity and list(a.popularity["7d"]) == list(b.popularity["7d"])
            assert a.first_sale == b.first_sale and a.last_sale == b.last_sale and a.repeat_rate == b.repeat_rate
            assert a.co_bought == b.co_bought and a.trending == b.trending
            assert a.style_neighbour_popularity == b.style_neighbour_popularity
            assert a.cf.user_ids == b.cf.user_ids and a.cf.item_ids == b.cf.item_ids
            assert (a.cf.counts != b.cf.counts).nnz == 0
            np.testing.assert_allclose(a.cf.item_factors, b.cf.item_factors, rtol=1e-4, atol=1e-5)
            assert a.histories.keys() == b.histories.keys() and 0 < len(a.histories) <= CONFIG.max_users_per_window
            for user, history in a.histories.items():
                pd.testing.assert_frame_equal(history.reset_index(drop=True), b.histories[user].reset_index(drop=True))
                assert history["timestamp"].max() < a.now
            columns = ["user_id", "item_id", "timestamp", "weight"]
            assert labels_a[columns].values.tolist() == labels_b[columns].values.tolist()
            assert list(labels_a.index + 1) == list(labels_b.index)  # the frame's rows, the export's event ids
            assert labels_a.attrs[WINDOW_END] == labels_b.attrs[WINDOW_END]
            assert labels_a["timestamp"].min() >= a.now and labels_a["user_id"].nunique() <= CONFIG.max_users_per_window
            xa, ya, ga = learner._examples(a, labels_a)
            xb, yb, gb = learner._examples(b, labels_b)
            assert ga == gb and len(ga) > 0
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_allclose(xa, xb, rtol=1e-4, atol=1e-5, equal_nan=True)
        assert n == CONFIG.windows
    finally:
        con.close()


def test_sampled_windows_learn_what_full_windows_learn(demo_shop):
    """Keeping only the sampled shoppers' histories and labels changes nothing the ranker learns from."""
    events, items, style = _shop(demo_shop)
    config = CONFIG.model_copy(update={"windows": 2})
    learner = LearnedRanker(config)
    full = iter_training_folds(events, items, style, config, sampled_histories=False)
    sampled = iter_training_folds(events, items, style, config, sampled_histories=True)
    for (a, labels_a), (b, labels_b) in zip(full, sampled, strict=True):
        assert len(b.histories) < len(a.histories) and len(labels_b) < len(labels_a)
        assert labels_a.attrs[WINDOW_END] == labels_b.attrs[WINDOW_END]
        xa, ya, ga = learner._examples(a, labels_a)
        xb, yb, gb = learner._examples(b, labels_b)
        assert ga == gb
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_allclose(xa, xb, rtol=1e-4, atol=1e-5, equal_nan=True)


class _Recording:
    """A DuckDB connection that records every result fetched: (rows, columns, distinct user ids in it)."""

    def __init__(self, con) -> None:
        self.con, self.fetched = con, []

    def __getattr__(self, name: str):
        return getattr(self.con, name)

    def execute(self, query: str, *args):
        self.con.execute(query, *args)
        return self

    def df(self) -> pd.DataFrame:
        frame = self.con.df()
        users = frame["user_id"].nunique() if "user_id" in frame else 0
        self.fetched.append((len(frame), list(frame.columns), users))
        return frame

    def fetchnumpy(self) -> dict:
        arrays = self.con.fetchnumpy()
        rows = max((len(v) for v in arrays.values()), default=0)
        self.fetched.append((rows, list(arrays), 0))
        assert all(np.issubdtype(v.dtype, np.number) for v in arrays.values()), "numbers only (CF's codes)"
        return arrays

    def fetchall(self) -> list:
        rows = self.con.fetchall()
        self.fetched.append((len(rows), ["?"], 0))
        return rows

    def fetchone(self):
        return self.con.fetchone()


def test_training_windows_out_of_core_never_fetch_the_events(demo_shop, tmp_path):
    """Out of core, the only per-event rows fetched are the sampled shoppers' (histories and labels); the rest
    is bounded by the items and shoppers (item tables, co-purchase lists, CF's ids and integer codes). The ranker
    trained on them is the in-memory path's."""
    events, items, style = _shop(demo_shop)
    source = _parquet(events, tmp_path / "events.parquet")
    config = CONFIG.model_copy(update={"max_users_per_window": 30})
    con = _Recording(connect())
    try:
        ranker = LearnedRanker(config).fit(None, items, style, folds=iter_folds(con, source, items, style, config))
    finally:
        con.con.close()
    per_event = [(rows, users) for rows, columns, users in con.fetched if "user_id" in columns]
    assert per_event and all(users <= config.max_users_per_window for _, users in per_event)
    assert max(rows for rows, _ in per_event) < len(events) / 3
    fetched_items = [rows for rows, columns, _ in con.fetched if "item_id" in columns and "user_id" not in columns]
    assert fetched_items and max(fetched_items) <= len(items.title) * 31  # item tables, <= 30 co-purchases each
    reference = LearnedRanker(config).fit(events, items, style)
    assert ranker.trained and ranker.windows == reference.windows and ranker.training == reference.training
