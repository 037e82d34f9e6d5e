"""Render quality per renderer on fixed H&M products x the public-domain paintings, and a contact sheet.

    python benchmarks/render_quality.py [--products 4] [--size 384] [--steps 100] [--renderers fast,gatys]
                                        [--no-preserve-colour] [--interleave EARLIER_SHEET]
                                        [--cache var/render-quality] [--sheet PNG] [--json OUT]

For every (product, style) render, with the product-safe defaults:
- style distance: distance between the five-layer Gram descriptors (product pixels) of the render and the
  style image, divided by the same distance for the unstyled photo (lower is better; 1 = no closer to the style);
- content distance: relative relu4_1 feature distance between render and original;
- silhouette IoU of the render's foreground mask against the original's, and the background's mean absolute
  change (0-255) next to the change that re-encoding the original as JPEG alone causes (JPEG noise).
Products: the first imaged article (by id) of each of the largest H&M pattern classes. The adain renderer is
measured when asked for and decoder weights exist. Renders go through the render cache (`--cache`), exactly as the
service stores them (finished, JPEG): a second run re-uses them (gatys takes about a minute per render on 2 cores),
and `seconds` is then null. The contact sheet has one row per product and renderer.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from transfer.adain import renderer_for
from transfer.encoder import EncoderConfig, StyleEncoder, prepare_image
from transfer.images import LoadedImage, foreground_mask, load_image
from transfer.render import RenderError, RenderOptions
from transfer.render_cache import JPEG_QUALITY, RenderCache, cache_key, load_style


def datasets_root() -> Path:
    return Path(os.environ.get("STYLEREC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def pick_products(root: Path, n: int) -> list[Path]:
    articles = pd.read_csv(root / "hm" / "articles.csv", dtype={"article_id": str})
    articles = articles[articles["has_image"]].sort_values("article_id")
    classes = articles["graphical_appearance_name"].value_counts().index[:n]
    ids = [articles[articles["graphical_appearance_name"] == c]["article_id"].iloc[0] for c in classes]
    return [root / "hm" / "images" / i[:3] / f"{i}.jpg" for i in ids]


def jpeg_roundtrip(rgb: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(buffer).convert("RGB"))


class Measures:
    """Gram descriptors and relu4_1 features with the project's encoder (raw five-layer Gram, no projection)."""

    def __init__(self, size: int) -> None:
        self.encoder = StyleEncoder(EncoderConfig(image_size=size), projection=None, device="cpu")

    @torch.inference_mode()
    def describe(self, rgb: np.ndarray, use_mask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(Gram descriptor over the product's pixels or the whole image, relu4_1 feature map)."""
        prepared = prepare_image(LoadedImage(rgb), self.encoder.config.image_size, use_mask)
        feats = self.encoder.features(prepared.pixels[None])
        gram = self.encoder.descriptors_from_features(feats, prepared.mask[None])[0]
        return gram, feats["relu4_1"][0].float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=4)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--renderers", default="fast,gatys", help="comma-separated: fast, gatys, adain")
    parser.add_argument("--no-preserve-colour", action="store_true", help="take the painting's colours too")
    parser.add_argument("--cache", default="var/render-quality", help="render cache (re-used by later runs)")
    parser.add_argument("--only-cached", default="", help="comma-separated renderers measured only where cached")
    parser.add_argument("--sheet", default="docs/render_contact_sheet.png")
    parser.add_argument("--interleave", help="an earlier contact sheet of the same products and paintings (one row "
                        "per product, e.g. gatys's): its rows go above each product's rows here")  # fmt: skip
    parser.add_argument("--json")
    args = parser.parse_args()

    root = datasets_root()
    if not (root / "hm").is_dir() or not (root / "styles").is_dir():
        raise SystemExit(f"needs {root}/hm and {root}/styles")
    products = pick_products(root, args.products)
    styles = sorted((root / "styles").glob("*.jpg"))
    options = RenderOptions(size=args.size, steps=args.steps, preserve_colour=not args.no_preserve_colour)
    renderers = {}
    for name in args.renderers.split(","):
        try:
            renderers[name] = renderer_for(options.model_copy(update={"renderer": name}), "cpu")
        except RenderError as exc:
            print(f"{name} not measured: {exc}")
    cache = RenderCache(args.cache)
    measures = Measures(256)
    rows, sheet_rows = [], []
    for product_path in products:
        product = load_image(product_path)
        mask = foreground_mask(product.rgb, bridge=False)
        background = ~mask if mask is not None else np.zeros(product.rgb.shape[:2], bool)
        jpeg_noise = float(np.abs(jpeg_roundtrip(product.rgb).astype(int) - product.rgb)[background].mean())
        photo_gram, photo_content = measures.describe(product.rgb, True)
        sheets = {name: [Image.fromarray(product.rgb)] for name in renderers}
        for style_path in styles:
            style = load_style(style_path)
            style_gram, _ = measures.describe(style.rgb, False)
            for name, renderer in renderers.items():
                named = options.model_copy(update={"renderer": name})
                key = cache_key(product_path.read_bytes(), style_path.read_bytes(), named)
                if name in args.only_cached.split(",") and cache.get(key) is None:
                    sheets[name].append(Image.new("RGB", product.rgb.shape[1::-1], "white"))
                    continue
                start = time.perf_counter()
                data, cached = cache.render(product_path, style_path, named, renderer)
                seconds = None if cached else time.perf_counter() - start
                out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                gram, content = measures.describe(out, True)
                after = foreground_mask(out, bridge=False)
                iou = float((mask & after).sum() / max((mask | after).sum(), 1)) if mask is not None else None
                rows.append(
                    {
                        "renderer": name,
                        "product": product_path.stem,
                        "style": style_path.stem,
                        "style_distance": float((gram - style_gram).norm() / (photo_gram - style_gram).norm()),
                        "content_distance": float((content - photo_content).norm() / photo_content.norm()),
                        "silhouette_iou": iou,
                        "background_change": float(np.abs(out.astype(int) - product.rgb)[background].mean()),
                        "jpeg_noise": jpeg_noise,
                        "seconds": seconds,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
                sheets[name].append(Image.fromarray(out))
        sheet_rows.extend(sheets.values())

    table = pd.DataFrame(rows)
    summary = table.groupby("renderer")[
        ["style_distance", "content_distance", "silhouette_iou", "background_change", "jpeg_noise", "seconds"]
    ].agg(["mean", "min", "max"])
    print(summary.round(4).to_string())
    pairs = table.pivot_table(index=["product", "style"], columns="renderer", values="style_distance").dropna()
    if len(renderers) > 1 and len(pairs):
        print(f"on the {len(pairs)} (product, style) pairs every renderer has: mean style distance")
        print(pairs.mean().round(4).to_string())
    print("silhouette IoU >= 0.98:", table.assign(ok=table["silhouette_iou"] >= 0.98).groupby("renderer")["ok"].sum())
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    thumb = (120, 180)
    if args.interleave:  # rows of an earlier sheet: product r's row goes before this run's rows for product r
        earlier = Image.open(args.interleave).convert("RGB")
        crops = [
            [[earlier.crop((c * thumb[0], r * thumb[1], (c + 1) * thumb[0], (r + 1) * thumb[1]))
              for c in range(len(styles) + 1)]]
            for r in range(len(products))
        ]  # fmt: skip
        per = len(sheet_rows) // len(products)
        sheet_rows = [row for r in range(len(products)) for row in crops[r] + sheet_rows[r * per : (r + 1) * per]]
    sheet = Image.new("RGB", (thumb[0] * (len(styles) + 1), thumb[1] * len(sheet_rows)), "white")
    for r, images in enumerate(sheet_rows):
        for c, image in enumerate(images):
            sheet.paste(image.resize(thumb, Image.LANCZOS), (c * thumb[0], r * thumb[1]))
    Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(args.sheet, optimize=True)  # 256 colours: < 1 MB
    print(f"contact sheet: {args.sheet} (rows: each product with {', '.join(renderers)}; columns: original, "
          f"{', '.join(s.stem for s in styles)})")  # fmt: skip


if __name__ == "__main__":
    main()
