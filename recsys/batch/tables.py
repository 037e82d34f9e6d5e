"""Item tables computed by DuckDB over an events relation (a pandas frame or Parquet files), out of core.

Every function takes `source`, SQL naming the events (`SELECT user_id, item_id, timestamp FROM ...`): a
registered frame's name or `read_parquet('folder/*.parquet')`; each returns a small result (bounded by the items,
not the events).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from recsys.batch.engine import connect

DAY = 86400.0
POPULARITY_HALF_LIFE_DAYS = 30.0  # HybridConfig.popularity_half_life_days' default


def co_purchase_table(
    con: duckdb.DuckDBPyConnection, source: str, days: float, keep: int = 30, max_per_shopper: int = 500
) -> pd.DataFrame:
    """(item_id, other, n) sorted by item, most often first: for each item, the `keep` items bought by the most
    shoppers within `days` of it (a shopper counts once per pair); only each shopper's latest `max_per_shopper`
    distinct (item, time) events count, ties kept in row order (`source` must have a `rid` column, the row's
    position). One grouped count in DuckDB, which spills to disk rather than hold the pairs in memory."""
    query = f"""
        WITH ev AS (
            SELECT user_id, item_id, timestamp, min(rid) AS rid FROM ({source}) GROUP BY user_id, item_id, timestamp
        ), kept AS (
            SELECT user_id, item_id, timestamp FROM ev
            QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY timestamp DESC, rid) <= {int(max_per_shopper)}
        ), pairs AS (
            SELECT DISTINCT a.user_id, a.item_id AS item_id, b.item_id AS other
            FROM kept a JOIN kept b
              ON a.user_id = b.user_id AND a.item_id <> b.item_id
             AND abs(a.timestamp - b.timestamp) <= {float(days) * DAY!r}
        ), counts AS (
            SELECT item_id, other, count(*) AS n FROM pairs GROUP BY item_id, other
        )
        SELECT item_id, other, n FROM counts
        QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY n DESC, other) <= {int(keep)}
        ORDER BY item_id, n DESC, other
    """
    return con.execute(query).df()


def co_purchases(
    events: pd.DataFrame, days: float, keep: int = 30, max_per_shopper: int = 500
) -> dict[str, list[tuple[str, float]]]:
    """`co_purchase_table` over a frame of events (user_id, item_id, timestamp), as item -> [(other, count)]."""
    if len(events) == 0:
        return {}
    frame = pd.DataFrame(
        {
            "user_id": events["user_id"].to_numpy(),
            "item_id": events["item_id"].to_numpy(),
            "timestamp": events["timestamp"].to_numpy(float),
            "rid": np.arange(len(events), dtype=np.int64),
        }
    )
    con = connect()
    try:
        con.register("events_frame", frame)
        table = co_purchase_table(con, "SELECT * FROM events_frame", days, keep, max_per_shopper)
    finally:
        con.close()
    return table_to_lists(table)


def table_to_lists(table: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    """A sorted (item_id, other, n) table as item -> [(other, n)], keeping the table's order."""
    out: dict[str, list[tuple[str, float]]] = {}
    for item, other, n in zip(table["item_id"], table["other"], table["n"].to_numpy(float), strict=True):
        out.setdefault(item, []).append((other, float(n)))
    return out


def item_table(con: duckdb.DuckDBPyConnection, source: str, now: float) -> pd.DataFrame:
    """One row per item sold before `now`: purchases in the 7 and 30 days before it and in all, first and last
    sale, the repeat rate (the share of its buyers who bought it more than once) and `pop_decayed`, the blend's
    popularity (`recsys.hybrid.Popularity`: weights halving every 30 days before the latest event); by item id.
    `source` has user_id, item_id, timestamp and weight."""
    query = f"""
        WITH past AS (
            SELECT user_id, item_id, timestamp, coalesce(weight, 1.0) AS weight FROM ({source})
            WHERE timestamp < {float(now)!r}
        ),
        per_buyer AS (SELECT item_id, count(*) AS n FROM past GROUP BY item_id, user_id)
        SELECT p.item_id,
               count(*) FILTER (WHERE timestamp >= {float(now) - 7 * DAY!r}) AS pop_7d,
               count(*) FILTER (WHERE timestamp >= {float(now) - 30 * DAY!r}) AS pop_30d,
               count(*) AS pop_all,
               min(timestamp) AS first_sale,
               max(timestamp) AS last_sale,
               any_value(r.repeat_rate) AS repeat_rate,
               sum(p.weight * pow(2, -(m.latest - timestamp) / {POPULARITY_HALF_LIFE_DAYS * DAY!r})) AS pop_decayed
        FROM past p CROSS JOIN (SELECT max(timestamp) AS latest FROM past) m JOIN (
            SELECT item_id, avg(CASE WHEN n > 1 THEN 1.0 ELSE 0.0 END) AS repeat_rate FROM per_buyer GROUP BY item_id
        ) r USING (item_id)
        GROUP BY p.item_id ORDER BY p.item_id
    """
    return con.execute(query).df()
