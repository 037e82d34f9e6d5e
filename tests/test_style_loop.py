"""The render -> feedback -> re-adjust or recommend loop over HTTP: fast renders inline, style likes and dislikes
moving the shopper's preferred styles (at once and after a restart), remembered adjustments, and products in the
style they liked."""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from recsys.service.app import create_app


@pytest.fixture(scope="module")
def settings(service_settings, tmp_path_factory):
    """The demo service on its own copy of the store (feedback here must not leak into other tests), rendering
    at the service's default working size."""
    root = tmp_path_factory.mktemp("loop")
    source, copy = sqlite3.connect(service_settings.db), sqlite3.connect(root / "shop.db")
    source.backup(copy)
    source.close()
    copy.close()
    return service_settings.model_copy(
        update={"db": root / "shop.db", "renders_dir": root / "renders", "render_size": 384}
    )


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def shopper(client):
    return client.get("/users").json()[0]


def _names(client, user: str) -> list[str]:
    return [s["name"] for s in client.get(f"/users/{user}/styles", params={"k": 50}).json()]


def test_fast_render_of_a_palette_style_is_answered_inline(client):
    """Answered in the request itself (200 + the image, not a 202 job); its speed is measured by
    benchmarks/render_speed.py, not here (a busy machine would miss any deadline)."""
    warm = client.get("/items/D0001/render", params={"style": "dots"})  # loads the networks once
    assert warm.status_code == 200
    response = client.get("/items/D0005/render", params={"style": "stripes"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (240, 360)
    blend = client.get("/items/D0005/render", params={"style": "stripes:0.6,dots:0.4"})
    assert blend.status_code == 200 and blend.content != response.content
    assert client.get("/items/D0005/render", params={"style": "stripes:0.6,nope:0.4"}).status_code == 404
    bad = client.get("/items/D0005/render", params={"style": "stripes:lots"})
    assert bad.status_code == 422 and "not a weight" in bad.json()["detail"]
    gatys = client.get("/items/D0005/render", params={"style": "stripes:0.6,dots:0.4", "renderer": "gatys"})
    assert gatys.status_code == 422 and "fast renderer" in gatys.json()["detail"]


def test_like_moves_a_style_up_and_dislike_down_at_once_and_after_a_restart(client, settings, shopper):
    before = _names(client, shopper)
    assert sorted(before) == ["dots", "stripes"]
    low, high = before[-1], before[0]
    liked = client.post("/events", json={"user_id": shopper, "style": low, "event": "style_like"})
    assert liked.status_code == 201 and liked.json()["style"] == low
    assert _names(client, shopper)[0] == low
    scores = {s["name"]: s for s in client.get(f"/users/{shopper}/styles", params={"k": 50}).json()}
    assert scores[low]["feedback"] > 0 and scores[low]["history"] is not None
    client.post("/events", json={"user_id": shopper, "style": high, "event": "style_dislike"})
    after = client.get(f"/users/{shopper}/styles", params={"k": 50}).json()
    assert after[-1]["name"] == high and after[-1]["feedback"] < 0
    with TestClient(create_app(settings)) as restarted:
        assert restarted.get(f"/users/{shopper}/styles", params={"k": 50}).json() == after
    # a shopper with no history: feedback alone
    client.post("/events", json={"user_id": "newcomer", "style": "dots", "event": "style_like"})
    assert _names(client, "newcomer") == ["dots"]
    for body in (
        {"user_id": shopper, "style": "nope", "event": "style_like"},
        {"user_id": shopper, "event": "style_like"},
        {"user_id": shopper, "item_id": "D0001", "style": "dots", "event": "style_like"},
        {"user_id": shopper, "style": "dots", "event": "purchase"},
    ):
        assert client.post("/events", json=body).status_code in (404, 422), body


def test_remembered_adjustments_apply_to_the_next_render(client, settings, shopper):
    assert client.get(f"/users/{shopper}/render-settings").json()["brightness"] == 1.0
    plain = client.get("/items/D0007/render", params={"style": "dots", "user_id": shopper}).content
    adjust = {"strength": 0.7, "style_amount": 0.8, "brightness": 1.3, "contrast": 1.1, "saturation": 0.9}
    assert client.put(f"/users/{shopper}/render-settings", json=adjust).status_code == 200
    explicit = client.get("/items/D0007/render", params={"style": "dots", **adjust}).content
    personal = client.get("/items/D0007/render", params={"style": "dots", "user_id": shopper})
    assert personal.headers["cache-control"] == "private, no-cache"
    assert personal.content == explicit != plain
    pixels = np.asarray(Image.open(io.BytesIO(personal.content)), np.float32)
    assert pixels.mean() > np.asarray(Image.open(io.BytesIO(plain)), np.float32).mean()  # brighter
    # a request's own value wins over the remembered one
    override = client.get("/items/D0007/render", params={"style": "dots", "user_id": shopper, "brightness": 1.0})
    assert override.content != personal.content
    with TestClient(create_app(settings)) as restarted:
        assert restarted.get(f"/users/{shopper}/render-settings").json() == adjust
    assert client.put(f"/users/{shopper}/render-settings", json={"brightness": 9}).status_code == 422
    assert client.put(f"/users/{shopper}/render-settings", json={"sparkle": 1}).status_code == 422


def test_products_in_the_style_you_liked(client, settings, shopper):
    from recsys.store.sqlite import Store

    found = client.get(f"/users/{shopper}/styles/dots/items", params={"k": 8}).json()["items"]
    assert len(found) == 8 and {r["reason"] for r in found} == {"in the style you liked"}
    store = Store(settings.db)
    owned = set(store.interactions(shopper)["item_id"])
    palette = {s["name"]: s for s in store.styles()}
    store.close()
    assert not owned & {r["item"]["id"] for r in found}
    # near the style: the style's own product (D0026, a dotted t-shirt, is the "dots" reference) comes first
    anonymous = client.get("/users/nobody-yet/styles/dots/items", params={"k": 8}).json()["items"]
    assert anonymous[0]["item"]["id"] == "D0026" and palette["dots"]["image"].endswith("D0026.jpg")
    assert client.get(f"/users/{shopper}/styles/nope/items").status_code == 404
