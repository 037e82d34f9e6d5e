"""Events out of the SQLite store into Parquet, in chunks: the batch step's columnar, out-of-core input.

DuckDB's own SQLite reader is an extension it downloads on first use; this machine (and many shops' batch hosts)
has no internet, so the store's rows are streamed in id order, `chunk_rows` at a time, through pyarrow into one
Parquet file. Memory stays bounded by one chunk; DuckDB then scans the file in place.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

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
    con = sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True)
    try:
        last_id, total = con.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM interactions").fetchone()
        cursor = con.execute(
            "SELECT id, user_id, item_id, ts, weight, event FROM interactions WHERE id <= ? ORDER BY id", (last_id,)
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
    finally:
        con.close()
    return out, int(last_id)
