"""Events out of the store (SQLite or PostgreSQL) into Parquet, in chunks: the batch step's columnar, out-of-core
input.

DuckDB's own SQLite and PostgreSQL readers are extensions it downloads on first use; this machine (and many shops'
batch hosts) has no internet, so the store's rows are streamed in id order, `chunk_rows` at a time, through pyarrow
into one Parquet file (a read-only SQLite connection, or a PostgreSQL server-side cursor in one read-only
transaction). Memory stays bounded by one chunk; DuckDB then scans the file in place.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from recsys.store.opener import is_postgres, sqlite_path

EVENT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("timestamp", pa.float64()),
        ("weight", pa.float64()),
        ("event", pa.string()),
    ]
)


def export_events(
    db: str | os.PathLike, out: str | os.PathLike, chunk_rows: int = 500_000, progress: bool = False
) -> tuple[Path, int]:
    """Write the store's interactions (up to the last event id when the export starts) to the Parquet file
    `out`; returns (the file, the last event id it holds: 0 when there are none)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _read_cursor(db) as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM interactions")
        last_id, total = cursor.fetchone()
        cursor.execute(
            "SELECT id, user_id, item_id, ts, weight, event FROM interactions WHERE id <= %s ORDER BY id"
            if is_postgres(db)
            else "SELECT id, user_id, item_id, ts, weight, event FROM interactions WHERE id <= ? ORDER BY id",
            (last_id,),
        )
        with pq.ParquetWriter(out, EVENT_SCHEMA) as writer, tqdm(
            total=total, desc="export events", unit="row", unit_scale=True, disable=not progress
        ) as bar:  # fmt: skip
            writer.write_table(EVENT_SCHEMA.empty_table())
            while rows := cursor.fetchmany(chunk_rows):
                columns = list(zip(*rows, strict=True))
                arrays = [pa.array(c, type=f.type) for c, f in zip(columns, EVENT_SCHEMA, strict=True)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA))
                bar.update(len(rows))
    return out, int(last_id)


@contextmanager
def _read_cursor(db: str | os.PathLike) -> Iterator:
    """A cursor over one consistent read of the store: SQLite read-only, or a PostgreSQL read-only transaction
    whose row queries stream from the server (a named cursor is opened per query)."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(str(db), connect_timeout=10) as con:
            con.read_only = True
            with con.transaction():
                yield _ServerCursor(con)
        return
    con = sqlite3.connect(f"file:{sqlite_path(db).resolve()}?mode=ro", uri=True)
    try:
        yield con.cursor()
    finally:
        con.close()


class _ServerCursor:
    """A PostgreSQL cursor that streams each query's rows from the server (named cursors hold no result set)."""

    def __init__(self, con) -> None:
        self.con, self.cursor, self.count = con, None, 0

    def execute(self, sql: str, params: tuple = ()) -> None:
        if self.cursor is not None:
            self.cursor.close()
        self.count += 1
        self.cursor = self.con.cursor(name=f"stylerec_export_{self.count}")
        self.cursor.execute(sql, params)

    def fetchone(self):
        return self.cursor.fetchone()

    def fetchmany(self, size: int) -> list:
        return self.cursor.fetchmany(size)
