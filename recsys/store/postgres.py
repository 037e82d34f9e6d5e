"""The server store: the same store on PostgreSQL (psycopg 3 and a connection pool), for several service hosts.

`PostgresStore` keeps `Store`'s interface and its engine-neutral SQL (written with `?` marks, which the
connection wrapper here turns into psycopg's `%s`) and overrides what PostgreSQL spells differently: upserts,
`LIMIT`, returning new ids, the job queue's claim (`FOR UPDATE SKIP LOCKED`), durability and change detection.

Events are committed one writer at a time across all hosts (a transaction-scoped advisory lock), so event ids
grow in commit order: a host that tails the events by id (`users_with_events_since`) never skips an event that
another host committed later with a smaller id.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Literal

import numpy as np

from common.errors import Unavailable
from recsys.store import sqlite as _store
from recsys.store.data_io import EVENT_WEIGHTS, DataError
from recsys.store.schema import POSTGRES_STEPS, VERSION, SchemaError
from recsys.store.sqlite import STYLE_EVENTS, Store, _style_event_dict, owner_name

log = logging.getLogger("stylerec.store")
# Advisory lock keys (any bigint; these spell "stylerec" and a purpose).
_MIGRATE_LOCK = 0x5354594C45520001
_EVENTS_LOCK = 0x5354594C45520002
_QUEUE_LOCK = 0x5354594C45520003
_CHANNEL = "stylerec_commits"  # NOTIFY channel: every write transaction says it committed


class StoreUnreachable(Unavailable, ConnectionError):
    """The PostgreSQL server of a store cannot be reached (503; still a `ConnectionError`)."""


class _Connection:
    """A psycopg connection that takes the SQLite store's `?` parameter marks."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple = ()):
        # Without parameters the SQL goes as written (a literal % needs no escaping, as in SQLite).
        return self.conn.execute(sql.replace("?", "%s"), params or None)

    def executemany(self, sql: str, rows: list[tuple]):
        cursor = self.conn.cursor()
        cursor.executemany(sql.replace("?", "%s"), rows)
        return cursor


class PostgresStore(Store):
    """Thread-safe access to a PostgreSQL store at `url` (`postgresql://user@host:port/db`), its schema created
    or migrated on open. Every host, process and thread uses its own pooled connections; the database orders
    their writes."""

    shared = True  # several hosts use it at once: job owners and dead hosts matter (`recover_jobs`)

    def __init__(self, url: str, min_size: int = 1, max_size: int = 8) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.url = self.path = url  # `path`: what `Store` callers print
        self._synchronous = "on"
        self._host = owner_name(self)
        self._alive: threading.Thread | None = None  # says this host is alive while it has claimed jobs
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None  # counts commit notifications (`data_version`)
        self._listening = False
        self._notified = 0
        self._local = threading.local()  # `writes_events`: this thread's transaction adds events
        try:
            with psycopg.connect(url, connect_timeout=10) as probe:  # a clear error now, not a pool timing out
                probe.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            raise StoreUnreachable(f"cannot connect to the PostgreSQL store {_redacted(url)}: {exc}".strip()) from exc
        self._pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, kwargs={"autocommit": True}, open=True, name="stylerec"
        )
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_LOCK,))  # one host migrates; the others wait
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            found = row[0] or 0
            if found > VERSION:
                raise SchemaError(
                    f"{_redacted(self.url)}: schema version {found} is newer than this release's ({VERSION})"
                )
            for version in range(found + 1, VERSION + 1):
                db.conn.execute(POSTGRES_STEPS[version - 1])
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def close(self) -> None:
        self._closed.set()
        for thread in (self._alive, self._listener):
            if thread is not None:
                thread.join(timeout=10)
        self._pool.close()

    # -- connections, durability, change detection ------------------------------------------------------------
    def set_synchronous(self, level: Literal["full", "normal"]) -> None:
        """PostgreSQL's terms for the same choice: "full" is `synchronous_commit = on` (a commit returns once its
        log is flushed to the server's disk); "normal" is `synchronous_commit = off` (a commit returns before the
        flush, which follows within 3 x `wal_writer_delay`, 0.6 s by default: a host's death loses nothing, the
        database server's crash or a power loss may lose that last moment)."""
        self._synchronous = {"full": "on", "normal": "off"}[level]

    def checkpoint_separately(self) -> None:
        """Nothing to do: PostgreSQL checkpoints in its own background process."""

    def checkpoint(self) -> None:
        """Nothing to do (see `checkpoint_separately`)."""

    @contextmanager
    def _writing(self) -> Iterator[None]:
        yield  # the database orders writers itself

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:  # type: ignore[override]
        """One atomic unit of work on a pooled connection: committed when the block ends, rolled back on error."""
        with self._pool.connection() as conn, conn.transaction():
            # Listeners (`data_version`) are told at commit; nothing is sent on a rollback.
            conn.execute(f"SET LOCAL synchronous_commit = {self._synchronous}; NOTIFY {_CHANNEL}")
            if getattr(self._local, "writes_events", False):  # ids in commit order (see the module docstring)
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_EVENTS_LOCK,))
            yield _Connection(conn)

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._pool.connection() as conn:
            return conn.execute(sql.replace("?", "%s"), params or None).fetchall()

    def data_version(self) -> int:
        """A number that changes whenever a transaction is committed to the store, by any host: a count of the
        notifications that every write transaction sends at its commit (`LISTEN/NOTIFY`, received by a thread
        of this object, started by the first call), so asking costs no round trip. While that thread is not
        connected, a hash of the server's current snapshot (xmin, xmax, transactions in progress: it changes
        whenever a write transaction starts or ends; one round trip, no table read)."""
        if self._listener is None:
            ready = threading.Event()
            self._listener = threading.Thread(target=self._listen, args=(ready,), name="store-listen", daemon=True)
            self._listener.start()
            ready.wait(10)
        if self._listening:
            return self._notified
        return hash(self._query("SELECT pg_current_snapshot()::text")[0][0])

    def _listen(self, ready: threading.Event) -> None:
        import psycopg

        while not self._closed.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {_CHANNEL}")
                    self._notified += 1  # (re)connected: whatever was sent meanwhile, look once
                    self._listening = True
                    ready.set()
                    while not self._closed.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._notified += 1
            except Exception:  # the server went away: ask it (snapshot) until listening again
                log.warning("store notifications lost; polling until reconnected", exc_info=True)
            finally:
                self._listening = False
                ready.set()
            self._closed.wait(1.0)

    # -- what PostgreSQL spells differently --------------------------------------------------------------------
    @staticmethod
    def _item_filter(category: str | None, search: str | None) -> tuple[str, tuple]:
        """As SQLite's: `search` ignores case (SQLite's LIKE does, for ASCII; PostgreSQL's ILIKE does)."""
        where, params = Store._item_filter(category, search)
        return where.replace(" LIKE ", " ILIKE "), params

    def items(
        self, category: str | None = None, limit: int | None = None, offset: int = 0, search: str | None = None
    ) -> list[dict]:
        """Items in id order, optionally of one category and/or whose id or title contains `search`."""
        from recsys.store.sqlite import _item_dict

        where, params = self._item_filter(category, search)
        sql = "SELECT item_id, title, category, attributes, image FROM items" + where
        rows = self._query(sql + " ORDER BY item_id LIMIT ? OFFSET ?", (*params, limit, offset))
        return [_item_dict(r) for r in rows]

    def users(self, limit: int | None = None) -> list[str]:
        """Every user with events, in id order."""
        sql = "SELECT DISTINCT user_id FROM interactions ORDER BY user_id LIMIT ?"
        return [r[0] for r in self._query(sql, (limit,))]

    def shoppers(self, limit: int | None = None) -> list[str]:
        """The shop's own shoppers: users of imported interaction files, never a user only seen through the API."""
        sql = "SELECT DISTINCT user_id FROM interactions WHERE source != 'api' ORDER BY user_id LIMIT ?"
        return [r[0] for r in self._query(sql, (limit,))]

    def import_interactions(
        self, interactions, source: str, content_digest: str | None = None, bulk: bool = False
    ) -> int:
        """As `Store.import_interactions`, its transaction ordered with the other hosts' event commits. `bulk` is
        accepted and ignored: PostgreSQL keeps its indexes in place (other hosts read them meanwhile)."""
        self._local.writes_events = True
        try:
            return super().import_interactions(interactions, source, content_digest)
        finally:
            self._local.writes_events = False

    def _bulk_writing(self, db):
        """PostgreSQL sizes its own buffers: nothing to change for a bulk write."""
        return nullcontext()

    def insert_events(self, events: list[tuple]) -> list[int]:
        """Write checked events (see `Store.insert_events`) in one transaction, after every other host's events
        transaction (so ids grow in commit order). Returns their ids; a repeated `client_event_id` gives the
        first event's id."""
        ids = []
        with self.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_EVENTS_LOCK,))
            for user_id, item_id, event, timestamp, weight, client_event_id in events:
                weight = EVENT_WEIGHTS[event] if weight is None else float(weight)
                row = db.execute(
                    "INSERT INTO interactions (user_id, item_id, ts, event, weight, source, client_event_id) "
                    "VALUES (?, ?, ?, ?, ?, 'api', ?) ON CONFLICT (client_event_id) "
                    "WHERE client_event_id IS NOT NULL DO NOTHING RETURNING id",
                    (user_id, item_id, time.time() if timestamp is None else float(timestamp), event, weight,
                     client_event_id),
                ).fetchone()  # fmt: skip
                if row is None:  # stored before (committed, or earlier in this transaction)
                    sql = "SELECT id FROM interactions WHERE client_event_id = ?"
                    row = db.execute(sql, (client_event_id,)).fetchone()
                ids.append(int(row[0]))
        return ids

    def put_style(self, name: str, image: str, vector: np.ndarray | None = None, model_id: str | None = None) -> None:
        """Add or replace a named style reference (its style vector when known)."""
        if not name.strip():
            raise DataError("style name is empty")
        blob = None if vector is None else np.asarray(vector, np.float32).tobytes()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO styles (name, image, model_id, vector, created) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET image = excluded.image, model_id = excluded.model_id, "
                "vector = excluded.vector, created = excluded.created",
                (name, image, model_id, blob, time.time()),
            )

    def styles(self) -> list[dict]:
        """All styles with their vectors (float32 arrays or None)."""
        rows = self._query("SELECT name, image, model_id, vector FROM styles ORDER BY name")
        return [
            {"name": n, "image": i, "model_id": m, "vector": None if v is None else np.frombuffer(v, np.float32)}
            for n, i, m, v in rows
        ]

    def add_style_event(
        self, user_id: str, style: str, event: str, timestamp: float | None = None, client_event_id: str | None = None
    ) -> dict:
        """Record a shopper's feedback on a palette style (see `Store.add_style_event`)."""
        if not user_id.strip():
            raise DataError("user_id is empty")
        if event not in STYLE_EVENTS:
            raise DataError(f"unknown style event {event!r} (one of {', '.join(STYLE_EVENTS)})")
        with self.transaction() as db:
            row = db.execute(
                "INSERT INTO style_events (user_id, style, event, ts, client_event_id) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (client_event_id) DO NOTHING RETURNING id, user_id, style, event, ts",
                (user_id, style, event, time.time() if timestamp is None else float(timestamp), client_event_id),
            ).fetchone()
            if row is None:
                sql = "SELECT id, user_id, style, event, ts FROM style_events WHERE client_event_id = ?"
                row = db.execute(sql, (client_event_id,)).fetchone()
        return _style_event_dict(row)

    def put_render_settings(self, user_id: str, settings: dict) -> None:
        """Remember a shopper's render adjustments (their defaults for the next renders)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO render_settings (user_id, settings, updated) VALUES (?, ?, ?) ON CONFLICT (user_id) "
                "DO UPDATE SET settings = excluded.settings, updated = excluded.updated",
                (user_id, json.dumps(settings, sort_keys=True), time.time()),
            )

    def put_item_vector(self, item_id: str, model_id: str, vector: np.ndarray) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO item_vectors (item_id, model_id, vector) VALUES (?, ?, ?) "
                "ON CONFLICT (item_id, model_id) DO UPDATE SET vector = excluded.vector",
                (item_id, model_id, np.asarray(vector, np.float32).tobytes()),
            )

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @staticmethod
    def _record_import(db, source: str, kind: str, digest: str, rows: int) -> None:
        db.execute(
            "INSERT INTO imports (source, kind, sha256, rows, imported) VALUES (?, ?, ?, ?, ?) ON CONFLICT (source) "
            "DO UPDATE SET kind = excluded.kind, sha256 = excluded.sha256, rows = excluded.rows, "
            "imported = excluded.imported",
            (source, kind, digest, rows, time.time()),
        )

    # -- the job queue: any host claims; a dead host's jobs are recovered by the others -----------------------
    _CLAIM_LOCK = " FOR UPDATE SKIP LOCKED"  # hosts claiming at once get different jobs (`Store.claim_job`)

    def _lock_queue(self, db, kind: str) -> None:
        """Enqueues of a kind are ordered across hosts (a transaction-scoped advisory lock), so the queue's bounds
        hold when several hosts enqueue at once."""
        db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_QUEUE_LOCK >> 32, kind))

    def recover_jobs(self, kind: str, max_attempts: int) -> tuple[int, int]:
        """Jobs left running by this host (a restart) or by a host not seen for `HOST_TIMEOUT` seconds (its
        death): queued again, or failed with the reason once tried `max_attempts` times. Jobs of live hosts are
        left alone. Returns (re-queued, failed)."""
        self.heartbeat()
        reason = json.dumps({"error": f"interrupted by a restart {max_attempts} times; not retried"})
        orphaned = (
            "kind = ? AND status = 'running' AND (owner = ? OR owner NOT IN (SELECT host FROM hosts WHERE seen >= ?))"
        )
        now = time.time()
        seen = now - _store.HOST_TIMEOUT
        with self.transaction() as db:
            failed = db.execute(
                f"UPDATE jobs SET status = 'failed', result = ?, updated = ? WHERE {orphaned} AND attempts >= ?",
                (reason, now, kind, self._host, seen, max_attempts),
            ).rowcount
            requeued = db.execute(
                f"UPDATE jobs SET status = 'queued', owner = '', updated = ? WHERE {orphaned}",
                (now, kind, self._host, seen),
            ).rowcount
        return requeued, failed


def _redacted(url: str) -> str:
    """The URL without its password (for messages)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
