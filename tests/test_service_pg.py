"""The service on the PostgreSQL store: two hosts (two apps, as two `stylerec serve` would be) sharing one
database and one models folder see each other's events, style feedback and event ids at once; the render queue is
shared, and a dead host's jobs are recovered by another; admin jobs are one in flight across hosts."""

from __future__ import annotations

import pytest
from conftest import admin_job_end, cancel_admin_jobs, job_process, wait_until
from fastapi.testclient import TestClient

from recsys.service.app import create_app
from recsys.service.render_queue import RenderWorker
from recsys.store.opener import open_store


@pytest.fixture(scope="module")
def pg_settings(service_settings, postgres):
    """The service settings of the shared demo shop, its store copied into a new PostgreSQL database (the index
    and models folders of its own, shared by both hosts)."""
    from recsys.store.sqlite import Store

    url = postgres.create_database("service_shop")
    source, target = Store(service_settings.db), open_store(url)
    target.import_items(source.item_table(), "demo")
    target.import_interactions(source.interactions().drop(columns="id"), "interactions.csv")
    for style in source.styles():
        target.put_style(style["name"], style["image"], style["vector"], style["model_id"])
    source.close()
    target.close()
    root = service_settings.models.parent / "pg"
    return service_settings.model_copy(
        update={"db": url, "index": root / "index", "models": root / "models", "renders_dir": root / "renders"}
    )


# B hears of A's commits by notifications (LISTEN/NOTIFY): milliseconds when quiet; a generous ceiling when busy.
NOTIFIED_S = 300.0


@pytest.fixture(scope="module")
def hosts(pg_settings):
    with TestClient(create_app(pg_settings)) as a, TestClient(create_app(pg_settings)) as b:
        yield a, b


def test_hosts_see_each_others_events_and_style_feedback(hosts):
    a, b = hosts
    bought = a.post("/events", json={"user_id": "two-hosts", "item_id": "D0005", "event": "purchase"})
    assert bought.status_code == 201
    assert b.get("/health").json()["events"] == bought.json()["id"]  # the other host's next answer counts it
    # B hears of A's commit by a notification (LISTEN/NOTIFY): waited for, with a generous ceiling.
    wait_until(lambda: "D0005" not in feed_of(b, "two-hosts"), "host B to leave out the item bought on A", NOTIFIED_S)

    styles = {s["name"]: s for s in b.get("/users/two-hosts/styles").json()}
    like = {"user_id": "two-hosts", "style": "dots", "event": "style_like", "event_id": "style-1"}
    assert a.post("/events", json=like).status_code == 201
    wait_until(
        lambda: style_score(b, "two-hosts", "dots") > styles["dots"]["score"],
        "host B to raise the style liked on A",
        NOTIFIED_S,
    )


def feed_of(client, user: str) -> list[str]:
    return [r["item"]["id"] for r in client.get(f"/users/{user}/feed", params={"k": 10}).json()["items"]]


def style_score(client, user: str, name: str) -> float:
    return {s["name"]: s["score"] for s in client.get(f"/users/{user}/styles").json()}[name]


def test_an_event_id_acknowledged_by_one_host_is_known_to_the_other(hosts):
    a, b = hosts
    body = {"user_id": "retrier", "item_id": "D0003", "event": "like", "event_id": "pg-42"}
    first = a.post("/events", json=body)
    again = b.post("/events", json={**body, "item_id": "D0004"})  # the retry went to the other host
    assert first.status_code == again.status_code == 201 and first.json() == again.json()


def test_a_dead_hosts_render_jobs_are_recovered(hosts, pg_settings, monkeypatch):
    from recsys.store import sqlite as store_module

    a, _ = hosts
    job_url = a.get("/items/D0008/render", params={"style": "dots", "strength": 0.5, "renderer": "gatys"}).json()["url"]
    dead = open_store(pg_settings.db)
    assert dead.claim_job("render")["status"] == "running"  # a host took it...
    worker = RenderWorker(pg_settings)
    assert worker.recover() == (0, 0)  # ...and is alive: its job is its own
    dead.close()  # ...then died (its heartbeat stopped)
    monkeypatch.setattr(store_module, "HOST_TIMEOUT", 0.0)
    assert worker.recover() == (1, 0)
    worker.close()
    assert a.get(job_url).json()["status"] == "queued"


# -- admin jobs: one queue for all hosts ------------------------------------------------------------------------
KEY = {"X-API-Key": "secret"}


def job_end(client, job_id: str) -> dict:
    """Wait for an admin job to leave queued/running (asked of `client`, any host); its last status."""
    return admin_job_end(client, f"/admin/jobs/{job_id}")


@pytest.fixture(autouse=True)
def no_admin_job_left(request):
    """Each test's admin jobs are its own: one left queued or running is cancelled (see `cancel_admin_jobs`)."""
    db = request.getfixturevalue("pg_settings").db if "hosts" in request.fixturenames else None
    yield
    if db is not None:
        cancel_admin_jobs(db)


def test_one_admin_job_across_hosts_any_host_answers_for_it(hosts):
    a, b = hosts
    started = a.post("/admin/index/rebuild", headers=KEY)
    assert started.status_code == 202, started.text
    second = b.post("/admin/ranker/retrain", headers=KEY)  # another host: refused while A's job is in flight
    assert second.status_code == 409 and second.json()["job_id"] == started.json()["id"], second.text
    job = job_end(b, started.json()["id"])  # B answers for A's job from the shared store
    assert job["status"] == "done" and job["result"]["count"] == 288, job
    again = b.post("/admin/index/rebuild", headers=KEY)  # done: the next one may start, on any host
    assert again.status_code == 202 and job_end(a, again.json()["id"])["status"] == "done"


def test_a_killed_admin_job_is_reported_failed_on_every_host(hosts):
    import os
    import signal

    a, b = hosts
    started = a.post("/admin/index/rebuild", headers=KEY)
    assert started.status_code == 202, started.text
    os.kill(job_process(started.json()["id"]), signal.SIGKILL)
    job = job_end(b, started.json()["id"])
    assert job["status"] == "failed" and "status -9" in job["error"], job
    assert job_end(b, b.post("/admin/index/rebuild", headers=KEY).json()["id"])["status"] == "done"


def test_a_dead_hosts_admin_job_is_failed_not_run_again(hosts, pg_settings, monkeypatch):
    from recsys.store import sqlite as store_module

    a, b = hosts
    dead = open_store(pg_settings.db)  # a host queued an admin job and claimed it...
    assert dead.enqueue_job("dead-host-job", "admin", {"task": "cf"}, "admin", 1, 1)
    assert dead.claim_job("admin")["id"] == "dead-host-job"
    refused = b.post("/admin/index/rebuild", headers=KEY)  # ...and is alive: its job is in flight
    assert refused.status_code == 409 and refused.json()["job_id"] == "dead-host-job"
    dead.close()  # ...then died (its heartbeat stopped)
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "HOST_TIMEOUT", 0.0)
        job = b.get("/admin/jobs/dead-host-job", headers=KEY).json()
    assert job["status"] == "failed" and "not run again" in job["error"], job
    assert a.get("/admin/jobs/dead-host-job", headers=KEY).json()["status"] == "failed"  # in the store: all hosts
    assert job_end(a, a.post("/admin/index/rebuild", headers=KEY).json()["id"])["status"] == "done"


def test_stopping_a_host_stops_its_admin_jobs(hosts, pg_settings):
    _, b = hosts
    with TestClient(create_app(pg_settings)) as third_host:
        started = third_host.post("/admin/index/rebuild", headers=KEY)
        assert started.status_code == 202, started.text
    job = b.get(started.json()["status_url"], headers=KEY).json()
    assert job["status"] == "failed" and "stopped" in job["error"], job
    assert b.post("/admin/index/rebuild", headers=KEY).status_code == 202  # no longer in flight
