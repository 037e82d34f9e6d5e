"""The HTTP service: every route's success and error cases, admin auth, events, restarts, renders."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import admin_job_end, cancel_admin_jobs, job_process, private_service
from fastapi.testclient import TestClient
from PIL import Image

from recsys.service.app import create_app
from recsys.service.render_queue import RenderWorker
from recsys.store.sqlite import Store

KEY = {"X-API-Key": "secret"}


@pytest.fixture(scope="module")
def settings(service_settings, tmp_path_factory):
    """The demo service on a private copy of its store, index and models: this module adds and deletes items,
    posts events, retrains and rebuilds, none of which may reach the modules that run after it."""
    return private_service(service_settings, tmp_path_factory.mktemp("service-module"))


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(autouse=True)
def no_admin_job_left(request):
    """Each test's admin jobs are its own: one it left queued or running (it failed before it waited) is cancelled,
    so the next test's start is not refused with 409."""
    db = request.getfixturevalue("settings").db if "client" in request.fixturenames else None
    yield
    if db is not None:
        cancel_admin_jobs(db)


def _jpeg(size=(120, 180), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def test_health_items_and_images(client):
    health = client.get("/health").json()
    assert health["ready"] and health["items"] == 288 and health["style_vectors"] == 288
    assert health["model_id"].startswith("vgg19-facets-64-")
    assert health["feed_model"] == "blend" and health["ranker_version"] is None  # until a ranker is trained
    page = client.get("/items", params={"category": "bag", "limit": 5}).json()
    assert page["total"] == 48 and len(page["items"]) == 5 and page["items"][0]["category"] == "bag"
    assert client.get("/items", params={"q": "floral mug", "limit": 100}).json()["total"] == 8
    item = client.get("/items/D0001").json()
    assert item["id"] == "D0001" and item["image_url"] == "/items/D0001/image"
    image = client.get("/items/D0001/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    missing = client.get("/items/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    assert client.get("/items", params={"limit": 0}).status_code == 422


def test_similar_and_shop_this_style(client, demo_shop):
    catalog_dir, _, _ = demo_shop
    similar = client.get("/items/D0010/similar", params={"k": 6}).json()
    assert len(similar["items"]) == 6 and all(r["item"]["id"] != "D0010" for r in similar["items"])
    assert (
        client.get("/items/D0010/similar", params={"k": 4, "category": "mug"}).json()["items"][0]["item"]["category"]
        == "mug"
    )
    assert client.get("/items/NOPE/similar").status_code == 404
    assert client.get("/items/D0010/similar", params={"k": 0}).status_code == 422

    photo = (catalog_dir / "images" / "D0012.jpg").read_bytes()
    found = client.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"k": "3"})
    assert found.status_code == 200 and found.json()["items"][0]["item"]["id"] == "D0012"
    by_item = client.post("/shop-this-style", data={"item_id": "D0012", "k": "3", "user_id": "U0001"})
    assert by_item.status_code == 200 and len(by_item.json()["items"]) == 3

    assert client.post("/shop-this-style", data={"k": "3"}).status_code == 422
    not_image = client.post("/shop-this-style", files={"image": ("x.jpg", b"hello", "image/jpeg")})
    assert not_image.status_code == 422 and "not a usable image" in not_image.json()["detail"]
    too_big = client.post("/shop-this-style", files={"image": ("x.jpg", b"0" * 2_100_000, "image/jpeg")})
    assert too_big.status_code == 413
    huge = client.post("/shop-this-style", files={"image": ("x.jpg", _jpeg((3000, 2000)), "image/jpeg")})
    assert huge.status_code == 413 and "over the limit" in huge.json()["detail"]
    empty = client.post("/shop-this-style", files={"image": ("x.jpg", b"", "image/jpeg")})
    assert empty.status_code == 422


def test_feed_styles_and_events(client, settings):
    feed = client.get("/users/U0001/feed", params={"k": 8}).json()
    assert len(feed["items"]) == 8 and all(r["reason"] for r in feed["items"])
    assert client.get("/users/U0001/feed", params={"alpha": 2}).status_code == 422
    stranger = client.get("/users/somebody-new/feed", params={"k": 3}).json()["items"]
    assert [r["reason"] for r in stranger] == ["popular right now"] * 3
    styles = client.get("/users/U0001/styles").json()
    assert {s["name"] for s in styles} == {"stripes", "dots"}
    assert client.post("/events", json={"user_id": "!!! SPAM", "item_id": "D0001"}).status_code == 201
    assert client.get("/users", params={"limit": 3}).json() == ["U0000", "U0001", "U0002"]  # the shop's shoppers

    striped = [i["id"] for i in client.get("/items", params={"q": "stripes", "limit": 3}).json()["items"]]
    for item in striped:
        posted = client.post("/events", json={"user_id": "web-shopper", "item_id": item, "event": "like"})
        assert posted.status_code == 201 and posted.json()["id"] > 0
    fresh = client.get("/users/web-shopper/feed", params={"k": 6}).json()["items"]
    assert sum("stripes" in r["item"]["title"] for r in fresh) >= 3, [r["item"]["title"] for r in fresh]
    assert client.post("/events", json={"user_id": "u", "item_id": "NOPE"}).status_code == 404
    assert client.post("/events", json={"user_id": "u", "item_id": "D0001", "event": "stare"}).status_code == 422
    assert client.post("/events", json={"user_id": "", "item_id": "D0001"}).status_code == 422


def test_kept_feeds_change_with_the_shoppers_events(client, settings):
    """A repeated feed comes from the feed cache, and is the ranking's own answer; an event of the shopper (posted
    here, or recorded by another worker process) replaces it at once."""
    catalog = client.app.state.service.catalog

    def feed(user):
        return [r["item"]["id"] for r in client.get(f"/users/{user}/feed", params={"k": 6}).json()["items"]]

    first, hits = feed("U0003"), catalog.feeds.hits
    assert feed("U0003") == first and catalog.feeds.hits == hits + 1
    assert first == [r.item_id for r in catalog.feed("U0003", 6)]  # the ranking gives the kept answer again

    before = feed("cache-shopper")
    striped = [i["id"] for i in client.get("/items", params={"q": "stripes", "limit": 3}).json()["items"]]
    for item in striped[:2]:
        assert client.post("/events", json={"user_id": "cache-shopper", "item_id": item, "event": "like"}).is_success
    after = feed("cache-shopper")
    assert after != before and after == [r.item_id for r in catalog.feed("cache-shopper", 6)]
    other_worker = Store(settings.db)  # an event recorded by another process: folded in on the next request
    other_worker.add_event("cache-shopper", striped[2], "purchase")
    other_worker.close()
    misses = catalog.feeds.misses
    assert feed("cache-shopper") == [r.item_id for r in catalog.feed("cache-shopper", 6)]
    assert catalog.feeds.misses == misses + 1  # ranked again, not the kept answer


def test_acknowledged_events_survive_a_restart(settings):
    with TestClient(create_app(settings)) as first:
        before = first.get("/health").json()["events"]
        ids = [first.post("/events", json={"user_id": "r", "item_id": "D0002"}).json()["id"] for _ in range(5)]
    with TestClient(create_app(settings)) as second:
        assert second.get("/health").json()["events"] == before + 5
    store = Store(settings.db)
    assert set(ids) <= set(store.interactions("r")["id"])
    store.close()


def test_render_is_queued_then_served(client, settings):
    params = {"style": "dots", "strength": 0.75, "renderer": "gatys"}  # gatys is queued; fast answers inline
    first = client.get("/items/D0005/render", params=params)
    assert first.status_code == 202 and first.headers["location"] == first.json()["url"]
    assert client.get(first.json()["url"]).json()["status"] == "queued"
    worker = RenderWorker(settings)  # what the render worker process runs
    assert worker.run_once() and not worker.run_once()
    worker.close()
    job = client.get(first.json()["url"]).json()
    assert job["status"] == "done", job
    image = client.get("/items/D0005/render", params=params)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (240, 360)
    assert client.get(job["result_url"]).content == image.content
    assert client.get("/items/D0005/render", params={"style": "nope"}).status_code == 404
    assert (
        client.get("/items/D0005/render", params={"style": "dots", "strength": 3, "renderer": "gatys"}).status_code
        == 422
    )
    assert client.get("/items/NOPE/render", params={"style": "dots"}).status_code == 404
    assert client.get("/jobs/nope").status_code == 404


ADMIN_ROUTES = [
    ("post", "/items", {"data": {"item_id": "X1"}}),
    ("delete", "/items/D0001", {}),
    ("post", "/styles", {"data": {"name": "s"}, "files": {"image": ("s.jpg", b"x", "image/jpeg")}}),
    ("delete", "/styles/dots", {}),
    ("post", "/admin/index/rebuild", {}),
    ("post", "/admin/cf/retrain", {}),
    ("post", "/admin/ranker/retrain", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ADMIN_ROUTES)
def test_admin_routes_need_the_key(client, method, path, kwargs):
    assert getattr(client, method)(path, **kwargs).status_code == 401
    wrong = getattr(client, method)(path, headers={"X-API-Key": "guess"}, **kwargs)
    assert wrong.status_code == 403 and "wrong API key" in wrong.json()["detail"]
    assert client.get("/items/D0001").status_code == 200  # nothing changed
    assert "dots" in {s["name"] for s in client.get("/styles").json()}


def test_admin_changes(client):
    photo = _jpeg()
    added = client.post(
        "/items",
        headers=KEY,
        data={"item_id": "NEW-1", "title": "Red plain", "category": "bag", "attributes": '{"pattern": "solid"}'},
        files={"image": ("new.jpg", photo, "image/jpeg")},
    )
    assert added.status_code == 201 and added.json()["attributes"] == {"pattern": "solid"}
    # the background task has run when the response is complete: the new item is findable by its style
    found = client.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"k": "1"})
    assert found.json()["items"][0]["item"]["id"] == "NEW-1"
    bad = client.post("/items", headers=KEY, data={"item_id": "NEW-2"}, files={"image": ("x.jpg", b"no", "image/jpeg")})
    assert bad.status_code == 422 and client.get("/items/NEW-2").status_code == 404
    assert client.post("/items", headers=KEY, data={"item_id": "a/b"}).status_code == 422

    assert client.delete("/items/NEW-1", headers=KEY).status_code == 204
    assert client.get("/items/NEW-1").status_code == 404
    assert client.delete("/items/NEW-1", headers=KEY).status_code == 404
    found = client.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"k": "5"})
    assert "NEW-1" not in [r["item"]["id"] for r in found.json()["items"]]

    style = client.post("/styles", headers=KEY, data={"name": "red"}, files={"image": ("r.jpg", photo, "image/jpeg")})
    assert style.status_code == 201 and style.json()["has_vector"]
    assert client.get("/styles/red/image").status_code == 200
    assert client.delete("/styles/red", headers=KEY).status_code == 204
    assert client.delete("/styles/red", headers=KEY).status_code == 404
    info = _finished(client, client.post("/admin/index/rebuild", headers=KEY))
    assert info["count"] == 288 and client.get("/health").json()["index_version"] == info["version"]


def _finished(client, started) -> dict:
    """Wait for an admin job (the 202 answer that started it) to end (`admin_job_end`: a ceiling, not a deadline:
    jobs run at nice 10 and take minutes on a machine busy with other work); its result."""
    assert started.status_code == 202, started.text
    url = started.json()["status_url"]
    assert started.headers["location"] == url and started.json()["status"] in ("queued", "running")
    job = admin_job_end(client, url)
    assert job["status"] == "done", job
    return job["result"]


def test_retrains_are_background_jobs(client):
    """A retrain answers at once (202 + a job), refuses a second one while it runs (409), runs outside the web
    process, and its new versions are served afterwards."""
    before = client.get("/health").json()
    started = client.post("/admin/cf/retrain", headers=KEY)
    # answered before the work: the job is still queued or running when the 202 arrives (checked in _finished)
    assert started.status_code == 202 and started.json()["status"] in ("queued", "running"), started.text
    second = client.post("/admin/ranker/retrain", headers=KEY)
    assert second.status_code == 409 and second.json()["job_id"] == started.json()["id"], second.text
    assert client.get("/health").status_code == 200  # the service answers meanwhile
    retrained = _finished(client, started)
    assert retrained["users"] >= 300 and retrained["ranker"]["learned"]  # the demo shop has the data to learn
    assert retrained["version"] != before["cf_version"]
    health = client.get("/health").json()  # this worker swapped in what the job process saved
    assert health["cf_version"] == retrained["version"] and health["feed_model"] == "learned"
    assert health["ranker_version"] == retrained["ranker"]["version"]
    again = _finished(client, client.post("/admin/ranker/retrain", headers=KEY))
    assert again["learned"] and again["version"] > retrained["ranker"]["version"]
    assert client.get("/health").json()["ranker_version"] == again["version"]
    assert np.isfinite(client.get("/users/U0001/feed").json()["items"][0]["score"])
    assert client.get("/admin/jobs/nope", headers=KEY).status_code == 404
    assert client.get(started.json()["status_url"]).status_code == 401  # admin only


def test_a_killed_admin_job_is_reported_failed(client, settings):
    """A job whose process dies without a result is failed with a reason, and does not block the next one."""
    import signal

    started = client.post("/admin/index/rebuild", headers=KEY)
    assert started.status_code == 202
    os.kill(job_process(started.json()["id"]), signal.SIGKILL)  # found by the job id on its command line
    job = admin_job_end(client, started.json()["status_url"])
    assert job["status"] == "failed" and ("killed" in job["error"] or "status -9" in job["error"]), job
    _finished(client, client.post("/admin/index/rebuild", headers=KEY))  # the next job runs


def test_a_job_a_test_left_is_cancelled_and_the_next_start_is_accepted(client, settings):
    """The suite's isolation (`cancel_admin_jobs`, run after every test here): a job left running (held stopped,
    so it cannot end by itself first) is killed and failed, and the next test's start gets 202, not 409."""
    import signal

    started = client.post("/admin/cf/retrain", headers=KEY)
    assert started.status_code == 202, started.text
    os.kill(job_process(started.json()["id"]), signal.SIGSTOP)
    assert client.post("/admin/index/rebuild", headers=KEY).status_code == 409  # in flight: refused
    assert cancel_admin_jobs(settings.db) == [started.json()["id"]]
    assert admin_job_end(client, started.json()["status_url"])["status"] == "failed"
    _finished(client, client.post("/admin/index/rebuild", headers=KEY))


def test_stopping_the_service_stops_its_admin_jobs(client, settings):
    with TestClient(create_app(settings)) as other_worker:
        started = other_worker.post("/admin/index/rebuild", headers=KEY)
        assert started.status_code == 202
    job = client.get(started.json()["status_url"], headers=KEY).json()  # any worker answers from the store
    assert job["status"] == "failed" and ("stopped" in job["error"] or "status" in job["error"]), job


def test_web_page_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and "stylerec" in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/users/{user_id}/feed", "/shop-this-style", "/events", "/items/{item_id}/render"} <= set(schema["paths"])


def test_logs_are_json_lines():
    import json
    import logging

    from recsys.service.logs import JsonFormatter

    record = logging.LogRecord("stylerec.service", logging.INFO, __file__, 1, "request", (), None)
    record.path, record.status = "/health", 200
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "request" and entry["path"] == "/health" and entry["status"] == 200
    assert entry["level"] == "info" and entry["time"].endswith("Z")


# -- the service, wired once: bounded, non-blocking, persisted ---------------------------------------------------
@pytest.fixture
def fresh(settings, tmp_path):
    """Settings over a private copy of the demo store (for tests that fill queues or restart the service)."""
    source, copy = sqlite3.connect(settings.db), sqlite3.connect(tmp_path / "shop.db")
    source.backup(copy)
    source.close()
    copy.close()
    return settings.model_copy(update={"db": tmp_path / "shop.db", "renders_dir": tmp_path / "renders"})


def test_huge_numbers_get_422_not_500(client):
    huge = "99999999999999999999"
    for path, params in (
        ("/items", {"offset": huge}),
        ("/items", {"limit": huge}),
        ("/users", {"limit": huge}),
        ("/users/U0001/feed", {"k": huge}),
        ("/items/D0001/similar", {"k": huge}),
        ("/users/U0001/styles", {"k": huge}),
    ):
        response = client.get(path, params=params)
        assert response.status_code == 422 and "detail" in response.json(), (path, params)
    assert client.post("/shop-this-style", data={"item_id": "D0001", "k": huge}).status_code == 422
    assert client.get("/items", params={"offset": 10**9}).json()["items"] == []
    assert client.get("/items", params={"offset": 10**9 + 1}).status_code == 422
    ok = client.get("/health")
    assert (
        ok.headers["x-request-id"]
        and client.get("/health", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"] == "abc-1"
    )


def test_only_our_not_found_errors_are_404(settings, monkeypatch):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        catalog = c.app.state.service.catalog

        def broken(*args, **kwargs):
            return {}["a bug, not an unknown id"]

        monkeypatch.setattr(catalog, "feed", broken)
        response = c.get("/users/U0001/feed")
        assert response.status_code == 500 and response.json()["request_id"] == response.headers["x-request-id"]
        assert c.get("/items/NOPE").status_code == 404


def test_duplicate_event_id_is_stored_once(client):
    before = client.get("/health").json()["events"]
    body = {"user_id": "retrier", "item_id": "D0003", "event": "like", "event_id": "client-42"}
    first = client.post("/events", json=body)
    again = client.post("/events", json={**body, "item_id": "D0004"})  # a retry; the first answer stands
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert first.json()["item_id"] == "D0003" and first.json()["weight"] == 1.0
    assert client.get("/health").json()["events"] == before + 1
    other = client.post("/events", json={**body, "event_id": "client-43"})
    assert other.json()["id"] != first.json()["id"]


def test_the_service_answers_from_the_persisted_index_and_models(settings):
    from index.persistence import current_version

    with TestClient(create_app(settings)) as first:
        health = first.get("/health").json()
    assert health["index_version"] == (settings.index / "CURRENT").read_text().strip()
    assert health["cf_version"] == current_version(settings.models / "cf") and health["index_spec"] == "Flat"
    with TestClient(create_app(settings)) as second:  # a restart loads the same versions: nothing retrained
        again = second.get("/health").json()
    assert (again["index_version"], again["cf_version"]) == (health["index_version"], health["cf_version"])


def test_cli_feed_is_the_service_feed(client, settings, capsys):
    import json

    from recsys.cli import main

    flags = ["--db", str(settings.db), "--store", str(settings.embeddings), "--index", str(settings.index)]
    for user in ("U0001", "U0007", "web-shopper"):
        assert main(["feed", user, "-k", "8", "--json", *flags, "--models", str(settings.models)]) == 0
        cli = [(r["item_id"], r["score"]) for r in json.loads(capsys.readouterr().out)]
        served = [
            (r["item"]["id"], r["score"]) for r in client.get(f"/users/{user}/feed", params={"k": 8}).json()["items"]
        ]
        assert cli == served, user


def test_an_upload_being_embedded_does_not_block_other_requests(fresh, monkeypatch):
    # threads (not processes) for the embedding pool here, so that the test can slow an embedding down
    settings = fresh.model_copy(update={"embed_workers": 1, "embed_queue": 0, "embed_processes": False})
    with TestClient(create_app(settings)) as c:
        catalog = c.app.state.service.catalog
        for warming in c.app.state.service.embedder.warm:  # the start's warm-up holds the one slot until done
            warming.result(timeout=600)
        started, release = threading.Event(), threading.Event()
        real = catalog.embed_image

        def slow_embed(image, max_pixels=None):
            started.set()
            release.wait(30)
            return real(image, max_pixels)

        monkeypatch.setattr(catalog, "embed_image", slow_embed)
        photo = _jpeg()
        results = {}
        upload = threading.Thread(
            target=lambda: results.setdefault(
                "upload", c.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")})
            )
        )
        upload.start()
        assert started.wait(30)
        assert c.get("/health").status_code == 200 and c.get("/users/U0001/feed").status_code == 200
        assert upload.is_alive()  # answered while the embedding is still held
        busy = c.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")})
        assert busy.status_code == 503 and int(busy.headers["retry-after"]) > 0
        release.set()
        upload.join(60)
        assert results["upload"].status_code == 200


def test_a_render_flood_gets_429(fresh):
    settings = fresh.model_copy(update={"render_queue": 3, "render_per_client": 2})
    with TestClient(create_app(settings)) as c:
        url = "/items/D0007/render"
        assert (
            c.get(url, params={"style": "dots", "strength": 0.33, "renderer": "gatys"}).status_code == 422
        )  # not a palette strength
        assert c.get(url, params={"style": "../../etc/passwd", "strength": 1, "renderer": "gatys"}).status_code == 404
        first = c.get(url, params={"style": "dots", "strength": 0.25, "renderer": "gatys"})
        assert first.status_code == 202
        assert (
            c.get(url, params={"style": "dots", "strength": 0.25, "renderer": "gatys"}).json()["id"]
            == first.json()["id"]
        )  # deduped
        assert c.get(url, params={"style": "dots", "strength": 0.5, "renderer": "gatys"}).status_code == 202
        refused = c.get(url, params={"style": "dots", "strength": 0.75, "renderer": "gatys"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0  # this client's bound
        assert (
            c.get(url, params={"style": "dots", "strength": 0.3, "renderer": "gatys"}, headers=KEY).status_code == 202
        )  # admin
        full = c.get(url, params={"style": "dots", "strength": 0.35, "renderer": "gatys"}, headers=KEY)
        assert full.status_code == 429 and "full" in full.json()["detail"]  # the whole queue's bound
        assert c.get("/health").json()["renders_pending"] == 3


def test_a_restart_requeues_or_fails_stranded_jobs(fresh):
    with TestClient(create_app(fresh)) as c:
        job_url = c.get("/items/D0008/render", params={"style": "dots", "strength": 0.5, "renderer": "gatys"}).json()[
            "url"
        ]
        store = Store(fresh.db)
        for restart in range(2):
            assert store.claim_job("render")["status"] == "running"  # a worker took it, then was killed
            worker = RenderWorker(fresh)
            requeued, failed = worker.recover()
            worker.close()
            assert (requeued, failed) == ((1, 0) if restart == 0 else (0, 1))
            status = c.get(job_url).json()
            assert status["status"] == ("queued" if restart == 0 else "failed")
        store.close()
        assert "restart" in status["error"]


def test_index_and_embedding_store_import_without_torch():
    code = (
        "import sys, index.style_index, index.persistence, index.sharded, transfer.store, recsys.store.sqlite;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=repo)
    assert done.returncode == 0, done.stderr


def test_events_posted_together_are_committed_together(tmp_path):
    """Group commit: concurrent events share commits, each gets its own id, and a client event id repeated in one
    batch is stored once."""
    import asyncio

    from recsys.service.event_writer import EventWriter

    store = Store(tmp_path / "shop.db")
    store.upsert_item("A", "a", "bag", {}, None)
    ids = store.insert_events([("u", "A", "click", None, None, "c1"), ("u", "A", "like", None, None, "c1"),
                               ("v", "A", "view", None, None, None)])  # fmt: skip
    assert ids[0] == ids[1] != ids[2] and len(store.interactions("u")) == 1
    writer = EventWriter(store)

    async def post(n: int) -> list[int]:
        return await asyncio.gather(*(writer.commit("w", "A", "click", None, f"e{i % 40}") for i in range(n)))

    ids = asyncio.run(post(60))
    assert len(set(ids)) == 40 and ids[:20] == ids[40:] and len(store.interactions("w")) == 40
    writer.close()
    store.close()
