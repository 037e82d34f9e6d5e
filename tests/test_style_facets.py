"""Style facets and the style loop a shopper believes (issue 22), on the demo shop over HTTP: what the shopper
sees is checked against the products' own pattern and colour attributes, not only against scores."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from recsys.service.app import create_app

CLOTHING = ("tshirt", "dress", "trousers")


@pytest.fixture(scope="module")
def settings(service_settings, demo_shop, tmp_path_factory):
    """The demo service on its own copy of the store, with the demo's drawn palette (bold-stripes among them)
    embedded by the catalog's own encoder."""
    from recsys.shop.demo import make_demo_styles
    from recsys.store.sqlite import Store
    from recsys.style.palette import add_style

    root = tmp_path_factory.mktemp("facets")
    source, copy = sqlite3.connect(service_settings.db), sqlite3.connect(root / "shop.db")
    source.backup(copy)
    source.close()
    copy.close()
    store = Store(root / "shop.db")
    for path in make_demo_styles(root / "drawn"):
        add_style(store, path.stem, path, root / "styles", demo_shop[1])
    store.close()
    return service_settings.model_copy(update={"db": root / "shop.db", "styles_dir": root / "styles"})


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def demo_rows(demo_catalog):
    from recsys.shop.demo import read_catalog

    return read_catalog(demo_catalog / "items.csv")


def _patterns(found: list[dict]) -> list[str]:
    return [r["item"]["attributes"]["pattern"] for r in found]


def _photo(path, degrees: float = 0.0) -> bytes:
    """A product photo as a shopper would upload it (optionally turned, on a white studio background)."""
    image = Image.open(path).convert("RGB")
    if degrees:
        image = image.rotate(degrees, expand=True, fillcolor=(246, 246, 246), resample=Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _palette_patterns(settings, demo_rows, demo_catalog) -> dict[str, str]:
    """{palette style: the demo pattern it shows} for every style of the shop's palette that shows one: the drawn
    styles that `recsys.shop.demo.STYLE_PATTERNS` names, and the styles made from a demo product's photo (the
    product's own pattern attribute)."""
    from recsys.shop.demo import STYLE_PATTERNS
    from recsys.store.sqlite import Store

    by_image = {str((demo_catalog / row["image"]).resolve()): row["pattern"] for row in demo_rows.values()}
    store = Store(settings.db)
    styles = store.styles()
    store.close()
    known = {}
    for style in styles:
        pattern = STYLE_PATTERNS.get(style["name"]) or by_image.get(str(Path(style["image"]).resolve()))
        if pattern is not None:
            known[style["name"]] = pattern
    return known


def test_in_the_style_you_liked_follows_the_pattern_for_every_shopper(client, settings, demo_rows, demo_catalog):
    known = _palette_patterns(settings, demo_rows, demo_catalog)
    # the drawn bold-stripes and the shop's two product styles (red/cream stripes and dots) at least
    assert {"bold-stripes": "stripes", "stripes": "stripes", "dots": "dots"}.items() <= known.items()
    shoppers = client.get("/users", params={"limit": 100}).json()
    assert len(shoppers) >= 3
    for style, pattern in known.items():
        for user in [*shoppers[:6], "nobody-yet"]:
            found = client.get(f"/users/{user}/styles/{style}/items", params={"k": 12}).json()["items"]
            assert len(found) == 12 and {r["reason"] for r in found} == {"in the style you liked"}
            assert _patterns(found).count(pattern) >= 8, (style, user, _patterns(found))
    # the colours on request: bold-stripes is yellow on black
    colour = client.get("/users/nobody-yet/styles/bold-stripes/items", params={"k": 12, "facet": "colour"}).json()
    assert _patterns(colour["items"]).count("stripes") < 8


def test_facets_of_a_same_style_query(client, demo_rows):
    item = "D0010"  # a red/cream striped t-shirt
    own = demo_rows[item]["colour"]
    assert demo_rows[item]["pattern"] == "stripes" and own == "red-cream"
    pattern = client.get(f"/items/{item}/similar", params={"k": 12, "facet": "pattern"}).json()["items"]
    colour = client.get(f"/items/{item}/similar", params={"k": 12, "facet": "colour"}).json()["items"]
    both = client.get(f"/items/{item}/similar", params={"k": 12}).json()["items"]
    assert _patterns(pattern).count("stripes") >= 10
    colours = [r["item"]["attributes"]["colour"] for r in colour]
    assert colours.count(own) >= 6 and _patterns(colour).count("stripes") < 8
    assert [r["item"]["id"] for r in both] != [r["item"]["id"] for r in pattern]
    weighted = client.get(f"/items/{item}/similar", params={"k": 12, "pattern_weight": 1.0}).json()["items"]
    assert [r["item"]["id"] for r in weighted] == [r["item"]["id"] for r in pattern]
    assert client.get(f"/items/{item}/similar", params={"facet": "texture"}).status_code == 422
    two = client.get(f"/items/{item}/similar", params={"facet": "pattern", "pattern_weight": 0.5})
    assert two.status_code == 422 and "detail" in two.json()


def test_item_queries_name_the_item_not_a_photo(client, demo_rows):
    title = demo_rows["D0010"]["title"]
    similar = client.get("/items/D0010/similar", params={"k": 12}).json()["items"]
    by_item = client.post("/shop-this-style", data={"item_id": "D0010", "k": "12"}).json()["items"]
    for found in (similar, by_item):
        assert {r["reason"] for r in found} == {f"same style as {title}"}
    shopper = client.get("/users").json()[0]
    personal = client.get("/items/D0010/similar", params={"k": 12, "user_id": shopper}).json()["items"]
    assert all("photo" not in r["reason"] for r in personal)


def test_shop_this_style_puts_the_style_first_and_the_shopper_second(client, demo_rows, demo_catalog, settings):
    from recsys.store.sqlite import Store

    striped = [i for i, row in demo_rows.items() if row["pattern"] == "stripes" and row["category"] in CLOTHING]
    photos = [_photo(demo_catalog / demo_rows[i]["image"]) for i in striped[:4]]
    photos += [_photo(demo_catalog / demo_rows[i]["image"], 35) for i in striped[4:6]]  # turned: diagonal stripes
    shoppers = client.get("/users", params={"limit": 100}).json()[:3]
    store = Store(settings.db)
    owned = {user: set(store.interactions(user)["item_id"]) for user in shoppers}
    store.close()
    counts = []
    for photo in photos:
        alone = client.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"k": "12"})
        assert alone.status_code == 200, alone.text
        base = _patterns(alone.json()["items"]).count("stripes")
        assert {r["reason"] for r in alone.json()["items"]} == {"same style as your photo"}
        for user in shoppers:
            form = {"k": "12", "user_id": user}
            found = client.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")}, data=form)
            items = found.json()["items"]
            count = _patterns(items).count("stripes")
            assert count >= base - 2, (user, base, count)
            assert not owned[user] & {r["item"]["id"] for r in items}
            counts.append(count)
    assert np.mean(counts) >= 8, counts


def test_not_for_me_after_a_like_puts_the_style_below_the_others_and_can_be_taken_back(client):
    user = client.get("/users").json()[1]

    def styles() -> list[dict]:
        return client.get(f"/users/{user}/styles", params={"k": 50}).json()

    def say(event: str) -> None:
        body = {"user_id": user, "style": "bold-stripes", "event": event}
        assert client.post("/events", json=body).status_code == 201

    say("style_like")
    assert styles()[0]["name"] == "bold-stripes" and styles()[0]["state"] == "liked"
    say("style_dislike")
    after = styles()
    assert "bold-stripes" not in [s["name"] for s in after[:3]]
    assert after[-1]["name"] == "bold-stripes" and after[-1]["state"] == "disliked"
    assert all(s["state"] is None for s in after[:-1])
    say("style_clear")
    cleared = {s["name"]: s for s in styles()}
    assert cleared["bold-stripes"]["state"] is None and cleared["bold-stripes"]["feedback"] == 0


def test_the_encoder_warms_up_as_the_service_starts(settings, demo_catalog):
    """The first upload must not pay for loading the network: the service starts its embedding worker and loads
    the encoder in the background at once (its time is measured by benchmarks/first_upload.py)."""
    photo = _photo(demo_catalog / "images" / "D0010.jpg")
    with TestClient(create_app(settings)) as fresh:
        warm = fresh.app.state.service.embedder.warm
        assert len(warm) == settings.embed_workers
        for future in warm:
            assert future.result(timeout=600).shape == (fresh.app.state.service.catalog.style.vectors.shape[1],)
        found = fresh.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"k": "12"})
    assert found.status_code == 200 and len(found.json()["items"]) == 12


def test_unknown_shopper_gets_the_cold_start_feed_and_an_unknown_category_is_a_404(client):
    feed = client.get("/users/never-seen-before/feed", params={"k": 5})
    assert feed.status_code == 200 and len(feed.json()["items"]) == 5
    for path in ("/users/never-seen-before/feed", "/items/D0010/similar"):
        missing = client.get(path, params={"category": "spaceships"})
        assert missing.status_code == 404 and "spaceships" in missing.json()["detail"]
    assert client.get("/items/D0010/similar", params={"category": "bag"}).status_code == 200
    form = {"item_id": "D0010", "category": "tshirt,spaceships"}
    assert client.post("/shop-this-style", data=form).status_code == 404


def test_favicon(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.content


def test_each_palette_style_renders_with_its_measured_renderer_by_default(settings):
    """The defaults `benchmarks/render_styles.py` measured (recsys/style/render_defaults.json) are what /styles says and
    what a render without `renderer` uses; a fast-only request (a shopper's adjustments) stays fast."""
    from recsys.shop.demo import STYLE_NAMES
    from recsys.style.render_defaults import measured_defaults

    roomy = settings.model_copy(update={"render_queue": 64, "render_per_client": 64})  # bounds: not tested here
    with TestClient(create_app(roomy)) as client:
        _renders_by_default(client, measured_defaults(), STYLE_NAMES)


def _renders_by_default(client, measured: dict, STYLE_NAMES: tuple[str, ...]) -> None:
    assert set(STYLE_NAMES) <= set(measured)  # every drawn palette style was measured
    palette = {s["name"]: s["renderer"] for s in client.get("/styles").json()}
    for name in STYLE_NAMES:
        assert palette[name] == measured[name]["renderer"]
        assert measured[name]["renderer"] in {"fast", "adain", "gatys"}
    assert palette["dots"] == "fast"  # not measured: the fast renderer
    admin = {"x-api-key": "secret"}  # any strength
    for name in STYLE_NAMES:
        default = client.get("/items/D0001/render", params={"style": name}, headers=admin)
        given = {"style": name, "renderer": measured[name]["renderer"]}
        chosen = client.get("/items/D0001/render", params=given, headers=admin)
        assert default.status_code == chosen.status_code
        if measured[name]["renderer"] == "fast":
            assert default.status_code == 200 and default.content == chosen.content
        else:  # queued (or cached): the same job as asking for that renderer
            assert default.status_code in (200, 202)
            if default.status_code == 202:
                assert default.json()["id"] == chosen.json()["id"]
    user = client.get("/users").json()[0]
    personal = client.get("/items/D0001/render", params={"style": STYLE_NAMES[0], "user_id": user})
    assert personal.status_code == 200 and personal.headers["content-type"] == "image/jpeg"
