"""Embedding throughput: end to end (decode, resize, mask, VGG19, Grams and roots, projection) vs the bare VGG19
forward (to the deepest layer the embedding uses: relu5_4 for the default).

    python benchmarks/embed_throughput.py [--images N] [--image-size 256] [--batch-size 16] [--device cpu]

Images: H&M packshots from ../shared/datasets/hm (or $STYLEREC_DATASETS), else the generated demo catalog.
Both figures come from the same run on the same images, so their ratio is meaningful on a noisy machine. The
end-to-end loop projects 64 images at a time, as `stylerec embed` does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from transfer.embed import iter_batches
from transfer.encoder import EncoderConfig, StyleEncoder


def sample_images(n: int) -> list[Path]:
    root = Path(os.environ.get("STYLEREC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    hm = sorted((root / "hm" / "images").rglob("*.jpg"))
    if len(hm) >= n:
        return hm[:: len(hm) // n][:n]
    from recsys.shop.demo import make_demo_catalog

    out = Path(tempfile.mkdtemp()) / "demo"
    make_demo_catalog(out)
    return sorted((out / "images").glob("*.jpg"))[:n]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--device")
    parser.add_argument("--channels-last", choices=["on", "off"], default="on")
    parser.add_argument("--head", help="a shipped learned style head (default: the plain v2 Gram)")
    args = parser.parse_args()

    paths = sample_images(args.images)
    config = EncoderConfig(image_size=args.image_size, head=args.head)
    encoder = StyleEncoder(config, device=args.device, channels_last=args.channels_last == "on")
    sync = torch.cuda.synchronize if encoder.device.type == "cuda" else (lambda: None)

    # Untimed: fit the projection on a few images and warm up the network.
    warm = next(iter_batches(paths[: args.batch_size], config, args.batch_size, 0))
    encoder.fit_projection(encoder.raw_descriptors(warm.pixels, warm.masks).cpu().numpy())
    encoder.embed(warm.pixels, warm.masks)

    sync()
    started = time.perf_counter()
    count, group = 0, []
    for batch in iter_batches(paths, config, args.batch_size, args.workers):
        group.append(encoder.raw_descriptors(batch.pixels, batch.masks))
        if sum(len(r) for r in group) >= max(64, args.batch_size):
            count += len(encoder.project(torch.cat(group)).cpu())
            group = []
    if group:
        count += len(encoder.project(torch.cat(group)).cpu())
    sync()
    end_to_end = count / (time.perf_counter() - started)

    # The bare forward to relu5_1 on the same (already decoded) images.
    batches = [b.pixels for b in iter_batches(paths, config, args.batch_size, 0)]
    sync()
    started = time.perf_counter()
    for pixels in batches:
        encoder.features(pixels)
    sync()
    bare = sum(len(p) for p in batches) / (time.perf_counter() - started)

    device = torch.cuda.get_device_name() if encoder.device.type == "cuda" else cpu_name()
    result = {
        "images": count,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "channels_last": encoder.channels_last,
        "device": f"{device}, {torch.get_num_threads()} threads",
        "end_to_end_img_s": round(end_to_end, 2),
        "bare_vgg_img_s": round(bare, 2),
        "ratio": round(end_to_end / bare, 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
