"""Seconds per render at several working sizes, per renderer, on one H&M product and one painting, in one run.

    python benchmarks/render_speed.py [--sizes 384,512] [--renderers fast,gatys,adain] [--repeats 20]
                                      [--slow-repeats 1] [--slow-sizes 384] [--steps 100] [--threads N]
                                      [--device cpu|cuda]

fast: one transformer pass with the painting's style code computed once (as the service caches it per palette
style); gatys: the full optimisation with the default budget (coarse to fine); adain: one feed-forward pass (an
untrained decoder of the same architecture when no trained weights exist: the cost is the same). The finishing
(colour, background) is included: the time is what `stylerec render` costs per image without the cache. fast runs
`--repeats` times (median and 10th-90th percentiles), gatys and adain `--slow-repeats` times; the load average is
printed next to each row (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from transfer.adain import AdaINRenderer, decoder
from transfer.fast import FastRenderer
from transfer.images import load_image
from transfer.render import GatysRenderer, RenderError, RenderOptions, finish
from transfer.render_cache import load_style


def datasets_root() -> Path:
    return Path(os.environ.get("STYLEREC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="384,512")
    parser.add_argument("--renderers", default="fast,gatys,adain")
    parser.add_argument("--repeats", type=int, default=20, help="fast renders per size")
    parser.add_argument("--slow-repeats", type=int, default=1, help="gatys and adain renders per size")
    parser.add_argument("--slow-sizes", help="sizes for gatys and adain (default: --sizes); gatys is minutes a render")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, help="fast: onnxruntime threads (default: onnxruntime's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    root = datasets_root()
    product = load_image(sorted((root / "hm" / "images").rglob("*.jpg"))[40])
    style = load_style(root / "styles" / "vangogh_starry_night_1889.jpg")
    names = args.renderers.split(",")
    renderers = {}
    if "fast" in names:
        renderers["fast"] = FastRenderer(args.threads)
        renderers["fast"].style_code(style)  # once per palette style, cached: not part of a render's cost
    if "gatys" in names:
        renderers["gatys"] = GatysRenderer(args.device)
    if "adain" in names:
        try:
            renderers["adain"] = AdaINRenderer(device=args.device)
        except RenderError as exc:
            # the speed of a feed-forward pass does not depend on what the decoder learnt: time an untrained one
            print(f"adain: {exc}; timing an untrained decoder (same architecture and cost)")
            weights = Path(tempfile.mkdtemp()) / "untrained.pt"
            torch.save({"decoder": {k: v.half() for k, v in decoder().state_dict().items()}}, weights)
            renderers["adain"] = AdaINRenderer(weights, device=args.device)
    print(f"product {product.rgb.shape[1]}x{product.rgb.shape[0]}, device {args.device}, torch threads "
          f"{torch.get_num_threads()}, fast threads {args.threads or 'onnxruntime default'}")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        for name, renderer in renderers.items():
            if name != "fast" and args.slow_sizes and str(size) not in args.slow_sizes.split(","):
                continue
            options = RenderOptions(renderer=name, size=size, steps=args.steps)
            renderer.render(product, style, options.model_copy(update={"steps": 2}))  # warm-up
            times, steps = [], []
            for _ in range(args.repeats if name == "fast" else args.slow_repeats):
                start = time.perf_counter()
                result = renderer.render(product, style, options)
                finish(product, result.image, options)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
                steps.append(result.steps)
            p10, p50, p90 = (round(float(np.percentile(times, q)), 3) for q in (10, 50, 90))
            row = {"renderer": name, "size": size, "n": len(times), "median_s": p50, "p10_s": p10, "p90_s": p90,
                   "images_per_s": round(len(times) / sum(times), 3), "steps": steps[0],
                   "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
