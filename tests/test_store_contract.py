"""The store's contract on both engines (SQLite and PostgreSQL, `store_url`), its schema versions and migrations,
`open_store`'s URLs, and the job queue shared by several hosts."""

from __future__ import annotations

import sqlite3
import threading
import time

import numpy as np
import pandas as pd
import pytest

from recsys.store import schema
from recsys.store.data_io import DataError
from recsys.store.opener import StoreAPI, StoreURLError, is_postgres, open_store, sqlite_path, store_exists
from recsys.store.sqlite import INDEXES, SCHEMA, NotFound, QueueFull, Store


@pytest.fixture
def store(store_url):
    opened = open_store(store_url)
    opened.upsert_item("A1", "red mug", "mug", {"colour": "red"}, "a1.jpg")
    opened.upsert_item("A2", "blue mug", "mug")
    opened.upsert_item("B1", "striped shirt", "shirt")
    yield opened
    opened.close()


def test_both_engines_implement_the_interface(store):
    assert isinstance(store, StoreAPI)


def test_items_and_listing(store):
    store.upsert_item("A1", "red mug, new", "mug", {"colour": "crimson"})  # replaces
    assert store.item("A1")["attributes"] == {"colour": "crimson"} and store.item("A1")["image"] is None
    assert [i["item_id"] for i in store.items()] == ["A1", "A2", "B1"]  # no limit
    assert [i["item_id"] for i in store.items("mug", limit=1, offset=1)] == ["A2"]
    assert store.count_items(search="MUG") == 2 and store.count_items(search="100%") == 0
    assert store.delete_item("B1") and not store.delete_item("B1")
    with pytest.raises(NotFound, match="unknown item id 'B1'"):
        store.item("B1")
    with pytest.raises(DataError, match="item_id is empty"):
        store.upsert_item(" ")


def test_events_are_idempotent_by_client_id_and_tailed_in_order(store):
    first = store.add_event("u1", "A1", "click", client_event_id="c-1")
    assert store.add_event("u1", "A1", "click", client_event_id="c-1") == first  # a retry: stored once
    ids = store.insert_events([("u2", "A2", "purchase", 5.0, None, "c-2"), ("u2", "A2", "purchase", 5.0, None, "c-2"),
                               ("u3", "B1", "like", None, 2.5, None)])  # fmt: skip
    assert ids[0] == ids[1] and len(set(ids)) == 2 and store.count_events() == 3
    assert store.event(ids[0])["timestamp"] == 5.0 and store.event(ids[2])["weight"] == 2.5
    assert store.item_weights("u2") == {"A2": 1.0}
    users, last = store.users_with_events_since(first)
    assert users == ["u2", "u3"] and last == store.last_event_id() == ids[2]
    assert store.users_with_events_since(last) == ([], last)
    assert store.users() == ["u1", "u2", "u3"] and store.shoppers() == []
    assert list(store.interactions("u2")["item_id"]) == ["A2"]
    with pytest.raises(NotFound):
        store.event(10_000)


def test_style_events_settings_vectors_meta(store):
    like = store.add_style_event("u1", "stripes", "style_like", client_event_id="s-1")
    again = store.add_style_event("u1", "stripes", "style_like", client_event_id="s-1")
    assert like == again and like["weight"] == 1.0
    store.add_style_event("u1", "dots", "style_dislike")
    assert [e["style"] for e in store.style_events("u1")] == ["stripes", "dots"]
    with pytest.raises(DataError, match="unknown style event"):
        store.add_style_event("u1", "dots", "meh")
    store.put_render_settings("u1", {"strength": 0.5})
    store.put_render_settings("u1", {"strength": 0.75})
    assert store.render_settings("u1") == {"strength": 0.75} and store.render_settings("u9") == {}
    store.put_item_vector("A1", "m1", np.arange(3, dtype=np.float32))
    store.put_item_vector("A1", "m1", np.ones(3, np.float32))
    assert store.item_vectors("m1")["A1"].tolist() == [1.0, 1.0, 1.0]
    store.put_style("stripes", "s.jpg")
    store.put_style("stripes", "s2.jpg", np.ones(2, np.float32), "m1")
    assert [(s["image"], s["vector"].tolist()) for s in store.styles()] == [("s2.jpg", [1.0, 1.0])]
    store.set_meta("generation", "1")
    store.set_meta("generation", "2")
    assert store.meta("generation") == "2" and store.meta("nope", "x") == "x"


def test_imports_replace_a_changed_source(store):
    events = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["A1", "A2"], "timestamp": [1.0, 2.0]})
    assert store.import_interactions(events, "e.csv") == 2
    assert store.import_interactions(events, "e.csv") == 0
    assert store.import_interactions(events.iloc[:1], "e.csv") == 1
    assert store.count_events() == 1 and store.shoppers() == ["u1"]


def test_data_version_sees_another_connections_commit(store_url, store):
    """SQLite: at once; PostgreSQL: once the commit's notification has arrived (waited for, up to 30 s)."""
    other = open_store(store_url)
    before = store.data_version()
    other.add_event("u1", "A1")
    assert wait_for(lambda: store.data_version() != before)
    seen = store.data_version()
    time.sleep(0.2)
    assert store.data_version() == seen  # nothing committed: no change
    other.close()


def wait_for(check, ceiling: float = 30.0) -> bool:
    """Whether `check()` becomes true within `ceiling` seconds (a generous bound, not a deadline)."""
    end = time.monotonic() + ceiling
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_the_job_queue(store):
    assert store.enqueue_job("j1", "render", {"n": 1}, "c1", max_pending=3, max_per_client=2)
    assert not store.enqueue_job("j1", "render", {"n": 1}, "c1", 3, 2)  # already queued: deduplicated
    assert store.enqueue_job("j2", "render", {"n": 2}, "c1", 3, 2)
    with pytest.raises(QueueFull, match="you already have 2"):
        store.enqueue_job("j3", "render", {}, "c1", 3, 2)
    store.enqueue_job("j3", "render", {}, "c2", 3, 2)
    with pytest.raises(QueueFull, match="queue is full"):
        store.enqueue_job("j4", "render", {}, "c3", 3, 2)
    job = store.claim_job("render")
    assert job["id"] == "j1" and job["status"] == "running" and job["attempts"] == 1
    store.finish_job("j1", "done", {"ok": True})
    assert store.job("j1")["result"] == {"ok": True} and store.count_jobs("render", "queued") == 2
    assert store.claim_job("admin") is None
    store.claim_job("render")  # j2 running: a restart of this host queues it again
    assert store.recover_jobs("render", max_attempts=2) == (1, 0)
    assert store.claim_job("render")["attempts"] == 2
    assert store.recover_jobs("render", max_attempts=2) == (0, 1)  # tried twice: failed, with the reason
    assert "interrupted" in store.job("j2")["result"]["error"]


def test_hosts_claim_different_jobs_and_a_dead_hosts_jobs_are_recovered(store_url, monkeypatch):
    if not is_postgres(store_url):
        pytest.skip("one host per SQLite store")
    from recsys.store import sqlite as store_module

    hosts = [open_store(store_url) for _ in range(4)]
    for n in range(8):
        hosts[0].enqueue_job(f"j{n}", "render", {}, f"c{n}", 100, 100)
    claimed: list[str] = []
    barrier = threading.Barrier(len(hosts))

    def claim(host) -> None:
        barrier.wait()
        for _ in range(2):
            claimed.append(host.claim_job("render")["id"])

    threads = [threading.Thread(target=claim, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == [f"j{n}" for n in range(8)]  # each job claimed once
    # A live host's running jobs are its own; once it stops saying it is alive, another host recovers them.
    assert hosts[1].recover_jobs("render", 3) == (2, 0)  # only host 1's own two
    hosts[0].close()  # host 0 "dies": its heartbeat stops
    monkeypatch.setattr(store_module, "HOST_TIMEOUT", 0.0)
    time.sleep(0.01)
    requeued, failed = hosts[1].recover_jobs("render", 3)
    assert (requeued, failed) == (6, 0)  # hosts 0, 2, 3 all look dead with a zero timeout
    for host in hosts[1:]:
        host.close()


# -- schema versions -------------------------------------------------------------------------------------------
def previous_release_store(path) -> None:
    """A store as the release before schema versions wrote it (its schema and indexes, user_version 0), with
    data in it."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.execute("ALTER TABLE interactions ADD COLUMN client_event_id TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN client TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    db.executescript(INDEXES)
    db.execute("INSERT INTO items (item_id, title, updated) VALUES ('A1', 'red mug', 1.0)")
    db.execute("INSERT INTO interactions (user_id, item_id, ts, client_event_id) VALUES ('u1', 'A1', 1.0, 'c-1')")
    db.execute(
        "INSERT INTO jobs (id, kind, status, created, updated, attempts) VALUES ('j', 'render', 'running', 1, 1, 1)"
    )
    db.commit()
    db.close()


def test_a_previous_release_store_is_migrated_on_open(tmp_path):
    path = tmp_path / "old.db"
    previous_release_store(path)
    store = Store(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    assert store.item("A1")["title"] == "red mug" and store.add_event("u1", "A1", client_event_id="c-1") == 1
    assert store.recover_jobs("render", 3) == (1, 0)
    store.close()
    Store(path).close()  # opening a current store changes nothing


def test_an_oldest_store_gets_every_column(tmp_path):
    path = tmp_path / "oldest.db"
    sqlite3.connect(path).executescript(SCHEMA).close()  # the first release: no later columns
    store = Store(path)
    store.upsert_item("A1")
    assert store.add_event("u1", "A1", client_event_id="c") == store.add_event("u1", "A1", client_event_id="c")
    store.close()


def test_a_newer_schema_is_refused(tmp_path, store_url):
    if is_postgres(store_url):
        open_store(store_url).close()
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (schema.VERSION + 1,))
    else:
        db = sqlite3.connect(store_url)
        db.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
        db.close()
    with pytest.raises(schema.SchemaError, match="newer than this release"):
        open_store(store_url)


def test_postgres_schema_is_versioned(store_url):
    if not is_postgres(store_url):
        pytest.skip("PostgreSQL only")
    import psycopg

    open_store(store_url).close()
    open_store(store_url).close()
    with psycopg.connect(store_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, schema.VERSION + 1))


# -- URLs ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["mysql://shop@db/shop", "sqlite:/x.db", "sqlite://", "redis://localhost:6379"])
def test_a_bad_url_is_refused_and_touches_nothing(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreURLError, match="sqlite:///"):
        open_store(url)
    assert list(tmp_path.iterdir()) == []


def test_sqlite_urls_and_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///var/shop.db") == sqlite_path("var/shop.db")
    assert str(sqlite_path(f"sqlite:///{tmp_path}/a.db")) == f"{tmp_path}/a.db"
    assert not store_exists("sqlite:///var/shop.db")
    open_store("sqlite:///var/shop.db").close()
    assert store_exists("var/shop.db") and is_postgres("postgresql://x@y/z") and is_postgres("postgres://x@y/z")


def test_an_unreachable_postgres_is_a_clear_error():
    from recsys.store.pg_local import free_port

    with pytest.raises(ConnectionError, match="cannot connect to the PostgreSQL store"):
        open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/shop")


def test_a_store_is_copied_between_engines(tmp_path, postgres):
    from recsys.cli import main

    source = tmp_path / "shop.db"
    store = Store(source)
    store.upsert_item("A1", "red mug")
    first = store.add_event("u1", "A1", client_event_id="c-1")
    store.put_style("dots", "d.jpg", np.ones(2, np.float32), "m1")
    store.close()
    url = postgres.create_database("copied")
    assert main(["copy-store", str(source), url]) == 0
    copied = open_store(url)
    assert copied.add_event("u1", "A1", client_event_id="c-1") == first  # ids kept: the retry finds it
    assert copied.add_event("u2", "A1") == first + 1  # new ids continue after the copied ones
    assert copied.styles()[0]["vector"].tolist() == [1.0, 1.0]
    copied.close()
    assert main(["copy-store", str(source), url]) == 2  # not empty: refused, nothing written
    assert main(["copy-store", url, str(tmp_path / "back.db")]) == 0
    assert Store(tmp_path / "back.db").count_events() == 2
    assert main(["copy-store", str(source), "mysql://x@y/z"]) == 2


def test_commands_refuse_a_bad_url_and_name_an_unreachable_server(tmp_path, monkeypatch, capsys):
    from recsys.cli import main
    from recsys.store.pg_local import free_port

    monkeypatch.chdir(tmp_path)
    assert main(["import", "--db", "mysql://shop@db/shop", "--catalog", "catalog"]) == 2
    assert "unknown store 'mysql'" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/shop"
    assert main(["import", "--db", url, "--catalog", "catalog"]) == 2
    assert "cannot connect to the PostgreSQL store" in capsys.readouterr().err
    assert main(["feed", "U0001", "--db", "redis://x"]) == 2


def test_one_admin_job_across_hosts_and_a_dead_owners_job_is_failed(store_url, monkeypatch):
    """Admin jobs on the same queue: one in flight across hosts (the bound is the store's), any host claims it,
    and a job whose owner stops saying it is alive is failed with the reason, not queued again."""
    from recsys.store import sqlite as store_module

    a, b = open_store(store_url), open_store(store_url)  # two hosts (SQLite: two processes' store objects)
    assert a.enqueue_job("a1", "admin", {"task": "index"}, "admin", max_pending=1, max_per_client=1)
    with pytest.raises(QueueFull):
        b.enqueue_job("b1", "admin", {"task": "cf"}, "admin", 1, 1)  # a's job is queued: b may not start one
    assert b.claim_job("admin")["id"] == "a1" and a.claim_job("admin") is None  # b runs it
    assert a.fail_dead_jobs("admin", "host gone") == 0  # b says it is alive: its job is its own
    assert a.job("a1")["status"] == "running"
    b.close()  # b dies: its heartbeat stops
    monkeypatch.setattr(store_module, "HOST_TIMEOUT", 0.0)
    time.sleep(0.01)
    assert a.fail_dead_jobs("render", "host gone") == 0  # only the kind asked for
    assert a.fail_dead_jobs("admin", "host gone") == 1
    assert a.job("a1")["status"] == "failed" and a.job("a1")["result"] == {"error": "host gone"}
    assert a.claim_job("admin") is None  # failed, not queued again
    assert a.enqueue_job("a2", "admin", {"task": "cf"}, "admin", 1, 1)  # the next job may start
    a.close()


def test_the_job_runner_records_results_and_errors(store_url):
    from recsys.service.job_runner import JobRunner

    store = open_store(store_url)
    for n in range(2):
        store.enqueue_job(f"j{n}", "admin", {"n": n}, "admin", 5, 5)

    def work(job: dict) -> dict:
        if job["payload"]["n"] == 1:
            raise ValueError("no events")
        return {"n": job["payload"]["n"]}

    runner = JobRunner(store, "admin", work, error_text=lambda exc: f"{type(exc).__name__}: {exc}")
    assert runner.run_once()["id"] == "j0" and runner.run_once()["id"] == "j1" and runner.run_once() is None
    assert store.job("j0")["status"] == "done" and store.job("j0")["result"] == {"n": 0}
    assert store.job("j1")["status"] == "failed" and store.job("j1")["result"] == {"error": "ValueError: no events"}
    store.close()
