"""The shop as of a moment and the ranker's training windows, built by DuckDB over an events relation.

One way to build a `Snapshot` for both paths: `stylerec train` points `source` at the exported Parquet file (the
events never enter pandas), and `Snapshot.build` / `recsys.models.ranker.iter_training_folds` register their frame with
DuckDB (`frame_source`) and run the same queries. `source` is SQL naming the events with columns user_id, item_id,
timestamp, weight and rid (the row's position: it breaks ties between events of the same second).

What a snapshot as of `now` holds and where it comes from (events before `now` only):
- item facts (popularity over 7 / 30 days and in all, first and last sale, repeat rate): `item_table`;
- bought-together lists: `co_purchase_table`, a grouped count that spills to disk;
- collaborative filtering: fitted on the (shopper, item, summed weight) table DuckDB aggregates, as integer codes
  (no per-event frame, no per-event strings);
- histories of the shoppers asked for only (a training window's sample; none for a web worker).
A training window's labels are the purchases of its sampled shoppers inside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.batch.tables import co_purchase_table, item_facts, item_table, table_to_lists
from recsys.candidates.base import ItemInfo, Snapshot, _style_neighbour_popularity
from recsys.models.cf import CFConfig, CollaborativeFilter
from recsys.models.hybrid import StyleSpace

log = logging.getLogger(__name__)

FRAME_NAME = "stylerec_events_frame"
SHOPPERS_NAME = "stylerec_window_shoppers"
WINDOW_END = "window_end"  # labels.attrs key: one past the window's last purchase (of every shopper, not a sample)


def frame_source(con: duckdb.DuckDBPyConnection, interactions: pd.DataFrame, name: str = FRAME_NAME) -> str:
    """Register a frame of events (user_id, item_id, timestamp, optional weight) with `con`, with `rid` its row
    position; returns the SQL naming it (a `source` for the functions here). Ids are compared as strings."""
    n = len(interactions)

    def ids(column: str) -> np.ndarray:
        values = interactions[column]
        return values.to_numpy() if pd.api.types.is_string_dtype(values) else values.astype(str).to_numpy()

    frame = pd.DataFrame(
        {
            "user_id": ids("user_id") if n else np.array([], object),
            "item_id": ids("item_id") if n else np.array([], object),
            "timestamp": interactions["timestamp"].to_numpy(float),
            "weight": interactions["weight"].to_numpy(float) if "weight" in interactions else np.ones(n),
            "rid": np.arange(n, dtype=np.int64),
        }
    )
    con.register(name, frame)
    return f"SELECT user_id, item_id, timestamp, weight, rid FROM {name}"


def _past(source: str, now: float) -> str:
    return f"SELECT * FROM ({source}) WHERE timestamp < {float(now)!r}"


def snapshot_at(
    con: duckdb.DuckDBPyConnection,
    source: str,
    now: float,
    items: ItemInfo,
    style: StyleSpace | None = None,
    cf: CollaborativeFilter | None = None,
    cf_config: CFConfig | None = None,
    allowed: Iterable[str] | None = None,
    together_days: float = 7.0,
    shoppers: Iterable[str] | None = None,
) -> Snapshot:
    """The shop as of `now` from the events of `source` before it (see the module docstring): `cf` is fitted on
    them unless given; `allowed` (default: the catalog's and every item sold before `now`) limits what may be
    proposed; `shoppers`: keep only these shoppers' histories (None: everyone's)."""
    past = _past(source, now)
    table = item_table(con, past, now)

    facts = item_facts(table)
    popularity = facts["popularity"]
    ids = table["item_id"].tolist()
    if cf is None and len(ids):
        cf = fit_cf(con, past, cf_config or CFConfig())
    allowed = set(allowed) if allowed is not None else set(items.title) | set(ids)
    pairs = f"SELECT user_id, item_id, timestamp, rid FROM ({past})"
    snapshot = Snapshot(
        now=float(now),
        items=items,
        style=style,
        cf=cf,
        allowed=allowed,
        histories=histories(con, past, shoppers),
        popularity=popularity,
        first_sale=facts["first_sale"],
        last_sale=facts["last_sale"],
        repeat_rate=facts["repeat_rate"],
        trending=[],
        trending_by_kind={},
        group_members={},
        co_bought=table_to_lists(co_purchase_table(con, pairs, together_days)),
    )
    snapshot.style_neighbour_popularity = _style_neighbour_popularity(style, popularity["30d"])
    return snapshot.with_catalog(items, allowed)


def fit_cf(
    con: duckdb.DuckDBPyConnection, source: str, config: CFConfig, progress: bool = False
) -> CollaborativeFilter:
    """Collaborative filtering fitted on the (shopper, item, summed weight) table of `source`, aggregated by
    DuckDB and fetched as integer codes over sorted ids (the same matrix `CollaborativeFilter.fit` builds)."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE cf_weights AS
            SELECT user_id, item_id, sum(coalesce(weight, 1.0)) AS weight FROM ({source}) GROUP BY user_id, item_id"""
    )
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cf_users AS SELECT user_id, (row_number() OVER (ORDER BY user_id)) - 1 AS "
            "code FROM (SELECT DISTINCT user_id FROM cf_weights)"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cf_items AS SELECT item_id, (row_number() OVER (ORDER BY item_id)) - 1 AS "
            "code FROM (SELECT DISTINCT item_id FROM cf_weights)"
        )
        user_ids = [u for (u,) in con.execute("SELECT user_id FROM cf_users ORDER BY code").fetchall()]
        item_ids = [i for (i,) in con.execute("SELECT item_id FROM cf_items ORDER BY code").fetchall()]
        cells = con.execute(
            "SELECT u.code AS u, i.code AS i, w.weight FROM cf_weights w JOIN cf_users u USING (user_id) "
            "JOIN cf_items i USING (item_id)"
        ).fetchnumpy()
    finally:
        con.execute("DROP TABLE IF EXISTS cf_weights; DROP TABLE IF EXISTS cf_users; DROP TABLE IF EXISTS cf_items")
    counts = sp.csr_matrix(
        (cells["weight"].astype(np.float32), (cells["u"].astype(np.int64), cells["i"].astype(np.int64))),
        shape=(len(user_ids), len(item_ids)),
        dtype=np.float32,
    )
    del cells
    return CollaborativeFilter(config).fit_counts(user_ids, item_ids, counts, show_progress=progress)


def histories(
    con: duckdb.DuckDBPyConnection, source: str, shoppers: Iterable[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Each shopper's events of `source` (user_id, item_id, timestamp, weight) in time order; only `shoppers`'
    when given (their ids are joined in DuckDB: the other shoppers' events are never fetched)."""
    frame = _events(con, source, shoppers, "user_id, timestamp, rid")
    return {u: f for u, f in frame.groupby("user_id", sort=False)}


def _events(
    con: duckdb.DuckDBPyConnection, source: str, shoppers: Iterable[str] | None, order: str, rid: bool = False
) -> pd.DataFrame:
    """The events of `source` (of `shoppers` only, when given) as a frame, sorted by `order`; `rid`: indexed by
    the events' rid."""
    where = ""
    if shoppers is not None:
        wanted = pd.DataFrame({"user_id": sorted(set(shoppers))}, dtype=object)
        con.register(SHOPPERS_NAME, wanted)
        where = f"WHERE user_id IN (SELECT user_id FROM {SHOPPERS_NAME})"
    try:
        columns = "user_id, item_id, timestamp, weight" + (", rid" if rid else "")
        frame = con.execute(f"SELECT {columns} FROM ({source}) {where} ORDER BY {order}").df()
        return frame.set_index("rid").rename_axis(None) if rid else frame
    finally:
        if shoppers is not None:
            con.unregister(SHOPPERS_NAME)


def iter_folds(
    con: duckdb.DuckDBPyConnection,
    source: str,
    items: ItemInfo,
    style: StyleSpace | None,
    config,
    cf_config: CFConfig | None = None,
    allowed: set[str] | None = None,
    sampled: bool = True,
) -> Iterator[tuple[Snapshot, pd.DataFrame]]:
    """(the shop as of a training window's start, the purchases inside the window) for each window of `config`
    (a `RankerConfig`), latest first, built one at a time: a window's snapshot and labels are made when the
    previous ones were used. `sampled`: the snapshot keeps the histories, and the labels the purchases, of the
    window's sampled shoppers only (`recsys.models.ranker.window_shoppers`), else everyone's. The labels (user_id,
    item_id, timestamp, weight) are indexed by the events' rid, in time order; their attrs hold WINDOW_END, one
    past the window's last purchase."""
    from recsys.models.ranker import training_windows_between, window_shoppers

    first, last = con.execute(f"SELECT min(timestamp), max(timestamp) FROM ({source})").fetchone()
    if first is None:
        return
    first_sale = con.execute(f"SELECT item_id, min(timestamp) AS t FROM ({source}) GROUP BY item_id").df()
    first_sale = pd.Series(first_sale["t"].to_numpy(float), index=first_sale["item_id"].to_numpy())
    pool = set(allowed) if allowed is not None else None
    if style is not None:  # every window's style source and statistics read the same lists, searched once
        style.neighbour_rows()
    cf_config = window_cf_config(cf_config, config)
    bounds = training_windows_between(first, last, config.window_days, config.windows, config.window_step_days)
    for n, (start, stop) in enumerate(bounds):
        inside = f"SELECT * FROM ({source}) WHERE timestamp >= {float(start)!r} AND timestamp < {float(stop)!r}"
        buyers, end = con.execute(f"SELECT list(DISTINCT user_id), max(timestamp) FROM ({inside})").fetchone()
        if not buyers or first >= start:
            continue
        # the catalog as it was: what had sold before, (a share of) the articles that first sold in the window,
        # and the articles that never sold (a catalog's unsold stock); articles that first sold after the window
        # were not there yet
        new = sorted(first_sale.index[(first_sale >= start) & (first_sale < stop)])
        rng = np.random.default_rng(config.seed)
        kept = rng.choice(new, round(len(new) * config.window_new_share), replace=False) if new else []
        later = set(first_sale.index[first_sale >= start]) - set(kept)
        window_allowed = (pool if pool is not None else set(items.title) | set(first_sale.index)) - later
        shoppers = window_shoppers(buyers, config) if sampled else None
        began, cpu = time.perf_counter(), time.process_time()
        snapshot = snapshot_at(
            con, source, start, items, style, cf_config=cf_config, allowed=window_allowed, shoppers=shoppers
        )
        labels = _events(con, inside, shoppers, "timestamp, rid", rid=True)
        log.info(
            "ranker window %d: %d buyers, %d sampled; snapshot and labels in %.1f s (%.1f s CPU)",
            n + 1, len(buyers), len(labels["user_id"].unique()), time.perf_counter() - began, time.process_time() - cpu,
        )  # fmt: skip
        labels.attrs[WINDOW_END] = float(end) + 1.0
        yield snapshot, labels
        del snapshot, labels


def window_cf_config(cf_config: CFConfig | None, config) -> CFConfig:
    """The CF config of a training window's snapshot: the served CF's, with `config.window_cf_iterations` (a
    `RankerConfig`'s) ALS iterations when set (the window fits are most of a large shop's ranker training)."""
    cf_config = cf_config or CFConfig()
    iterations = getattr(config, "window_cf_iterations", None)
    return cf_config if iterations is None else cf_config.model_copy(update={"iterations": iterations})
