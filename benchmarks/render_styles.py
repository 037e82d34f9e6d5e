"""Which renderer carries which palette style (issue 22): every drawn demo palette style x each renderer on a few
demo products, on CPU at the service's render size, with the service's defaults (product colours kept).

    python benchmarks/render_styles.py [--size 384] [--steps 100] [--products D0001,D0054,D0100]
        [--renderers fast,adain,gatys] [--cache var/render-styles] [--sheet docs/render_styles_sheet.png]
        [--json OUT] [--write-defaults recsys/style/render_defaults.json]

Per render:
- style carried: the distance between the render's pattern descriptor (the pattern facet's raw descriptor:
  grey Grams over four turns, the product's pixels) and the style image's, divided by the same distance for the
  unstyled product; lower is better, 1 = no closer to the style. Grey, because the renders keep the product's
  colours (the service's default): what a renderer can carry is the pattern;
- content kept: the relative relu4_1 feature distance to the original product (lower keeps more), and the
  silhouette IoU of the render's foreground against the original's;
- seconds per render (null when the render came from the cache of an earlier run).

A renderer **carries** a style when its mean style distance over the products is at most `CARRIES` and every
render keeps the silhouette (IoU >= `SILHOUETTE`). The default renderer of a style is the fastest renderer that
carries it, else the one with the lowest style distance; `--write-defaults` stores that choice where the service
reads it (`recsys.style.render_defaults`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from recsys.shop.demo import make_demo_catalog, make_demo_styles
from transfer.adain import renderer_for
from transfer.encoder import EncoderConfig, StyleEncoder, prepare_image
from transfer.images import LoadedImage, foreground_mask, load_image
from transfer.render import RenderError, RenderOptions
from transfer.render_cache import RenderCache, load_style

CARRIES = 0.75  # mean style distance at most this: the render moved at least a quarter of the way to the style
SILHOUETTE = 0.95
MEASURE_SIZE = 256  # at most: renders smaller than this are measured at their own size


class Measures:
    """The pattern facet's raw descriptor and relu4_1 features, with the project's encoder (no projection)."""

    def __init__(self, size: int = MEASURE_SIZE) -> None:
        self.size = size
        self.encoder = StyleEncoder(EncoderConfig(image_size=size, facets=True), device="cpu")

    @torch.inference_mode()
    def describe(self, rgb: np.ndarray, use_mask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(pattern descriptor over the product's pixels or the whole image, relu4_1 feature map)."""
        prepared = prepare_image(LoadedImage(rgb), self.size, use_mask)
        pixels, mask = prepared.pixels[None], prepared.mask[None]
        pattern = self.encoder.pattern_descriptors(pixels, mask)[0]
        return pattern, self.encoder.features(pixels)["relu4_1"][0].float()


def choose(summary: pd.DataFrame) -> dict[str, dict]:
    """{style: {"renderer", "carried_by", "why"}} from the per-(style, renderer) summary."""
    out = {}
    for style, rows in summary.groupby("style"):
        rows = rows.reset_index()
        carried = rows[(rows["style_distance"] <= CARRIES) & (rows["silhouette_min"] >= SILHOUETTE)]
        if len(carried):
            best = carried.sort_values("seconds").iloc[0]
            why = f"fastest renderer with style distance <= {CARRIES} and silhouette IoU >= {SILHOUETTE}"
        else:
            best = rows.sort_values("style_distance").iloc[0]
            why = f"no renderer reaches style distance {CARRIES}: the lowest style distance"
        out[str(style)] = {
            "renderer": str(best["renderer"]),
            "carried_by": sorted(str(r) for r in carried["renderer"]),
            "why": why,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=384, help="the render size (the service's render_size)")
    parser.add_argument("--steps", type=int, default=100, help="gatys steps (the service's render_steps)")
    parser.add_argument("--products", default="D0001,D0054,D0100", help="demo items (solid tshirt, dress, trousers)")
    parser.add_argument("--renderers", default="fast,adain,gatys")
    parser.add_argument("--cache", default="var/render-styles", help="render cache (re-used by later runs)")
    parser.add_argument("--sheet", default="docs/render_styles_sheet.png")
    parser.add_argument("--json")
    parser.add_argument("--write-defaults", help="write the per-style default renderers to this JSON file")
    parser.add_argument("--from-log", help="summarize the JSON rows an earlier (perhaps stopped) run printed")
    args = parser.parse_args()
    if args.from_log:
        lines = Path(args.from_log).read_text().splitlines()
        rows = [json.loads(line) for line in lines if line.startswith("{")]
        summarize(rows, args, sorted({r["product"] for r in rows}))
        return

    work = Path(tempfile.mkdtemp(prefix="render-styles-"))
    make_demo_catalog(work / "demo")
    styles = make_demo_styles(work / "styles")
    products = [work / "demo" / "images" / f"{item}.jpg" for item in args.products.split(",")]
    renderers = {}
    for name in args.renderers.split(","):
        options = RenderOptions(renderer=name, size=args.size, steps=args.steps)
        try:
            renderers[name] = (options, renderer_for(options, "cpu"))
        except RenderError as exc:
            print(f"{name} not measured: {exc}")
    cache, measures = RenderCache(args.cache), Measures(min(args.size, MEASURE_SIZE))
    rows, sheet_rows = [], []
    for product_path in products:
        product = load_image(product_path)
        mask = foreground_mask(product.rgb, bridge=False)
        photo_pattern, photo_content = measures.describe(product.rgb, True)
        sheet = {name: [Image.fromarray(product.rgb)] for name in renderers}
        for style_path in styles:
            style_pattern, _ = measures.describe(load_style(style_path).rgb, False)
            for name, (options, renderer) in renderers.items():
                start = time.perf_counter()
                data, cached = cache.render(product_path, style_path, options, renderer)
                seconds = None if cached else time.perf_counter() - start
                out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                pattern, content = measures.describe(out, True)
                after = foreground_mask(out, bridge=False)
                iou = float((mask & after).sum() / max((mask | after).sum(), 1)) if mask is not None else None
                rows.append({
                    "renderer": name, "product": product_path.stem, "style": style_path.stem,
                    "style_distance": float((pattern - style_pattern).norm() / (photo_pattern - style_pattern).norm()),
                    "content_distance": float((content - photo_content).norm() / photo_content.norm()),
                    "silhouette_iou": iou, "seconds": seconds,
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
                sheet[name].append(Image.fromarray(out))
        sheet_rows.extend(sheet.values())

    summarize(rows, args, [p.stem for p in products])
    thumb = (120, 180)
    canvas = Image.new("RGB", (thumb[0] * (len(styles) + 1), thumb[1] * len(sheet_rows)), "white")
    for r, images in enumerate(sheet_rows):
        for c, image in enumerate(images):
            canvas.paste(image.resize(thumb, Image.LANCZOS), (c * thumb[0], r * thumb[1]))
    Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
    canvas.quantize(256, method=Image.Quantize.MEDIANCUT).save(args.sheet, optimize=True)
    print(f"contact sheet: {args.sheet} (rows: each product with {', '.join(renderers)}; columns: original, "
          f"{', '.join(s.stem for s in styles)})")  # fmt: skip


def summarize(rows: list[dict], args: argparse.Namespace, products: list[str]) -> None:
    """The table, the per-style choice, and (`--write-defaults`) the file the service reads."""
    table = pd.DataFrame(rows)
    summary = table.groupby(["style", "renderer"]).agg(
        style_distance=("style_distance", "mean"),
        content_distance=("content_distance", "mean"),
        silhouette_min=("silhouette_iou", "min"),
        seconds=("seconds", "mean"),
    )
    machine = f"{platform.machine()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    print(f"{len(products)} products ({', '.join(products)}), size {args.size}, gatys steps {args.steps}, {machine}")
    print("| style | renderer | style distance | content distance | silhouette IoU (min) | s/render |")
    print("|---|---|---|---|---|---|")
    for (style, renderer), r in summary.iterrows():
        seconds = "cached" if pd.isna(r["seconds"]) else f"{r['seconds']:.1f}"
        print(f"| {style} | {renderer} | {r['style_distance']:.3f} | {r['content_distance']:.3f} "
              f"| {r['silhouette_min']:.3f} | {seconds} |")  # fmt: skip
    defaults = choose(summary)
    for style, choice in defaults.items():
        print(f"{style}: default {choice['renderer']} (carried by: {', '.join(choice['carried_by']) or 'none'})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.write_defaults:
        payload = {
            "measured_by": "benchmarks/render_styles.py",
            "size": args.size,
            "steps": args.steps,
            "products": products,
            "rule": f"the fastest renderer whose mean style distance is <= {CARRIES} with silhouette IoU >= "
            f"{SILHOUETTE}; else the lowest style distance",
            "styles": defaults,
        }
        Path(args.write_defaults).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"defaults written to {args.write_defaults}")


if __name__ == "__main__":
    main()
