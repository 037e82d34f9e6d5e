"""The fast (ONNX) renderer: networks from the installed package, deterministic output, product-safe finishing,
style blends and "less style", the render cache and the `render` command's default."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from transfer.fast import PREDICT, TRANSFORM, FastRenderer, model_bytes
from transfer.images import foreground_mask, load_image
from transfer.render import RenderError, RenderOptions, finish
from transfer.render_cache import RenderCache, cache_key, load_style

SMALL = RenderOptions(size=128)


@pytest.fixture(scope="module")
def fast():
    return FastRenderer(threads=1)


@pytest.fixture(scope="module")
def product(demo_catalog):
    return load_image(demo_catalog / "images" / "D0010.jpg")  # striped t-shirt on the studio background


@pytest.fixture(scope="module")
def styles(tmp_path_factory):
    from recsys.shop.demo import make_demo_styles

    return make_demo_styles(tmp_path_factory.mktemp("styles"), size=128)


@pytest.fixture(scope="module")
def rendered(fast, product, styles):
    return fast.render(product, load_style(styles[0]), SMALL).image


def test_networks_come_from_the_installed_package_and_are_deterministic(fast, product, styles):
    assert len(model_bytes(PREDICT)) > 1e6 and len(model_bytes(TRANSFORM)) > 1e5  # hash-checked in model_bytes
    style = load_style(styles[0])
    code = fast.style_code(style)
    assert code.shape == (100,) and np.isfinite(code).all()
    other = FastRenderer(threads=1)  # a second, independent pair of sessions
    assert np.array_equal(other.style_code(style), code)
    first, again = fast.stylise(product.rgb, code, 128), other.stylise(product.rgb, code, 128)
    assert first.size == (85, 128)  # the longer side at the working size, any aspect ratio
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(fast.stylise(product.rgb, fast.style_code(product), 128)))


def test_render_keeps_every_background_pixel_and_the_silhouette(product, rendered):
    out = np.asarray(finish(product, rendered, SMALL))
    before = foreground_mask(product.rgb, bridge=False)
    assert np.array_equal(out[~before], product.rgb[~before])  # bit for bit, before any JPEG encoding
    assert np.abs(out[before].astype(int) - product.rgb[before]).mean() > 5  # the product did change
    after = foreground_mask(out, bridge=False)
    assert (before & after).sum() / (before | after).sum() >= 0.98


def test_strength_zero_is_the_original_product(product, rendered):
    original = np.asarray(finish(product, rendered, SMALL.model_copy(update={"strength": 0.0})))
    assert np.abs(original.astype(int) - product.rgb).max() <= 1


def test_blends_and_less_style_are_code_interpolations(fast, product, styles):
    a, b = load_style(styles[0]), load_style(styles[1])
    alone = np.asarray(fast.render(product, a, SMALL).image)
    assert np.array_equal(np.asarray(fast.render(product, [(a, 1.0)], SMALL).image), alone)
    assert np.array_equal(np.asarray(fast.render(product, [(a, 3.0), (b, 0.0)], SMALL).image), alone)
    mixed = fast.blend_code([(a, 0.6), (b, 0.4)])
    np.testing.assert_allclose(mixed, 0.6 * fast.style_code(a) + 0.4 * fast.style_code(b), rtol=1e-6)
    less = fast.blend_code(a, product, amount=0.0)
    np.testing.assert_allclose(less, fast.style_code(product), rtol=1e-6)
    with pytest.raises(RenderError, match="non-negative"):
        fast.blend_code([(a, -1.0), (b, 2.0)])
    # less style is closer to the product than full style
    none = np.asarray(fast.render(product, a, SMALL.model_copy(update={"style_amount": 0.0})).image, np.float32)
    small = np.asarray(Image.fromarray(product.rgb).resize(none.shape[1::-1], Image.LANCZOS), np.float32)
    assert np.abs(none - small).mean() < np.abs(alone.astype(np.float32) - small).mean()


def test_cache_keys_blends_and_every_option(tmp_path, demo_catalog, styles, fast):
    item = (demo_catalog / "images" / "D0020.jpg").read_bytes()
    a, b = styles[0].read_bytes(), styles[1].read_bytes()
    assert cache_key(item, [(a, 0.5)], SMALL) == cache_key(item, a, SMALL)  # a blend of one is that style
    assert cache_key(item, [(a, 0.6), (b, 0.4)], SMALL) != cache_key(item, [(a, 0.4), (b, 0.6)], SMALL)
    assert cache_key(item, a, SMALL) != cache_key(item, a, SMALL.model_copy(update={"style_amount": 0.5}))
    # gatys-only knobs do not split the fast cache
    assert cache_key(item, a, SMALL) == cache_key(item, a, SMALL.model_copy(update={"steps": 7}))
    cache = RenderCache(tmp_path / "renders")
    first, cached = cache.render(item, [(a, 0.6), (b, 0.4)], SMALL, fast)
    assert not cached and Image.open(io.BytesIO(first)).size == (240, 360)
    assert cache.render(item, [(b, 0.4), (a, 0.6)], SMALL, fast)[1] is False  # order is part of the key
    assert cache.render(item, [(a, 0.6), (b, 0.4)], SMALL, fast) == (first, True)
    with pytest.raises(RenderError, match="need the fast renderer"):
        cache.render(item, [(a, 0.6), (b, 0.4)], SMALL.model_copy(update={"renderer": "gatys"}))


def test_render_command_defaults_to_fast_and_blends(tmp_path, demo_catalog, styles, capsys):
    from recsys.cli import main

    db = str(tmp_path / "shop.db")
    assert main(["import", "--db", db, "--catalog", str(demo_catalog)]) == 0
    for path in styles[:2]:
        assert main(["styles", "add", path.stem, str(path), "--db", db, "--styles-dir", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    out, cache = tmp_path / "out", str(tmp_path / "cache")
    base = ["render", "D0010", "D0020", "--db", db, "--out", str(out), "--cache", cache, "--size", "96", "-q"]
    assert main([*base, "--style", styles[0].stem, "--threads", "1"]) == 0
    assert (out / f"D0010-{styles[0].stem}-fast.jpg").exists()
    blend = ["--style", f"{styles[0].stem}:0.6", "--style", f"{styles[1].stem}:0.4", "--style-amount", "0.8"]
    assert main([*base, *blend]) == 0
    assert (out / f"D0020-{styles[0].stem}+{styles[1].stem}-fast.jpg").exists()
    assert main([*base, *blend, "--renderer", "gatys"]) == 2
    assert "need the fast renderer" in capsys.readouterr().err
    assert main(["render", "D0010", "--style", "nope:0.5", "--db", db]) == 2
    assert "unknown style 'nope'" in capsys.readouterr().err
    assert json.loads(RenderOptions().cache_json())["renderer"] == "fast"
