"""The embedded store: one SQLite file in WAL mode with items, interactions (events), styles, jobs and imports.

Imports are idempotent (a source whose content was imported before is skipped; a changed source replaces its
earlier rows) and atomic (one transaction: a bad row leaves the store as it was). Events posted one by one are
committed with `synchronous=FULL`, so an acknowledged event survives a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from common.errors import NotFound, StylerecError  # NotFound: importable from here too
from recsys.store.data_io import EVENT_WEIGHTS, DataError, attributes_json
from recsys.store.schema import migrate_sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', category TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}', image TEXT, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, item_id TEXT NOT NULL, ts REAL NOT NULL,
    event TEXT NOT NULL DEFAULT 'purchase', weight REAL NOT NULL DEFAULT 1.0, source TEXT NOT NULL DEFAULT 'api');
CREATE INDEX IF NOT EXISTS interactions_user ON interactions (user_id, ts);
CREATE INDEX IF NOT EXISTS interactions_source ON interactions (source);
CREATE TABLE IF NOT EXISTS styles (
    name TEXT PRIMARY KEY, image TEXT NOT NULL, model_id TEXT, vector BLOB, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, payload TEXT NOT NULL DEFAULT '{}',
    result TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS imports (
    source TEXT PRIMARY KEY, kind TEXT NOT NULL, sha256 TEXT NOT NULL, rows INTEGER NOT NULL, imported REAL NOT NULL);
CREATE TABLE IF NOT EXISTS item_vectors (
    item_id TEXT NOT NULL, model_id TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (item_id, model_id));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS style_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, style TEXT NOT NULL, event TEXT NOT NULL,
    ts REAL NOT NULL, client_event_id TEXT UNIQUE);
CREATE INDEX IF NOT EXISTS style_events_user ON style_events (user_id, ts);
CREATE TABLE IF NOT EXISTS render_settings (user_id TEXT PRIMARY KEY, settings TEXT NOT NULL, updated REAL NOT NULL);
"""
STYLE_EVENTS = ("style_like", "style_dislike", "style_clear")  # clear: take back a like or a dislike
BULK_INDEXES = ("interactions_user", "interactions_source")  # rebuilt after a bulk import's rows are in
log = logging.getLogger("stylerec.store")
# A job's owner (a process that claimed it) that has not said it is alive for this long is dead: its running jobs
# are recovered (`recover_jobs`, PostgreSQL) or failed (`fail_dead_jobs`) by another process or host.
HOST_TIMEOUT = 30.0
HEARTBEAT_EVERY = HOST_TIMEOUT / 6  # seconds between an owner's signs of life
IMPORT_CACHE_MIB = 512  # SQLite page cache while a file of events is imported (memory bounded by it, not the file)
# Columns added after the first release: (table, column, declaration). Added to older stores when opened.
MIGRATIONS = (
    ("interactions", "client_event_id", "TEXT"),
    ("jobs", "client", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "attempts", "INTEGER NOT NULL DEFAULT 0"),
)
INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS interactions_client_event ON interactions (client_event_id)
    WHERE client_event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
"""


class QueueFull(StylerecError):
    """A bounded job queue that takes no more jobs (for now, or from this client): 429, with the service's
    Retry-After."""

    http_status = 429


class Store:
    """Thread-safe access to the SQLite store at `path` (created with its schema when missing).

    Writes go through one connection and reads through another: in WAL mode a read never waits for a write
    being committed (and synced to disk) by another thread, and it sees every transaction committed before it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._write_lock = open(f"{self.path}.lock", "a")  # noqa: SIM115 (held open: flocked around every write)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._writing():
            migrate_sqlite(self._db, str(self.path))  # numbered schema versions (`recsys.store.schema`)
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._checkpointer: sqlite3.Connection | None = None
        self._host = owner_name(self)  # the owner of the jobs this object claims
        self._alive: threading.Thread | None = None  # says this owner is alive while it has claimed jobs
        self._closed = threading.Event()

    def close(self) -> None:
        self._closed.set()
        if self._alive is not None:
            self._alive.join(timeout=10)
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()
            self._write_lock.close()
            if self._checkpointer is not None:
                self._checkpointer.close()

    def set_synchronous(self, level: Literal["full", "normal"]) -> None:
        """How this object's commits reach the disk. "full" (the default): a commit returns once the log is synced,
        so a committed write survives a power loss or an OS crash. "normal": the log is synced at checkpoints only;
        a committed write survives the process being killed (kill -9) but the last ones (since the last
        checkpoint) may be lost in a power loss or an OS crash. A choice for the shop's owner: see
        `Settings.event_sync`."""
        pragma = {"full": "FULL", "normal": "NORMAL"}[level]
        with self._writing():
            self._db.execute(f"PRAGMA synchronous={pragma}")

    def checkpoint_separately(self) -> None:
        """Stop this object's commits from checkpointing the write-ahead log; the caller runs `checkpoint` instead
        (the service, on a thread of its own). By default SQLite checkpoints inside the commit that fills the
        log past 1,000 pages: that commit then copies the log into the database and syncs it (measured: up to
        ~170 ms) while holding the write lock of every process."""
        with self._writing():
            self._db.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> None:
        """Copy committed log pages into the database (a passive checkpoint: it waits for no reader or writer, and
        needs no write lock), on a connection of its own."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the right to write: this object's lock (threads) and an exclusive `flock` on <db>.lock (processes).
        Writers from other processes then wait in the kernel and go as soon as the writer before them is done;
        SQLite's own wait for a busy database sleeps in growing steps (up to 100 ms) and made an event's commit,
        normally ~5 ms, take 0.1-0.4 s with two web workers writing."""
        with self._lock:
            fcntl.flock(self._write_lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._write_lock, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: committed when the block ends, rolled back on any error."""
        with self._writing():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def data_version(self) -> int:
        """A number that changes whenever a transaction is committed to the store after the last call, by this
        object or any other connection or process (SQLite's `PRAGMA data_version` on the read connection, which
        never writes). Costs no table read: a cheap "has anything changed?"."""
        return self._query("PRAGMA data_version")[0][0]

    # -- items ----------------------------------------------------------------------------------------------
    def import_items(self, catalog: pd.DataFrame, source: str) -> int:
        """Insert or update the items of a catalog table (`recsys.store.data_io.read_catalog`); returns rows written,
        0 when this exact content was imported from `source` before."""
        if len(catalog) == 0:
            raise DataError(f"{source}: the catalog is empty")
        empty = catalog["item_id"].astype(str).str.strip() == ""
        if empty.any():
            raise DataError(f"{source}: row {int(np.flatnonzero(empty)[0]) + 1}: item_id is empty")
        rows = [
            (str(r.item_id), str(r.title or ""), str(r.category or ""), attributes_json(r.attributes or {}), r.image)
            for r in catalog.itertuples(index=False)
        ]
        digest = _digest(rows)
        with self.transaction() as db:
            if self._already_imported(db, source, digest):
                return 0
            now = time.time()
            db.executemany(
                "INSERT INTO items (item_id, title, category, attributes, image, updated) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(item_id) DO UPDATE SET title=excluded.title, category=excluded.category, "
                "attributes=excluded.attributes, image=excluded.image, updated=excluded.updated",
                [(*row, now) for row in rows],
            )
            self._record_import(db, source, "items", digest, len(rows))
        return len(rows)

    def upsert_item(
        self,
        item_id: str,
        title: str = "",
        category: str = "",
        attributes: dict | None = None,
        image: str | None = None,
    ) -> None:
        """Add or replace one item."""
        if not item_id.strip():
            raise DataError("item_id is empty")
        with self.transaction() as db:
            db.execute(
                "INSERT INTO items (item_id, title, category, attributes, image, updated) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (item_id) DO UPDATE SET title = excluded.title, category = excluded.category, "
                "attributes = excluded.attributes, image = excluded.image, updated = excluded.updated",
                (item_id, title, category, attributes_json(attributes or {}), image, time.time()),
            )

    def delete_item(self, item_id: str) -> bool:
        """Remove an item (its past interactions stay: they are history). False when it was not there."""
        with self.transaction() as db:
            return db.execute("DELETE FROM items WHERE item_id = ?", (item_id,)).rowcount > 0

    def item(self, item_id: str) -> dict:
        """One item as a dict; `KeyError` naming the id when unknown."""
        rows = self._query(
            "SELECT item_id, title, category, attributes, image FROM items WHERE item_id = ?", (item_id,)
        )
        if not rows:
            raise NotFound(f"unknown item id {item_id!r}")
        return _item_dict(rows[0])

    def item_ids(self) -> list[str]:
        """Every item id, in order."""
        return [r[0] for r in self._query("SELECT item_id FROM items ORDER BY item_id")]

    def items_by_id(self, item_ids: list[str]) -> dict[str, dict]:
        """The known items among `item_ids`, by id, in one query per 500 ids (unknown ids are left out)."""
        found: dict[str, dict] = {}
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start : start + 500]
            rows = self._query(
                "SELECT item_id, title, category, attributes, image FROM items "
                f"WHERE item_id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
            found.update((row[0], _item_dict(row)) for row in rows)
        return found

    @staticmethod
    def _item_filter(category: str | None, search: str | None) -> tuple[str, tuple]:
        sql, params = " WHERE 1=1", ()
        if category:
            sql, params = sql + " AND category = ?", (*params, category)
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += " AND (item_id LIKE ? ESCAPE '\\' OR title LIKE ? ESCAPE '\\')"
            params = (*params, pattern, pattern)
        return sql, params

    def items(
        self, category: str | None = None, limit: int | None = None, offset: int = 0, search: str | None = None
    ) -> list[dict]:
        """Items in id order, optionally of one category and/or whose id or title contains `search`."""
        where, params = self._item_filter(category, search)
        sql = (
            "SELECT item_id, title, category, attributes, image FROM items"
            + where
            + " ORDER BY item_id LIMIT ? OFFSET ?"
        )
        return [_item_dict(r) for r in self._query(sql, (*params, -1 if limit is None else limit, offset))]

    def item_table(self) -> pd.DataFrame:
        """All items as a table (item_id, title, category, image, attributes)."""
        frame = pd.DataFrame(self.items(), columns=["item_id", "title", "category", "image", "attributes"])
        return frame

    def count_items(self, category: str | None = None, search: str | None = None) -> int:
        """How many items `items(category, search=search)` would list without a limit."""
        where, params = self._item_filter(category, search)
        return self._query("SELECT COUNT(*) FROM items" + where, params)[0][0]

    def count_events(self) -> int:
        return self._query("SELECT COUNT(*) FROM interactions")[0][0]

    # -- interactions ---------------------------------------------------------------------------------------
    def import_interactions(
        self,
        interactions: pd.DataFrame | Iterable[pd.DataFrame],
        source: str,
        content_digest: str | None = None,
        bulk: bool = False,
    ) -> int:
        """Add interactions (`recsys.store.data_io.read_interactions`'s table, or a stream of such tables from
        `recsys.store.data_io.iter_interactions`) from `source`; re-importing the same content is a no-op, changed
        content replaces that source's earlier rows. Returns rows written.

        A stream is written chunk by chunk inside one transaction (memory bounded by a chunk; a bad row in any
        chunk rolls the whole import back) and needs `content_digest`, what its content is known by (the file's
        `recsys.store.data_io.file_digest`): the same digest again is skipped before any row is read. A table without
        one is known by the digest of its rows. `bulk` (a big file): the events' indexes are dropped and built
        again after the rows are in, in the same transaction (one sort instead of millions of random B-tree
        inserts: measured, inserts fell from 21k to 6k rows/s past 6M rows with them in place)."""
        if isinstance(interactions, pd.DataFrame):
            rows = list(_interaction_rows(interactions, source))
            digest = content_digest or _digest(rows)
            chunks: Iterable[list[tuple]] = [rows]
        elif content_digest is None:
            raise ValueError("a stream of interaction tables needs its content_digest")
        else:
            digest = content_digest
            chunks = (list(_interaction_rows(chunk, source)) for chunk in interactions)
        with self.transaction() as db, self._bulk_writing(db):
            if self._already_imported(db, source, digest):
                return 0
            db.execute("DELETE FROM interactions WHERE source = ?", (source,))
            if bulk:
                for name in BULK_INDEXES:
                    db.execute(f"DROP INDEX IF EXISTS {name}")
            written = 0
            for chunk in chunks:
                db.executemany(
                    "INSERT INTO interactions (user_id, item_id, ts, event, weight, source) VALUES (?, ?, ?, ?, ?, ?)",
                    [(*row, source) for row in chunk],
                )
                written += len(chunk)
            if bulk:
                # one statement at a time (executescript would commit the transaction first)
                for statement in SCHEMA.split(";"):
                    if any(f"INDEX IF NOT EXISTS {name} " in statement for name in BULK_INDEXES):
                        db.execute(statement)
            self._record_import(db, source, "interactions", digest, written)
        return written

    def add_event(
        self,
        user_id: str,
        item_id: str,
        event: str = "purchase",
        timestamp: float | None = None,
        weight=None,
        client_event_id: str | None = None,
    ) -> int:
        """Record one event durably; returns its id. The item must exist; the event type must be known.
        With `client_event_id`, a repeat (a client retrying) is stored once: it returns the first event's id."""
        first = self.check_event(user_id, item_id, event, client_event_id)
        if first is not None:
            return first
        return self.insert_event(user_id, item_id, event, timestamp, weight, client_event_id)

    def check_event(self, user_id: str, item_id: str, event: str, client_event_id: str | None = None) -> int | None:
        """Check an event before it is written (`DataError`; `NotFound` for an unknown item). Returns the first
        event's id when `client_event_id` repeats a stored one (nothing to write), else None. Reads only."""
        if not user_id.strip():
            raise DataError("user_id is empty")
        if event not in EVENT_WEIGHTS:
            raise DataError(f"unknown event {event!r} (one of {', '.join(EVENT_WEIGHTS)})")
        if client_event_id is not None:
            first = self._event_by_client_id(client_event_id)
            if first is not None:
                return first
        self.item(item_id)
        return None

    def insert_event(
        self,
        user_id: str,
        item_id: str,
        event: str = "purchase",
        timestamp: float | None = None,
        weight=None,
        client_event_id: str | None = None,
    ) -> int:
        """Write one event checked by `check_event`, committed (durably) when it returns. Returns its id, or the
        first event's id when a racing retry stored the same `client_event_id` just before."""
        return self.insert_events([(user_id, item_id, event, timestamp, weight, client_event_id)])[0]

    def insert_events(self, events: list[tuple]) -> list[int]:
        """Write checked events, each `(user_id, item_id, event, timestamp, weight, client_event_id)` (timestamp
        and weight may be None: now, the event's weight), in one transaction: one durable commit (one disk sync)
        for all of them. Returns their ids; for a `client_event_id` already stored (or earlier in `events`), the
        first event's id."""
        ids = []
        with self._writing():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for user_id, item_id, event, timestamp, weight, client_event_id in events:
                    weight = EVENT_WEIGHTS[event] if weight is None else float(weight)
                    cursor = self._db.execute(
                        "INSERT INTO interactions (user_id, item_id, ts, event, weight, source, client_event_id) "
                        "VALUES (?, ?, ?, ?, ?, 'api', ?) ON CONFLICT (client_event_id) "
                        "WHERE client_event_id IS NOT NULL DO NOTHING",
                        (user_id, item_id, time.time() if timestamp is None else float(timestamp), event, weight,
                         client_event_id),
                    )  # fmt: skip
                    if cursor.rowcount == 1:
                        ids.append(int(cursor.lastrowid))
                    else:  # this connection sees the first one, committed or earlier in this transaction
                        sql = "SELECT id FROM interactions WHERE client_event_id = ?"
                        ids.append(int(self._db.execute(sql, (client_event_id,)).fetchone()[0]))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return ids

    def _event_by_client_id(self, client_event_id: str) -> int | None:
        rows = self._query("SELECT id FROM interactions WHERE client_event_id = ?", (client_event_id,))
        return int(rows[0][0]) if rows else None

    def event(self, event_id: int) -> dict:
        """One stored event (id, user_id, item_id, event, weight, timestamp); `NotFound` when unknown."""
        rows = self._query("SELECT id, user_id, item_id, event, weight, ts FROM interactions WHERE id = ?", (event_id,))
        if not rows:
            raise NotFound(f"unknown event {event_id}")
        keys = ("id", "user_id", "item_id", "event", "weight", "timestamp")
        return dict(zip(keys, rows[0], strict=True))

    def last_event_id(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(id), 0) FROM interactions")[0][0])

    def users_with_events_since(self, since_id: int) -> tuple[list[str], int]:
        """Users with events after `since_id`, and the last event id seen (for tailing the event log)."""
        rows = self._query("SELECT id, user_id FROM interactions WHERE id > ? ORDER BY id", (since_id,))
        if not rows:
            return [], since_id
        return list(dict.fromkeys(r[1] for r in rows)), int(rows[-1][0])

    def item_weights(self, user_id: str) -> dict[str, float]:
        """One shopper's summed event weight per item ({item_id: weight}; empty for a shopper never seen)."""
        sql = "SELECT item_id, SUM(weight) FROM interactions WHERE user_id = ? GROUP BY item_id"
        return {item: float(weight) for item, weight in self._query(sql, (user_id,))}

    def interactions(self, user_id: str | None = None, since_id: int = 0) -> pd.DataFrame:
        """Interactions (all, or one user's) as the standard table plus their `id`, in time order."""
        sql = "SELECT id, user_id, item_id, ts, weight, event FROM interactions WHERE id > ?"
        params: tuple = (since_id,)
        if user_id is not None:
            sql, params = sql + " AND user_id = ?", (*params, user_id)
        rows = self._query(sql + " ORDER BY ts, id", params)
        return pd.DataFrame(rows, columns=["id", "user_id", "item_id", "timestamp", "weight", "event"])

    def users(self, limit: int | None = None) -> list[str]:
        """Every user with events, in id order."""
        sql = "SELECT DISTINCT user_id FROM interactions ORDER BY user_id LIMIT ?"
        return [r[0] for r in self._query(sql, (-1 if limit is None else limit,))]

    def shoppers(self, limit: int | None = None) -> list[str]:
        """The shop's own shoppers: users of imported interaction files (the shop's data), never a user that
        only posted events through the API."""
        sql = "SELECT DISTINCT user_id FROM interactions WHERE source != 'api' ORDER BY user_id LIMIT ?"
        return [r[0] for r in self._query(sql, (-1 if limit is None else limit,))]

    # -- styles ---------------------------------------------------------------------------------------------
    def put_style(self, name: str, image: str, vector: np.ndarray | None = None, model_id: str | None = None) -> None:
        """Add or replace a named style reference (its style vector when known)."""
        if not name.strip():
            raise DataError("style name is empty")
        blob = None if vector is None else np.asarray(vector, np.float32).tobytes()
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO styles (name, image, model_id, vector, created) VALUES (?, ?, ?, ?, ?)",
                (name, image, model_id, blob, time.time()),
            )

    def styles(self) -> list[dict]:
        """All styles with their vectors (float32 arrays or None)."""
        rows = self._query("SELECT name, image, model_id, vector FROM styles ORDER BY name")
        return [
            {"name": n, "image": i, "model_id": m, "vector": None if v is None else np.frombuffer(v, np.float32)}
            for n, i, m, v in rows
        ]

    def delete_style(self, name: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM styles WHERE name = ?", (name,)).rowcount > 0

    # -- a shopper's reactions to renders: style feedback and remembered adjustments ------------------------
    def add_style_event(
        self, user_id: str, style: str, event: str, timestamp: float | None = None, client_event_id: str | None = None
    ) -> dict:
        """Record a shopper's feedback on a palette style (`style_like` / `style_dislike`, or `style_clear` to take
        it back) durably; returns it (id, user_id, style, event, weight +1/-1/0, timestamp). A repeat of a
        `client_event_id` is stored once."""
        if not user_id.strip():
            raise DataError("user_id is empty")
        if event not in STYLE_EVENTS:
            raise DataError(f"unknown style event {event!r} (one of {', '.join(STYLE_EVENTS)})")
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO style_events (user_id, style, event, ts, client_event_id) "
                "VALUES (?, ?, ?, ?, ?)",
                (user_id, style, event, time.time() if timestamp is None else float(timestamp), client_event_id),
            )
            row = db.execute(
                "SELECT id, user_id, style, event, ts FROM style_events WHERE "
                + ("client_event_id = ?" if client_event_id is not None else "id = last_insert_rowid()"),
                (client_event_id,) if client_event_id is not None else (),
            ).fetchone()
        return _style_event_dict(row)

    def style_events(self, user_id: str) -> list[dict]:
        """A shopper's style feedback, oldest first."""
        sql = "SELECT id, style, event, ts FROM style_events WHERE user_id = ? ORDER BY ts, id"
        return [{"id": i, "style": s, "event": e, "timestamp": t} for i, s, e, t in self._query(sql, (user_id,))]

    def put_render_settings(self, user_id: str, settings: dict) -> None:
        """Remember a shopper's render adjustments (their defaults for the next renders)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO render_settings (user_id, settings, updated) VALUES (?, ?, ?)",
                (user_id, json.dumps(settings, sort_keys=True), time.time()),
            )

    def render_settings(self, user_id: str) -> dict:
        """A shopper's remembered render adjustments ({} when none)."""
        rows = self._query("SELECT settings FROM render_settings WHERE user_id = ?", (user_id,))
        return json.loads(rows[0][0]) if rows else {}

    # -- style vectors of items added one by one (the catalog's bulk vectors live in the embedding store) ----
    def put_item_vector(self, item_id: str, model_id: str, vector: np.ndarray) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO item_vectors (item_id, model_id, vector) VALUES (?, ?, ?)",
                (item_id, model_id, np.asarray(vector, np.float32).tobytes()),
            )

    def item_vectors(self, model_id: str) -> dict[str, np.ndarray]:
        rows = self._query("SELECT item_id, vector FROM item_vectors WHERE model_id = ?", (model_id,))
        return {item_id: np.frombuffer(blob, np.float32) for item_id, blob in rows}

    def delete_item_vectors(self, item_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM item_vectors WHERE item_id = ?", (item_id,))

    # -- jobs and meta --------------------------------------------------------------------------------------
    def put_job(self, job_id: str, kind: str, status: str, payload: dict | None = None, result=None) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, status, payload, result, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET status=excluded.status, result=excluded.result, "
                "updated=excluded.updated",
                (
                    job_id,
                    kind,
                    status,
                    json.dumps(payload or {}),
                    None if result is None else json.dumps(result),
                    now,
                    now,
                ),
            )

    def job(self, job_id: str) -> dict:
        rows = self._query(
            "SELECT id, kind, status, payload, result, attempts, created, updated FROM jobs WHERE id = ?", (job_id,)
        )
        if not rows:
            raise NotFound(f"unknown job {job_id!r}")
        job_id, kind, status, payload, result, attempts, created, updated = rows[0]
        return {"id": job_id, "kind": kind, "status": status, "payload": json.loads(payload),
                "result": None if result is None else json.loads(result), "attempts": attempts,
                "created": created, "updated": updated}  # fmt: skip

    def jobs_with_status(self, kind: str, statuses: tuple[str, ...]) -> list[str]:
        """Ids of the jobs of a kind in any of these states, oldest first."""
        marks = ", ".join("?" * len(statuses))
        sql = f"SELECT id FROM jobs WHERE kind = ? AND status IN ({marks}) ORDER BY created"
        return [row[0] for row in self._query(sql, (kind, *statuses))]

    # A job queue in the same file: enqueue (bounded, deduplicated), claim, finish, recover after a restart.
    PENDING = ("queued", "running")

    def enqueue_job(
        self, job_id: str, kind: str, payload: dict, client: str, max_pending: int, max_per_client: int
    ) -> bool:
        """Queue a job; False when the same job is already queued or running (nothing added). `QueueFull` when
        `max_pending` jobs of this kind, or `max_per_client` of this client, are already waiting."""
        with self.transaction() as db:
            self._lock_queue(db, kind)
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None and row[0] in self.PENDING:
                return False
            pending = db.execute(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE client = ?) FROM jobs WHERE kind = ? AND status IN (?, ?)",
                (client, kind, *self.PENDING),
            ).fetchone()
            if pending[0] >= max_pending:
                raise QueueFull(f"the {kind} queue is full ({pending[0]} jobs waiting); try again later")
            if pending[1] >= max_per_client:
                raise QueueFull(f"you already have {pending[1]} {kind} jobs waiting; try again when one is done")
            now = time.time()
            db.execute(
                "INSERT INTO jobs (id, kind, status, payload, result, created, updated, client, attempts) "
                "VALUES (?, ?, 'queued', ?, NULL, ?, ?, ?, 0) ON CONFLICT(id) DO UPDATE SET status='queued', "
                "payload=excluded.payload, result=NULL, updated=excluded.updated, client=excluded.client, attempts=0",
                (job_id, kind, json.dumps(payload), now, now, client),
            )
            return True

    def _lock_queue(self, db, kind: str) -> None:
        """Order this transaction's enqueue with every other one of `kind` (SQLite: BEGIN IMMEDIATE already holds
        the database's write lock, so nothing more is needed)."""

    # How a claim locks the row it takes (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the write lock suffices).
    _CLAIM_LOCK = ""

    def claim_job(self, kind: str) -> dict | None:
        """The oldest queued job of this kind that no other claimer is taking, marked running by this object (its
        owner; its attempt counted); None when none waits. From the first claim on, this object says it is alive
        (`heartbeat`) until it is closed, so its running jobs are known to be its own."""
        self._keep_alive()
        with self.transaction() as db:
            row = db.execute(
                f"SELECT id FROM jobs WHERE kind = ? AND status = 'queued' ORDER BY created LIMIT 1{self._CLAIM_LOCK}",
                (kind,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated = ?, owner = ? WHERE id = ?",
                (time.time(), self._host, row[0]),
            )
        return self.job(row[0])

    def heartbeat(self) -> None:
        """Say this owner is alive (its running jobs are its own while it says so every `HOST_TIMEOUT` s)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO hosts (host, seen) VALUES (?, ?) ON CONFLICT (host) DO UPDATE SET seen = excluded.seen",
                (self._host, time.time()),
            )

    def _keep_alive(self) -> None:
        """From the first claim on, a thread says this owner is alive every `HEARTBEAT_EVERY` seconds (also while
        a long job runs), until `close`."""
        if self._alive is None:
            self.heartbeat()
            self._alive = threading.Thread(target=self._beat, name="store-heartbeat", daemon=True)
            self._alive.start()

    def _beat(self) -> None:
        while not self._closed.wait(HEARTBEAT_EVERY):
            try:
                self.heartbeat()
            except Exception:  # the next beat tries again; missing several makes this owner's jobs recoverable
                log.exception("heartbeat failed")

    # Running jobs whose owner has not said it is alive for `HOST_TIMEOUT` seconds (its process or host is gone).
    _DEAD_OWNER = "kind = ? AND status = 'running' AND owner NOT IN (SELECT host FROM hosts WHERE seen >= ?)"

    def fail_dead_jobs(self, kind: str, reason: str) -> int:
        """Fail, with `reason`, the running jobs of this kind whose owner is dead (see `claim_job`): jobs not to be
        run twice (admin jobs). Jobs of live owners and queued jobs are left alone. Returns how many."""
        now = time.time()
        with self.transaction() as db:
            return db.execute(
                f"UPDATE jobs SET status = 'failed', result = ?, updated = ? WHERE {self._DEAD_OWNER}",
                (json.dumps({"error": reason}), now, kind, now - HOST_TIMEOUT),
            ).rowcount

    def finish_job(self, job_id: str, status: str, result: dict | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, result = ?, updated = ? WHERE id = ?",
                (status, None if result is None else json.dumps(result), time.time(), job_id),
            )

    def recover_jobs(self, kind: str, max_attempts: int) -> tuple[int, int]:
        """After a restart: jobs left running are queued again, or failed (with the reason) once they have
        been tried `max_attempts` times. Returns (re-queued, failed)."""
        reason = json.dumps({"error": f"interrupted by a restart {max_attempts} times; not retried"})
        with self.transaction() as db:
            failed = db.execute(
                "UPDATE jobs SET status = 'failed', result = ?, updated = ? "
                "WHERE kind = ? AND status = 'running' AND attempts >= ?",
                (reason, time.time(), kind, max_attempts),
            ).rowcount
            requeued = db.execute(
                "UPDATE jobs SET status = 'queued', updated = ? WHERE kind = ? AND status = 'running'",
                (time.time(), kind),
            ).rowcount
        return requeued, failed

    def count_jobs(self, kind: str, status: str) -> int:
        return self._query("SELECT COUNT(*) FROM jobs WHERE kind = ? AND status = ?", (kind, status))[0][0]

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    # -- bookkeeping ----------------------------------------------------------------------------------------
    def _bulk_writing(self, db):
        """What a bulk write of events runs under (SQLite: a bigger page cache while it lasts)."""
        return _big_cache(db)

    @staticmethod
    def _already_imported(db: sqlite3.Connection, source: str, digest: str) -> bool:
        row = db.execute("SELECT sha256 FROM imports WHERE source = ?", (source,)).fetchone()
        return row is not None and row[0] == digest

    @staticmethod
    def _record_import(db: sqlite3.Connection, source: str, kind: str, digest: str, rows: int) -> None:
        db.execute(
            "INSERT OR REPLACE INTO imports (source, kind, sha256, rows, imported) VALUES (?, ?, ?, ?, ?)",
            (source, kind, digest, rows, time.time()),
        )


@contextmanager
def _big_cache(db: sqlite3.Connection, mib: int = IMPORT_CACHE_MIB) -> Iterator[None]:
    """A bigger page cache for a bulk write (the events' indexes are updated in random order), then the default."""
    before = db.execute("PRAGMA cache_size").fetchone()[0]
    db.execute(f"PRAGMA cache_size=-{mib * 1024}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA cache_size={before}")


def _style_event_dict(row: tuple) -> dict:
    """A stored style event (id, user_id, style, event, ts) with its weight: +1 like, -1 dislike, 0 clear."""
    keys = ("id", "user_id", "style", "event", "timestamp")
    weight = {"style_like": 1.0, "style_dislike": -1.0}.get(row[3], 0.0)
    return {**dict(zip(keys, row, strict=True)), "weight": weight}


def _interaction_rows(interactions: pd.DataFrame, source: str) -> Iterator[tuple]:
    """(user_id, item_id, timestamp, event, weight) tuples of an interaction table; `DataError` without the
    needed columns."""
    missing = {"user_id", "item_id", "timestamp"} - set(interactions.columns)
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
    weight = interactions["weight"] if "weight" in interactions else pd.Series(1.0, index=interactions.index)
    event = interactions["event"] if "event" in interactions else pd.Series("purchase", index=interactions.index)
    return zip(
        interactions["user_id"].astype(str).tolist(),
        interactions["item_id"].astype(str).tolist(),
        interactions["timestamp"].astype(float).tolist(),
        event.astype(str).tolist(),
        weight.astype(float).tolist(),
        strict=True,
    )


def owner_name(store: object) -> str:
    """The name a store object claims jobs under: the machine, the process and the object."""
    return f"{socket.gethostname()}:{os.getpid()}:{id(store):x}"


def _digest(rows: list[tuple]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(repr(row).encode())
    return h.hexdigest()


def _item_dict(row: tuple) -> dict:
    item_id, title, category, attributes, image = row
    return {"item_id": item_id, "title": title, "category": category, "image": image,
            "attributes": json.loads(attributes)}  # fmt: skip
