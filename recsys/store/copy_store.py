"""Copying a whole store into a new, empty one: how a shop moves from its SQLite file to PostgreSQL (or back).

Every table is copied row for row (ids included, so event ids and client event ids keep their meaning) in one
transaction of the target: a failure leaves the target empty. The source is only read.
"""

from __future__ import annotations

import os

from common.errors import StylerecError
from recsys.store.opener import open_store
from recsys.store.sqlite import Store

# The tables of schema version 2 (`recsys.store.schema`), parents first.
TABLES = ("items", "interactions", "styles", "jobs", "imports", "item_vectors", "meta", "style_events",
          "render_settings", "hosts")  # fmt: skip
IDENTITY_TABLES = ("interactions", "style_events")


class TargetNotEmpty(StylerecError, ValueError):
    """The target store already holds data: copying into it would mix two shops (409)."""

    http_status = 409


def copy_store(source: str | os.PathLike, target: str | os.PathLike, batch: int = 5000) -> dict[str, int]:
    """Copy every row of the store at `source` into the new or empty store at `target` (paths or URLs, see
    `recsys.store.opener`); returns rows copied per table."""
    src, dst = open_store(source), open_store(target)
    try:
        if dst.count_items() or dst.count_events() or dst.styles():
            raise TargetNotEmpty(f"{target}: the target store is not empty; copy into a new database")
        copied = {}
        with dst.transaction() as db:
            for table in TABLES:
                columns = _columns(src, table)
                rows = src._query(f"SELECT {', '.join(columns)} FROM {table}")
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                for start in range(0, len(rows), batch):
                    db.executemany(sql, rows[start : start + batch])
                copied[table] = len(rows)
            if getattr(dst, "shared", False):  # PostgreSQL: identity columns continue after the copied ids
                for table in IDENTITY_TABLES:
                    db.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                    )
        return copied
    finally:
        src.close()
        dst.close()


def _columns(store: Store, table: str) -> list[str]:
    """The table's column names (either engine)."""
    if getattr(store, "shared", False):
        sql = "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position"
        return [r[0] for r in store._query(sql, (table,))]
    return [r[1] for r in store._query(f"PRAGMA table_info({table})")]
