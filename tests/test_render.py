"""Re-rendering: product-safe options, the render cache, bad style images, the AdaIN decoder's training."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from transfer.adain import AdaINRenderer, export_weights, train_decoder
from transfer.images import foreground_mask, load_image
from transfer.render import GatysRenderer, RenderError, RenderOptions, finish
from transfer.render_cache import RenderCache, load_style

FAST = {"renderer": "gatys", "size": 96, "steps": 8, "scales": 1}


@pytest.fixture(scope="module")
def gatys():
    return GatysRenderer("cpu")


@pytest.fixture(scope="module")
def product(demo_catalog):
    return load_image(demo_catalog / "images" / "D0010.jpg")  # striped t-shirt on the studio background


@pytest.fixture(scope="module")
def style_image(tmp_path_factory):
    from recsys.shop.demo import make_demo_styles

    return make_demo_styles(tmp_path_factory.mktemp("styles"), size=128)[0]


@pytest.fixture(scope="module")
def rendered(gatys, product, style_image):
    return gatys.render(product, load_style(style_image), RenderOptions(**FAST)).image


def _background(product) -> np.ndarray:
    return ~foreground_mask(product.rgb, bridge=False)


def test_keep_background_leaves_every_background_pixel_alone(product, rendered):
    out = np.asarray(finish(product, rendered, RenderOptions(**FAST)))
    background = _background(product)
    assert np.array_equal(out[background], product.rgb[background])
    assert np.abs(out[~background].astype(int) - product.rgb[~background]).mean() > 5  # the product did change
    whole = np.asarray(finish(product, rendered, RenderOptions(**FAST, keep_background=False)))
    assert np.abs(whole[background].astype(int) - product.rgb[background]).mean() > 1


def test_silhouette_survives(product, rendered):
    out = np.asarray(finish(product, rendered, RenderOptions(**FAST)))
    before, after = foreground_mask(product.rgb, bridge=False), foreground_mask(out, bridge=False)
    assert (before & after).sum() / (before | after).sum() >= 0.98


def test_preserve_colour_keeps_chroma_and_strength_zero_is_the_original(product, rendered):
    def chroma(rgb: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(rgb).convert("YCbCr"), np.float32)[..., 1:]

    product_pixels = ~_background(product)
    kept = np.asarray(finish(product, rendered, RenderOptions(**FAST)))
    free = np.asarray(finish(product, rendered, RenderOptions(**FAST, preserve_colour=False)))
    kept_shift = np.abs(chroma(kept) - chroma(product.rgb))[product_pixels].mean()
    free_shift = np.abs(chroma(free) - chroma(product.rgb))[product_pixels].mean()
    assert kept_shift < 2.0 < free_shift
    original = np.asarray(finish(product, rendered, RenderOptions(**FAST, strength=0.0)))
    assert np.abs(original.astype(int) - product.rgb).max() <= 1


def test_adjustments_change_the_product_only(product, rendered):
    plain = np.asarray(finish(product, rendered, RenderOptions(**FAST)), np.float32)
    brighter = np.asarray(finish(product, rendered, RenderOptions(**FAST, brightness=1.3)), np.float32)
    background = _background(product)
    assert np.array_equal(brighter[background], plain[background])
    assert brighter[~background].mean() > plain[~background].mean() + 5


def test_cache_returns_identical_bytes_without_rendering_again(tmp_path, demo_catalog, style_image, gatys):
    calls = []

    class Counting:
        def render(self, *args, **kwargs):
            calls.append(1)
            return gatys.render(*args, **kwargs)

    cache = RenderCache(tmp_path / "renders")
    options = RenderOptions(**FAST)
    item = demo_catalog / "images" / "D0020.jpg"
    first, cached = cache.render(item, style_image, options, Counting())
    assert not cached and Image.open(io.BytesIO(first)).size == (240, 360)
    again, cached = cache.render(item, style_image, options, Counting())
    assert cached and again == first and len(calls) == 1
    _, cached = cache.render(item, style_image, options.model_copy(update={"strength": 0.5}), Counting())
    assert not cached and len(calls) == 2  # any parameter is part of the key


def test_bad_style_images_get_clear_errors(tmp_path):
    (tmp_path / "notes.jpg").write_bytes(b"definitely not a jpeg")
    with pytest.raises(RenderError, match="bad style image"):
        load_style(tmp_path / "notes.jpg")
    Image.new("RGB", (16, 16)).save(tmp_path / "tiny.png")
    with pytest.raises(RenderError, match="too small for a style"):
        load_style(tmp_path / "tiny.png")
    with pytest.raises(RenderError, match="bad style image"):
        load_style(tmp_path / "missing.jpg")


def test_train_decoder_loss_goes_down_then_renders(tmp_path, demo_catalog, style_image):
    content = tmp_path / "content"
    content.mkdir()
    for name in ("D0001", "D0050", "D0100", "D0150"):
        (content / f"{name}.jpg").write_bytes((demo_catalog / "images" / f"{name}.jpg").read_bytes())
    styles = style_image.parent
    checkpoint = tmp_path / "decoder.pt"
    losses = train_decoder(content, styles, checkpoint, steps=30, batch_size=2, size=64, lr=1e-3, progress=False)
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5])
    # resumable: a second call continues from the checkpoint to the new total
    assert len(train_decoder(content, styles, checkpoint, steps=32, batch_size=2, size=64, progress=False)) == 2
    # a wall-clock budget stops early with a checkpoint that the next call resumes from
    assert len(train_decoder(content, styles, checkpoint, steps=99, batch_size=2, size=64, minutes=1e-6)) == 1
    assert torch.load(checkpoint, weights_only=True)["step"] == 33

    with pytest.raises(RenderError, match="train-decoder"):
        AdaINRenderer(tmp_path / "no-weights.pt")
    weights = export_weights(checkpoint, tmp_path / "decoder-fp16.pt")
    assert weights.stat().st_size < 20e6
    product = load_image(demo_catalog / "images" / "D0010.jpg")
    result = AdaINRenderer(weights, "cpu").render(product, load_style(style_image), RenderOptions(size=64))
    assert max(result.image.size) == 64


def test_shipped_adain_decoder_is_trained(demo_catalog, style_image):
    """The shipped fp16 decoder inverts the encoder and moves a product's feature statistics to the style's
    (an untrained decoder of the same shape: reconstruction error 0.72, statistics distance 94% of the photo's)."""
    import torch.nn.functional as F

    from transfer.adain import SHIPPED_WEIGHTS, AdaINModel, style_distance
    from transfer.render import to_tensor

    model = AdaINModel().eval()
    state = torch.load(SHIPPED_WEIGHTS, weights_only=True)
    model.decoder.load_state_dict({k: v.float() for k, v in state["decoder"].items()})
    content = to_tensor(load_image(demo_catalog / "images" / "D0010.jpg").rgb, 128)
    style = to_tensor(load_image(style_image).rgb, 128)

    def statistics_distance(x: torch.Tensor) -> float:
        return float(style_distance(model.encode(x), model.encode(style)))

    with torch.inference_mode():
        reconstruction = model.decoder(model.encode(content)["relu4_1"]).clamp(0, 1)
        reconstruction = F.interpolate(reconstruction, content.shape[-2:], mode="bilinear")
        assert float((reconstruction - content).abs().mean()) < 0.25  # measured 0.13
        styled = model.stylise(content, style).clamp(0, 1)
        assert statistics_distance(styled) < 0.4 * statistics_distance(content)  # measured 22%


def test_adain_renders_are_cached_per_decoder(tmp_path, monkeypatch, demo_catalog, style_image):
    """Other decoder weights make other renders: the render cache's key names the weights in use."""
    from transfer.adain import SHIPPED_WEIGHTS, weights_id
    from transfer.render_cache import cache_key

    item, style = (demo_catalog / "images" / "D0020.jpg").read_bytes(), style_image.read_bytes()
    options = RenderOptions(renderer="adain", size=64)
    shipped = cache_key(item, style, options)
    retrained = tmp_path / "retrained.pt"
    retrained.write_bytes(SHIPPED_WEIGHTS.read_bytes() + b"\0")
    monkeypatch.setenv("STYLEREC_ADAIN_WEIGHTS", str(retrained))
    assert weights_id() == weights_id(retrained) != weights_id(SHIPPED_WEIGHTS)
    assert cache_key(item, style, options) != shipped
    # other renderers do not depend on the decoder
    fast = options.model_copy(update={"renderer": "fast"})
    key = cache_key(item, style, fast)
    monkeypatch.delenv("STYLEREC_ADAIN_WEIGHTS")
    assert cache_key(item, style, fast) == key and cache_key(item, style, options) == shipped


def test_palette_and_render_commands(tmp_path, demo_catalog, style_image, capsys, monkeypatch):
    from recsys.cli import main

    monkeypatch.setenv("STYLEREC_ADAIN_WEIGHTS", str(tmp_path / "no-decoder.pt"))
    db = str(tmp_path / "shop.db")
    assert main(["import", "--db", db, "--catalog", str(demo_catalog)]) == 0
    styles_dir = str(tmp_path / "palette")
    add = ["styles", "add", "swirls", str(style_image), "--db", db, "--styles-dir", styles_dir]
    assert main([*add, "--store", str(tmp_path / "no-store")]) == 0
    assert "no style vector" in capsys.readouterr().out
    assert main(["styles", "list", "--db", db, "--json"]) == 0
    assert [s["name"] for s in json_out(capsys)] == ["swirls"]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert main(["styles", "add", "broken", str(bad), "--db", db, "--styles-dir", styles_dir]) == 2
    assert "bad style image" in capsys.readouterr().err
    assert main(["styles", "add", "no/slashes", str(style_image), "--db", db]) == 2
    assert "style name" in capsys.readouterr().err

    out = tmp_path / "renders"
    render = ["render", "D0010", "--style", "swirls", "--db", db, "--out", str(out), "--size", "64", "--steps", "4"]
    render += ["--cache", str(tmp_path / "cache"), "-q", "--renderer", "adain"]
    assert main(render) == 0
    captured = capsys.readouterr()
    assert "rendering with fast instead" in captured.err  # no decoder weights: fast, and says so
    assert (out / "D0010-swirls-fast.jpg").exists()
    assert main(render) == 0
    assert "(cached)" in capsys.readouterr().out
    assert main(["render", "NOPE", "--style", "swirls", "--db", db]) == 2
    assert "unknown item id 'NOPE'" in capsys.readouterr().err
    assert main(["styles", "remove", "swirls", "--db", db]) == 0
    assert main(["render", "D0010", "--style", "swirls", "--db", db]) == 2
    assert "unknown style 'swirls'" in capsys.readouterr().err


def json_out(capsys):
    import json

    return json.loads(capsys.readouterr().out)
