"""The HTTP service: every route's success and error cases, admin auth, events, restarts, renders."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from recsys.service.app import create_app
from recsys.store import Store

KEY = {"X-API-Key": "secret"}


@pytest.fixture(scope="module")
def settings(service_settings):
    return service_settings


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def _jpeg(size=(120, 180), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def test_health_items_and_images(client):
    health = client.get("/health").json()
    assert health["ready"] and health["items"] == 288 and health["style_vectors"] == 288
    assert health["model_id"].startswith("vgg19-gram-64-")
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
    assert client.get("/users", params={"limit": 3}).json() == ["U0000", "U0001", "U0002"]

    striped = [i["id"] for i in client.get("/items", params={"q": "stripes", "limit": 3}).json()["items"]]
    for item in striped:
        posted = client.post("/events", json={"user_id": "web-shopper", "item_id": item, "event": "like"})
        assert posted.status_code == 201 and posted.json()["id"] > 0
    fresh = client.get("/users/web-shopper/feed", params={"k": 6}).json()["items"]
    assert sum("stripes" in r["item"]["title"] for r in fresh) >= 3, [r["item"]["title"] for r in fresh]
    assert client.post("/events", json={"user_id": "u", "item_id": "NOPE"}).status_code == 404
    assert client.post("/events", json={"user_id": "u", "item_id": "D0001", "event": "stare"}).status_code == 422
    assert client.post("/events", json={"user_id": "", "item_id": "D0001"}).status_code == 422


def test_acknowledged_events_survive_a_restart(settings):
    with TestClient(create_app(settings)) as first:
        before = first.get("/health").json()["events"]
        ids = [first.post("/events", json={"user_id": "r", "item_id": "D0002"}).json()["id"] for _ in range(5)]
    with TestClient(create_app(settings)) as second:
        assert second.get("/health").json()["events"] == before + 5
    store = Store(settings.db)
    assert set(ids) <= set(store.interactions("r")["id"])
    store.close()


def test_render_is_queued_then_served(client):
    params = {"style": "dots", "strength": 0.8, "renderer": "gatys"}  # gatys is queued; fast answers inline
    first = client.get("/items/D0005/render", params=params)
    assert first.status_code == 202 and first.headers["location"] == first.json()["url"]
    for _ in range(120):
        job = client.get(first.json()["url"]).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    assert job["status"] == "done", job
    image = client.get("/items/D0005/render", params=params)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (240, 360)
    assert client.get(job["result_url"]).content == image.content
    assert client.get("/items/D0005/render", params={"style": "nope"}).status_code == 404
    assert client.get("/items/D0005/render", params={"style": "dots", "strength": 3}).status_code == 422
    assert client.get("/items/NOPE/render", params={"style": "dots"}).status_code == 404
    assert client.get("/jobs/nope").status_code == 404


ADMIN_ROUTES = [
    ("post", "/items", {"data": {"item_id": "X1"}}),
    ("delete", "/items/D0001", {}),
    ("post", "/styles", {"data": {"name": "s"}, "files": {"image": ("s.jpg", b"x", "image/jpeg")}}),
    ("delete", "/styles/dots", {}),
    ("post", "/admin/index/rebuild", {}),
    ("post", "/admin/cf/retrain", {}),
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
    info = client.post("/admin/index/rebuild", headers=KEY).json()
    assert info["count"] == 288
    assert client.post("/admin/cf/retrain", headers=KEY).json()["users"] >= 300
    assert np.isfinite(client.get("/users/U0001/feed").json()["items"][0]["score"])


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
