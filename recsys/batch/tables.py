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


def decayed_popularity_sql(half_life_days: float | None = POPULARITY_HALF_LIFE_DAYS) -> str:
    """The one definition of an item's popularity, as a DuckDB aggregate over its events' `weight` and
    `timestamp` and the `latest` event's time: summed event weight, each event's weight halving every
    `half_life_days` before the latest event (None or 0: all-time, undecayed). `item_table`'s `pop_decayed`,
    `popularity_scores` and so the blend's `recsys.models.hybrid.Popularity` (and the `popularity` baseline) use it."""
    if not half_life_days:
        return "sum(weight)"
    return f"sum(weight * pow(2, -(latest - timestamp) / {float(half_life_days) * DAY!r}))"


def popularity_scores(
    events: pd.DataFrame, half_life_days: float | None = POPULARITY_HALF_LIFE_DAYS
) -> dict[str, float]:
    """item_id -> popularity (`decayed_popularity_sql`) over a frame of events (item_id, timestamp and an
    optional weight, 1 when absent), in item id order; {} without events."""
    if len(events) == 0:
        return {}
    weight = events["weight"].to_numpy(float) if "weight" in events else np.ones(len(events))
    # all-time popularity reads no time at all (its timestamps may be anything)
    times = events["timestamp"].to_numpy(float) if half_life_days else np.zeros(len(events))
    frame = pd.DataFrame({"item_id": events["item_id"].to_numpy(), "timestamp": times, "weight": weight})
    con = connect(threads=1)  # one thread: the same sums in the same order, run after run
    try:
        con.register("popularity_events", frame)
        rows = con.execute(
            f"""SELECT item_id, {decayed_popularity_sql(half_life_days)} AS score
                FROM popularity_events CROSS JOIN (SELECT max(timestamp) AS latest FROM popularity_events)
                GROUP BY item_id ORDER BY item_id"""
        ).fetchall()
    finally:
        con.close()
    return {item: float(score) for item, score in rows}


def co_purchase_table(
    con: duckdb.DuckDBPyConnection,
    source: str,
    days: float,
    keep: int = 30,
    max_per_shopper: int = 500,
    events_per_chunk: int = 2_000_000,
) -> pd.DataFrame:
    """(item_id, other, n) sorted by item, most often first: for each item, the `keep` items bought by the most
    shoppers within `days` of it (a shopper counts once per pair); only each shopper's latest `max_per_shopper`
    distinct (item, time) events count, ties kept in row order (`source` must have a `rid` column, the row's
    position).

    Out of core and in chunks: shoppers and items are coded as integers first (H&M's shopper ids are 64-character
    strings); each shopper's latest events are kept one chunk of shoppers at a time; the pairs are then counted one
    chunk of *anchor items* at a time (a join on the shopper, DISTINCT per shopper, GROUP BY, the top `keep` per
    item), so a chunk's counts are final and only `keep` rows per item are kept. About `events_per_chunk` events
    per chunk bound what DuckDB holds at once (at H&M size the single query ran out of its 4 GB)."""
    span = float(days) * DAY
    con.execute(f"CREATE OR REPLACE TEMP TABLE cp_src AS SELECT user_id, item_id, timestamp, rid FROM ({source})")
    (events,) = con.execute("SELECT count(*) FROM cp_src").fetchone()
    chunks = max(1, -(-int(events) // int(events_per_chunk)))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cp_items AS "
        "SELECT item_id, (row_number() OVER (ORDER BY item_id) - 1)::UINTEGER AS i "
        "FROM (SELECT DISTINCT item_id FROM cp_src)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cp_users AS "
        "SELECT user_id, (row_number() OVER () - 1)::UINTEGER AS u FROM (SELECT DISTINCT user_id FROM cp_src)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cp_ev AS SELECT u, i, timestamp AS t, min(rid) AS rid "
        "FROM cp_src JOIN cp_users USING (user_id) JOIN cp_items USING (item_id) GROUP BY u, i, timestamp"
    )
    con.execute("DROP TABLE cp_src")
    con.execute("CREATE OR REPLACE TEMP TABLE cp_kept (u UINTEGER, i UINTEGER, t DOUBLE)")
    for part in range(chunks):  # each shopper's latest events, a chunk of shoppers at a time
        con.execute(
            f"INSERT INTO cp_kept SELECT u, i, t FROM cp_ev WHERE u % {chunks} = {part} "
            f"QUALIFY row_number() OVER (PARTITION BY u ORDER BY t DESC, rid) <= {int(max_per_shopper)}"
        )
    con.execute("DROP TABLE cp_ev")
    con.execute("CREATE OR REPLACE TEMP TABLE cp_top (i UINTEGER, o UINTEGER, n BIGINT)")
    for part in range(chunks):  # the pairs of a chunk of anchor items: their counts are complete in the chunk
        con.execute(f"""
            INSERT INTO cp_top
            WITH pairs AS (
                SELECT DISTINCT a.u, a.i, b.i AS o
                FROM (SELECT * FROM cp_kept WHERE i % {chunks} = {part}) a JOIN cp_kept b
                  ON a.u = b.u AND a.i <> b.i AND abs(a.t - b.t) <= {span!r}
            )
            SELECT i, o, count(*) AS n FROM pairs GROUP BY i, o
            QUALIFY row_number() OVER (PARTITION BY i ORDER BY count(*) DESC, o) <= {int(keep)}
        """)  # fmt: skip
    table = con.execute(
        "SELECT a.item_id, b.item_id AS other, t.n FROM cp_top t "
        "JOIN cp_items a ON a.i = t.i JOIN cp_items b ON b.i = t.o ORDER BY a.item_id, t.n DESC, other"
    ).df()
    for name in ("cp_kept", "cp_top", "cp_users", "cp_items"):
        con.execute(f"DROP TABLE {name}")
    return table


def co_purchases(
    events: pd.DataFrame, days: float, keep: int = 30, max_per_shopper: int = 500, events_per_chunk: int = 2_000_000
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
        table = co_purchase_table(con, "SELECT * FROM events_frame", days, keep, max_per_shopper, events_per_chunk)
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
    popularity (`recsys.models.hybrid.Popularity`: weights halving every 30 days before the latest event); by item id.
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
               {decayed_popularity_sql(POPULARITY_HALF_LIFE_DAYS)} AS pop_decayed
        FROM past p CROSS JOIN (SELECT max(timestamp) AS latest FROM past) m JOIN (
            SELECT item_id, avg(CASE WHEN n > 1 THEN 1.0 ELSE 0.0 END) AS repeat_rate FROM per_buyer GROUP BY item_id
        ) r USING (item_id)
        GROUP BY p.item_id ORDER BY p.item_id
    """
    return con.execute(query).df()


def item_facts(table: pd.DataFrame) -> dict[str, dict]:
    """An `item_table` as the feed's snapshot reads it: "popularity" ({"7d", "30d", "all"}: item -> sales, most
    sold first, ties by item id) and item -> value for "first_sale", "last_sale" and "repeat_rate"."""

    def sold(column: str) -> dict[str, float]:
        rows = table[table[column] > 0].sort_values([column, "item_id"], ascending=[False, True], kind="stable")
        return dict(zip(rows["item_id"], rows[column].astype(float), strict=True))

    ids = table["item_id"].tolist()
    facts: dict[str, dict] = {"popularity": {"7d": sold("pop_7d"), "30d": sold("pop_30d"), "all": sold("pop_all")}}
    for column in ("first_sale", "last_sale", "repeat_rate"):
        facts[column] = dict(zip(ids, table[column].astype(float), strict=True))
    return facts
