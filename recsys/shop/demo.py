"""The demo catalog: product packshots the project draws itself (no third-party data ships with stylerec).

Each item is a silhouette (t-shirt, dress, trousers, bag, mug, cushion) on a light studio background, filled
with one pattern (solid, stripes, checks, dots, floral, denim) in one colourway. Pattern and colourway are the
ground truth for "same style". Everything is drawn from one seed, so the catalog is identical on every machine.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from common.errors import BadInput

WIDTH, HEIGHT = 240, 360
CATEGORIES = ("tshirt", "dress", "trousers", "bag", "mug", "cushion")
PATTERNS = ("solid", "stripes", "checks", "dots", "floral", "denim")
COLOURWAYS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "navy-white": ((28, 42, 92), (236, 236, 230)),
    "red-cream": ((178, 32, 40), (242, 230, 200)),
    "forest-mustard": ((34, 82, 52), (222, 170, 40)),
    "black-grey": ((24, 24, 26), (150, 150, 155)),
    "pink-white": ((232, 120, 160), (250, 245, 245)),
    "teal-orange": ((20, 128, 130), (240, 120, 30)),
    "beige-brown": ((215, 190, 150), (110, 70, 40)),
    "lilac-purple": ((190, 160, 220), (90, 40, 120)),
}
CATALOG_FILE = "items.csv"
CATALOG_COLUMNS = ("item_id", "title", "category", "pattern", "colour", "image")

# Silhouettes as polygons in a unit box (x right, y down), scaled to the canvas.
_POLYGONS: dict[str, list[tuple[float, float]]] = {
    "tshirt": [(0.32, 0.18), (0.42, 0.15), (0.5, 0.2), (0.58, 0.15), (0.68, 0.18), (0.9, 0.32), (0.82, 0.42),
               (0.72, 0.36), (0.72, 0.82), (0.28, 0.82), (0.28, 0.36), (0.18, 0.42), (0.1, 0.32)],
    "dress": [(0.4, 0.1), (0.5, 0.14), (0.6, 0.1), (0.64, 0.3), (0.6, 0.42), (0.82, 0.9), (0.18, 0.9),
              (0.4, 0.42), (0.36, 0.3)],
    "trousers": [(0.28, 0.1), (0.72, 0.1), (0.78, 0.92), (0.56, 0.92), (0.5, 0.38), (0.44, 0.92),
                 (0.22, 0.92)],
    "bag": [(0.18, 0.4), (0.82, 0.4), (0.88, 0.82), (0.12, 0.82)],
    "mug": [(0.22, 0.3), (0.7, 0.3), (0.7, 0.75), (0.22, 0.75)],
    "cushion": [(0.14, 0.26), (0.5, 0.3), (0.86, 0.26), (0.82, 0.5), (0.86, 0.74), (0.5, 0.7), (0.14, 0.74),
                (0.18, 0.5)],
}


def _silhouette(category: str) -> np.ndarray:
    mask = Image.new("L", (WIDTH, HEIGHT), 0)
    draw = ImageDraw.Draw(mask)
    draw.polygon([(x * WIDTH, y * HEIGHT) for x, y in _POLYGONS[category]], fill=255)
    if category == "bag":  # a handle
        draw.arc((0.32 * WIDTH, 0.22 * HEIGHT, 0.68 * WIDTH, 0.52 * HEIGHT), 180, 360, fill=255, width=9)
    if category == "mug":
        draw.ellipse((0.62 * WIDTH, 0.4 * HEIGHT, 0.86 * WIDTH, 0.64 * HEIGHT), outline=255, width=12)
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(0.8)), np.float32) / 255.0


def _pattern(name: str, base: np.ndarray, accent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An H x W x 3 float image of the pattern; scale, angle and phase vary per item."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    angle = rng.uniform(-0.35, 0.35)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    period = rng.uniform(14, 26)
    phase = rng.uniform(0, period)
    if name == "solid":
        weight = np.zeros_like(u)
    elif name == "stripes":
        weight = (((v + phase) % period) < period * rng.uniform(0.35, 0.5)).astype(np.float32)
    elif name == "checks":
        a = (((u + phase) % period) < period / 2).astype(np.float32)
        b = (((v + phase) % period) < period / 2).astype(np.float32)
        weight = 0.5 * (a + b)
    elif name == "dots":
        cu, cv = (u + phase) % period - period / 2, (v + phase) % period - period / 2
        weight = ((cu**2 + cv**2) < (period * rng.uniform(0.2, 0.28)) ** 2).astype(np.float32)
    elif name == "floral":
        weight = np.zeros_like(u)
        for _ in range(int(WIDTH * HEIGHT / 900)):
            cx, cy, r = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT), rng.uniform(4, 8)
            for k in range(5):
                t = 2 * np.pi * k / 5 + rng.uniform(0, 1)
                px, py = cx + 1.6 * r * np.cos(t), cy + 1.6 * r * np.sin(t)
                # a petal is a disc: only the pixels of its bounding box can be inside it
                x0, x1 = max(0, int(px - r)), min(WIDTH, int(px + r) + 2)
                y0, y1 = max(0, int(py - r)), min(HEIGHT, int(py + r) + 2)
                if x0 < x1 and y0 < y1:
                    box = (xx[y0:y1, x0:x1] - px) ** 2 + (yy[y0:y1, x0:x1] - py) ** 2 < r**2
                    weight[y0:y1, x0:x1] = np.maximum(weight[y0:y1, x0:x1], box)
    elif name == "denim":
        twill = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + yy) / rng.uniform(3.5, 5.0))
        weight = np.clip(0.35 * twill + 0.25 * rng.random(u.shape, dtype=np.float32), 0, 1)
    else:
        raise BadInput(f"unknown pattern {name!r}")
    image = base[None, None] * (1 - weight[..., None]) + accent[None, None] * weight[..., None]
    return image + rng.normal(0, 4, image.shape)  # fabric grain


def _packshot(category: str, pattern: str, colour: str, rng: np.random.Generator) -> Image.Image:
    base, accent = (np.array(c, np.float32) for c in COLOURWAYS[colour])
    fabric = _pattern(pattern, base, accent, rng)
    mask = _silhouette(category)[..., None]
    shade = 1.0 - 0.12 * np.linspace(0, 1, WIDTH)[None, :, None]  # light from the left
    studio = np.full((HEIGHT, WIDTH, 3), 246.0) - np.linspace(0, 8, HEIGHT)[:, None, None]
    image = studio * (1 - mask) + fabric * shade * mask
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def make_demo_catalog(out_dir: str | os.PathLike, seed: int = 7) -> Path:
    """Write `out_dir/images/<item_id>.jpg` and `out_dir/items.csv` (288 items); returns the CSV path.

    Deterministic: the same seed gives the same catalog, byte for byte.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    number = 0
    for category in CATEGORIES:
        for pattern in PATTERNS:
            for colour in COLOURWAYS:
                number += 1
                item_id = f"D{number:04d}"
                image_path = f"images/{item_id}.jpg"
                _packshot(category, pattern, colour, rng).save(out / image_path, quality=90)
                title = f"{colour.replace('-', '/').title()} {pattern} {category}"
                rows.append((item_id, title, category, pattern, colour, image_path))
    csv_path = out / CATALOG_FILE
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CATALOG_COLUMNS)
        writer.writerows(rows)
    return csv_path


def read_catalog(csv_path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """The demo catalog as {item_id: row}."""
    with open(csv_path, newline="") as f:
        return {row["item_id"]: row for row in csv.DictReader(f)}


STYLE_NAMES = ("swirls", "mosaic", "pointillist", "bold-stripes")
# The demo pattern (`PATTERNS`) a drawn palette style shows, for those that show one: what "in the style you
# liked" must find. The others draw no demo pattern: swirls are curved bands, mosaic a grid of random-colour tiles,
# pointillist a random scatter of small squares (measured: its pattern facet finds floral, the demo's other
# random scatter, 12 of 12; the demo's dots lie on a regular grid). BENCHMARKS.md, issue 22.
STYLE_PATTERNS: dict[str, str] = {"bold-stripes": "stripes"}


def make_demo_styles(out_dir: str | os.PathLike, seed: int = 3, size: int = 384) -> list[Path]:
    """Write a few style reference images the project draws itself (the demo's palette); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    paths = []
    for name in STYLE_NAMES:
        if name == "swirls":
            angle = np.arctan2(yy - 0.5, xx - 0.5) + 9 * np.hypot(yy - 0.5, xx - 0.5)
            t = 0.5 + 0.5 * np.sin(7 * angle)
            image = np.stack([40 + 60 * t, 70 + 90 * t, 140 + 100 * t], -1)
        elif name == "mosaic":
            cells = rng.integers(0, 255, (12, 12, 3)).astype(np.float32)
            image = cells[(yy * 12).astype(int), (xx * 12).astype(int)]
            image[((yy * 12) % 1 < 0.08) | ((xx * 12) % 1 < 0.08)] = 30
        elif name == "pointillist":
            image = np.full((size, size, 3), 235.0)
            inks = np.array([[200, 40, 40], [240, 190, 30], [40, 90, 170], [60, 140, 70]], np.float32)
            for _ in range(2500):
                cx, cy = rng.integers(0, size, 2)
                r = int(rng.integers(2, 6))
                image[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] = inks[rng.integers(len(inks))]
        else:
            t = ((xx + 0.3 * yy) * 10) % 1 < 0.5
            image = np.where(t[..., None], [20.0, 20.0, 20.0], [250.0, 200.0, 0.0])
        path = out / f"{name}.jpg"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=92)
        paths.append(path)
    return paths
