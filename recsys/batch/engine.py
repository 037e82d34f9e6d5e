"""One DuckDB connection per batch job, with memory bounded and spilling to disk.

DuckDB is the engine of the batch step: it scans pandas frames and Parquet files in place, runs grouped counts
and joins with out-of-core operators (spilling to `temp_directory` past `memory_limit`), and a query written for
it runs unchanged over Parquet on one machine or, with the same SQL, on a cluster engine (see docs/scaling.md).
"""

from __future__ import annotations

import os
import tempfile

import duckdb

DEFAULT_MEMORY_LIMIT = os.environ.get("STYLEREC_BATCH_MEMORY", "4GB")


def connect(memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that spills to a temporary folder past `memory_limit`."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/stylerec-duckdb'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con
