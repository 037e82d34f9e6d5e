"""Which store a `--db` / `STYLEREC_DB` names, and the interface both stores implement.

- a path, or `sqlite:///path` (`sqlite:////abs/path` for an absolute one): the embedded SQLite store (`Store`),
  the default for one machine;
- `postgresql://user:password@host:port/database` (or `postgres://`): the server store (`PostgresStore`), for
  several service hosts sharing one database.

Anything else that looks like a URL (`mysql://...`, `sqlite:/x`) is refused with a clear error before anything
is opened or created.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from common.errors import StylerecError
from recsys.store.postgres import StoreUnreachable
from recsys.store.sqlite import Store

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
POSTGRES_SCHEMES = ("postgresql", "postgres")


class StoreURLError(StylerecError, ValueError):
    """A `--db` value that names no store this release can open (422)."""

    http_status = 422


@runtime_checkable
class StoreAPI(Protocol):
    """What callers use of a store (both `Store` and `PostgresStore` implement it; see `Store` for each one)."""

    def close(self) -> None: ...
    def set_synchronous(self, level: str) -> None: ...
    def data_version(self) -> int: ...
    def import_items(self, catalog: pd.DataFrame, source: str) -> int: ...
    def upsert_item(self, item_id: str, title: str = "", category: str = "", attributes=None, image=None) -> None: ...
    def delete_item(self, item_id: str) -> bool: ...
    def item(self, item_id: str) -> dict: ...
    def item_ids(self) -> list[str]: ...
    def items_by_id(self, item_ids: list[str]) -> dict[str, dict]: ...
    def items(self, category=None, limit=None, offset: int = 0, search=None) -> list[dict]: ...
    def count_items(self, category=None, search=None) -> int: ...
    def count_events(self) -> int: ...
    def import_interactions(self, interactions: pd.DataFrame, source: str) -> int: ...
    def add_event(self, user_id: str, item_id: str, event: str = "purchase", timestamp=None, weight=None,
                  client_event_id=None) -> int: ...  # fmt: skip
    def check_event(self, user_id: str, item_id: str, event: str, client_event_id=None) -> int | None: ...
    def insert_events(self, events: list[tuple]) -> list[int]: ...
    def event(self, event_id: int) -> dict: ...
    def last_event_id(self) -> int: ...
    def users_with_events_since(self, since_id: int) -> tuple[list[str], int]: ...
    def interactions(self, user_id=None, since_id: int = 0) -> pd.DataFrame: ...
    def users(self, limit=None) -> list[str]: ...
    def shoppers(self, limit=None) -> list[str]: ...
    def put_style(self, name: str, image: str, vector: np.ndarray | None = None, model_id=None) -> None: ...
    def styles(self) -> list[dict]: ...
    def add_style_event(self, user_id: str, style: str, event: str, timestamp=None, client_event_id=None) -> dict: ...
    def style_events(self, user_id: str) -> list[dict]: ...
    def enqueue_job(self, job_id: str, kind: str, payload: dict, client: str, max_pending: int,
                    max_per_client: int) -> bool: ...  # fmt: skip
    def claim_job(self, kind: str) -> dict | None: ...
    def finish_job(self, job_id: str, status: str, result=None) -> None: ...
    def recover_jobs(self, kind: str, max_attempts: int) -> tuple[int, int]: ...
    def fail_dead_jobs(self, kind: str, reason: str) -> int: ...
    def job(self, job_id: str) -> dict: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def meta(self, key: str, default=None) -> str | None: ...


def is_postgres(url: str | os.PathLike) -> bool:
    """Whether `url` names a PostgreSQL store."""
    match = _SCHEME.match(str(url))
    return bool(match) and match.group(1).lower() in POSTGRES_SCHEMES


def sqlite_path(url: str | os.PathLike) -> Path:
    """The SQLite file that `url` names (a path or `sqlite:///path`); `StoreURLError` for any other URL."""
    text = str(url)
    match = _SCHEME.match(text)
    if match is None or (len(match.group(1)) == 1 and os.name == "nt"):  # a plain path
        return Path(text)
    scheme = match.group(1).lower()
    if scheme == "sqlite":
        if not text.startswith("sqlite:///") or len(text) == len("sqlite:///"):
            raise StoreURLError(f"{text!r}: write an SQLite URL as sqlite:///relative/path or sqlite:////abs/path")
        return Path(text[len("sqlite:///") :])
    raise StoreURLError(
        f"{text!r}: unknown store {scheme!r}; use a file path or sqlite:///path (SQLite) or "
        "postgresql://user@host:port/database (PostgreSQL)"
    )


def check_url(url: str | os.PathLike) -> None:
    """`StoreURLError` unless `url` names a store this release can open (opens nothing)."""
    if not is_postgres(url):
        sqlite_path(url)


def store_exists(url: str | os.PathLike) -> bool:
    """Whether the store exists: the SQLite file is there, or (PostgreSQL) the database holds a stylerec schema."""
    if not is_postgres(url):
        return sqlite_path(url).exists()
    import psycopg

    try:
        with psycopg.connect(str(url), connect_timeout=10) as conn:
            return conn.execute("SELECT to_regclass('items') IS NOT NULL").fetchone()[0]
    except psycopg.OperationalError as exc:
        raise StoreUnreachable(f"cannot connect to the PostgreSQL store: {exc}".strip()) from exc


def open_store(url: str | os.PathLike) -> Store:
    """Open (creating or migrating its schema) the store that `url` names: see the module docstring."""
    if is_postgres(url):
        from recsys.store.postgres import PostgresStore

        return PostgresStore(str(url))
    return Store(sqlite_path(url))
