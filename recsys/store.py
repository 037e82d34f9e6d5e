"""The embedded store: one SQLite file in WAL mode with items, interactions (events), styles, jobs and imports.

Imports are idempotent (a source whose content was imported before is skipped; a changed source replaces its
earlier rows) and atomic (one transaction: a bad row leaves the store as it was). Events posted one by one are
committed with `synchronous=FULL`, so an acknowledged event survives a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data_io import EVENT_WEIGHTS, DataError, attributes_json

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
    ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS style_events_user ON style_events (user_id, ts);
CREATE TABLE IF NOT EXISTS render_settings (user_id TEXT PRIMARY KEY, settings TEXT NOT NULL, updated REAL NOT NULL);
"""
STYLE_EVENTS = ("style_like", "style_dislike")


class Store:
    """Thread-safe access to the SQLite store at `path` (created with its schema when missing)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: committed when the block ends, rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- items ----------------------------------------------------------------------------------------------
    def import_items(self, catalog: pd.DataFrame, source: str) -> int:
        """Insert or update the items of a catalog table (`recsys.data_io.read_catalog`); returns rows written,
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
                "INSERT OR REPLACE INTO items (item_id, title, category, attributes, image, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)",
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
            raise KeyError(f"unknown item id {item_id!r}")
        return _item_dict(rows[0])

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
    def import_interactions(self, interactions: pd.DataFrame, source: str) -> int:
        """Add an interaction table (`recsys.data_io.read_interactions`) from `source`; re-importing the same
        content is a no-op, changed content replaces that source's earlier rows. Returns rows written."""
        missing = {"user_id", "item_id", "timestamp"} - set(interactions.columns)
        if missing:
            raise DataError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
        frame = interactions.assign(
            weight=interactions.get("weight", 1.0), event=interactions.get("event", "purchase")
        )[["user_id", "item_id", "timestamp", "event", "weight"]]
        rows = list(frame.astype({"user_id": str, "item_id": str}).itertuples(index=False, name=None))
        digest = _digest(rows)
        with self.transaction() as db:
            if self._already_imported(db, source, digest):
                return 0
            db.execute("DELETE FROM interactions WHERE source = ?", (source,))
            db.executemany(
                "INSERT INTO interactions (user_id, item_id, ts, event, weight, source) VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, source) for row in rows],
            )
            self._record_import(db, source, "interactions", digest, len(rows))
        return len(rows)

    def add_event(
        self, user_id: str, item_id: str, event: str = "purchase", timestamp: float | None = None, weight=None
    ) -> int:
        """Record one event durably; returns its id. The item must exist; the event type must be known."""
        if not user_id.strip():
            raise DataError("user_id is empty")
        if event not in EVENT_WEIGHTS:
            raise DataError(f"unknown event {event!r} (one of {', '.join(EVENT_WEIGHTS)})")
        self.item(item_id)
        weight = EVENT_WEIGHTS[event] if weight is None else float(weight)
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO interactions (user_id, item_id, ts, event, weight, source) VALUES (?, ?, ?, ?, ?, 'api')",
                (user_id, item_id, time.time() if timestamp is None else float(timestamp), event, weight),
            )
            return int(cursor.lastrowid)

    def interactions(self, user_id: str | None = None, since_id: int = 0) -> pd.DataFrame:
        """Interactions (all, or one user's) as the standard table plus their `id`, in time order."""
        sql = "SELECT id, user_id, item_id, ts, weight, event FROM interactions WHERE id > ?"
        params: tuple = (since_id,)
        if user_id is not None:
            sql, params = sql + " AND user_id = ?", (*params, user_id)
        rows = self._query(sql + " ORDER BY ts, id", params)
        return pd.DataFrame(rows, columns=["id", "user_id", "item_id", "timestamp", "weight", "event"])

    def users(self, limit: int | None = None) -> list[str]:
        sql = "SELECT DISTINCT user_id FROM interactions ORDER BY user_id LIMIT ?"
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
    def add_style_event(self, user_id: str, style: str, event: str, timestamp: float | None = None) -> int:
        """Record a shopper's feedback on a palette style (`style_like` / `style_dislike`) durably; its id."""
        if not user_id.strip():
            raise DataError("user_id is empty")
        if event not in STYLE_EVENTS:
            raise DataError(f"unknown style event {event!r} (one of {', '.join(STYLE_EVENTS)})")
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO style_events (user_id, style, event, ts) VALUES (?, ?, ?, ?)",
                (user_id, style, event, time.time() if timestamp is None else float(timestamp)),
            )
            return int(cursor.lastrowid)

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
        rows = self._query("SELECT id, kind, status, payload, result FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise KeyError(f"unknown job {job_id!r}")
        job_id, kind, status, payload, result = rows[0]
        return {"id": job_id, "kind": kind, "status": status, "payload": json.loads(payload),
                "result": None if result is None else json.loads(result)}  # fmt: skip

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    # -- bookkeeping ----------------------------------------------------------------------------------------
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


def _digest(rows: list[tuple]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(repr(row).encode())
    return h.hexdigest()


def _item_dict(row: tuple) -> dict:
    item_id, title, category, attributes, image = row
    return {"item_id": item_id, "title": title, "category": category, "image": image,
            "attributes": json.loads(attributes)}  # fmt: skip
