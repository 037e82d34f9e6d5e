"""Seconds per render at several working sizes, per renderer, on one H&M product and one painting.

    python benchmarks/render_speed.py [--sizes 384,512] [--repeats 2] [--steps 100] [--device cpu|cuda]

gatys: the full optimisation with the default budget (coarse to fine); adain: one feed-forward pass (an untrained
decoder of the same architecture when no trained weights exist: the cost is the same). The finishing (colour,
background) is included: the time is what `stylerec render` costs per image without the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from transfer.adain import AdaINRenderer, decoder
from transfer.images import load_image
from transfer.render import GatysRenderer, RenderError, RenderOptions, finish
from transfer.render_cache import load_style


def datasets_root() -> Path:
    return Path(os.environ.get("STYLEREC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="384,512")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    root = datasets_root()
    product = load_image(sorted((root / "hm" / "images").rglob("*.jpg"))[40])
    style = load_style(root / "styles" / "vangogh_starry_night_1889.jpg")
    renderers = {"gatys": GatysRenderer(args.device)}
    try:
        renderers["adain"] = AdaINRenderer(device=args.device)
    except RenderError as exc:
        # the speed of a feed-forward pass does not depend on what the decoder learnt: time an untrained one
        print(f"adain: {exc}; timing an untrained decoder (same architecture and cost)")
        weights = Path(tempfile.mkdtemp()) / "untrained.pt"
        torch.save({"decoder": {k: v.half() for k, v in decoder().state_dict().items()}}, weights)
        renderers["adain"] = AdaINRenderer(weights, device=args.device)
    print(f"product {product.rgb.shape[1]}x{product.rgb.shape[0]}, device {args.device}, torch threads "
          f"{torch.get_num_threads()}")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        for name, renderer in renderers.items():
            options = RenderOptions(renderer=name, size=size, steps=args.steps)
            renderer.render(product, style, options.model_copy(update={"steps": 2}))  # warm-up
            times, steps = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                result = renderer.render(product, style, options)
                finish(product, result.image, options)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
                steps.append(result.steps)
            row = {"renderer": name, "size": size, "seconds": [round(t, 2) for t in times], "steps": steps,
                   "images_per_s": round(len(times) / sum(times), 3)}  # fmt: skip
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
