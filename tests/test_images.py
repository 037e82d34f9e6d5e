import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from transfer.images import ImageError, close_with_disk, foreground_mask, load_image


def _bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _gradient(w: int = 40, h: int = 30) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    return Image.fromarray(np.stack([np.tile(x, (h, 1))] * 3, axis=-1))


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _bytes(_gradient(40, 30), "JPEG", exif=exif.tobytes())
    assert load_image(data).rgb.shape == (40, 30, 3)


@pytest.mark.parametrize("mode", ["P", "L", "CMYK", "I;16", "1", "LA", "RGBA"])
def test_every_mode_becomes_rgb_uint8(mode):
    image = _gradient().convert("RGB")
    image = image.convert(mode) if mode != "I;16" else Image.fromarray(np.full((30, 40), 40000, np.uint16))
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    loaded = load_image(_bytes(image, fmt))
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (30, 40, 3)


def test_transparency_is_composited_on_white_and_kept_as_alpha():
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[5:15, 5:15] = (200, 0, 0, 255)
    loaded = load_image(_bytes(Image.fromarray(rgba), "PNG"))
    assert tuple(loaded.rgb[0, 0]) == (255, 255, 255)
    assert tuple(loaded.rgb[10, 10]) == (200, 0, 0)
    assert loaded.alpha is not None and loaded.alpha[10, 10] == 255 and loaded.alpha[0, 0] == 0


def test_big_jpegs_decode_at_reduced_scale_but_never_below_the_asked_size():
    exif = Image.Exif()
    exif[0x0112] = 6  # still upright after the reduced decode
    data = _bytes(_gradient(2000, 1200), "JPEG", exif=exif.tobytes())
    assert load_image(data).rgb.shape == (2000, 1200, 3)
    reduced = load_image(data, reduce_to=256).rgb
    assert reduced.shape == (500, 300, 3)  # 1/4 scale: 1/8 would make the shorter side 150 < 256
    assert load_image(_bytes(_gradient(2000, 1200), "PNG"), reduce_to=256).rgb.shape == (1200, 2000, 3)


def test_disk_closing_by_distance_transforms_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(60):
        mask = rng.random((rng.integers(10, 90), rng.integers(10, 90))) < rng.uniform(0.05, 0.9)
        mask[:, : rng.integers(0, 6)] = True  # touching the edge
        radius = int(rng.integers(1, 10))
        disk = np.hypot(*np.ogrid[-radius : radius + 1, -radius : radius + 1]) <= radius
        expected = ndimage.binary_closing(np.pad(mask, radius), structure=disk)[radius:-radius, radius:-radius]
        np.testing.assert_array_equal(close_with_disk(mask, radius), expected)
    assert not close_with_disk(np.zeros((5, 5), bool), 2).any()


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a jpeg")
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png"):
        load_image(path)


def test_truncated_jpeg():
    data = _bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageError, match="truncated"):
        load_image(data[: len(data) // 2])


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="cannot open"):
        load_image(tmp_path / "nope.jpg")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: refused from the header, before any decoding."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_huge_image_is_refused_before_decoding():
    with pytest.raises(ImageError, match="over the limit"):
        load_image(_png_header_only(9_000, 9_000))
    with pytest.raises(ImageError, match=r"over the limit|decompression bomb"):
        load_image(_png_header_only(100_000, 100_000))


def test_pixel_limit_is_configurable():
    data = _bytes(_gradient(40, 30), "PNG")
    with pytest.raises(ImageError, match="1,200 pixels"):
        load_image(data, max_pixels=1000)
    assert load_image(data, max_pixels=1200).rgb.shape == (30, 40, 3)


def test_tiny_image_is_refused():
    with pytest.raises(ImageError, match="too small"):
        load_image(_bytes(Image.new("RGB", (4, 4)), "PNG"))


def _packshot(background=(246, 246, 244)) -> tuple[np.ndarray, np.ndarray]:
    """A striped square 'product' (with white stripes) on a studio background, and its true silhouette."""
    img = np.empty((120, 90, 3), np.uint8)
    img[:] = background
    truth = np.zeros((120, 90), bool)
    truth[30:95, 20:70] = True  # starts and ends with a dark stripe
    rows = np.arange(120)[:, None] % 10 < 5
    img[truth & rows] = (20, 30, 90)
    img[truth & ~rows] = (250, 250, 250)  # white stripes: same colour as the background
    return img, truth


def test_foreground_mask_keeps_white_stripes_inside_the_product():
    img, truth = _packshot()
    mask = foreground_mask(img)
    assert mask is not None
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.93  # (0.49 when white stripes reaching the edge are lost to the background)


def test_no_mask_for_full_frame_images():
    noise = np.random.default_rng(0).integers(0, 255, (100, 100, 3), np.uint8)
    assert foreground_mask(noise) is None


def test_mask_on_real_packshots(datasets):
    paths = sorted((datasets / "hm" / "images").rglob("*.jpg"))[::250]
    fractions = [foreground_mask(load_image(p).rgb) for p in paths]
    found = [m.mean() for m in fractions if m is not None]
    assert len(found) >= 0.8 * len(paths), "the studio background should be found on most H&M packshots"
    assert 0.15 < np.median(found) < 0.7
