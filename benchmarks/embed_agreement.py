"""Do style vectors made on a GPU agree with those made on the CPU? (The GPU path runs VGG19 under bf16 autocast.)

    python benchmarks/embed_agreement.py [--images 256] [--image-size 256] [--batch-size 32]

Embeds the same H&M packshots (../shared/datasets/hm or $STYLEREC_DATASETS) on the CPU (fp32) and on the GPU with
one projection (fitted on the CPU's raw descriptors, as a store's projection is fitted once), then reports the
cosine between each image's two vectors and how many of each image's 10 nearest neighbours (cosine, the index's
metric) are the same on both devices. A catalog whose vectors came from both kinds of machine is only coherent if
these are close to 1. Needs CUDA.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from embed_throughput import sample_images  # this folder: the script's own path

from transfer.embed import iter_batches
from transfer.encoder import EncoderConfig, StyleEncoder


def raw_descriptors(encoder: StyleEncoder, paths, config: EncoderConfig, batch_size: int) -> torch.Tensor:
    return torch.cat(
        [encoder.raw_descriptors(b.pixels, b.masks).cpu() for b in iter_batches(paths, config, batch_size)]
    )


def neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1)[:, :k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    paths = sample_images(args.images)
    config = EncoderConfig(image_size=args.image_size)
    cpu, gpu = StyleEncoder(config, device="cpu"), StyleEncoder(config, device="cuda")
    raw_cpu = raw_descriptors(cpu, paths, config, args.batch_size)
    raw_gpu = raw_descriptors(gpu, paths, config, args.batch_size)
    gpu.projection = cpu.fit_projection(raw_cpu.numpy())
    v_cpu, v_gpu = cpu.project(raw_cpu).numpy(), gpu.project(raw_gpu).cpu().numpy()
    cosine = (v_cpu * v_gpu).sum(axis=1)
    n_cpu, n_gpu = neighbours(v_cpu, args.k), neighbours(v_gpu, args.k)
    overlap = np.array([len(set(a) & set(b)) / args.k for a, b in zip(n_cpu, n_gpu, strict=True)])
    raw_rel = ((raw_gpu - raw_cpu).norm(dim=1) / raw_cpu.norm(dim=1)).numpy()
    print(json.dumps({
        "images": len(v_cpu), "image_size": args.image_size, "gpu": torch.cuda.get_device_name(),
        "cosine_min": round(float(cosine.min()), 5), "cosine_p1": round(float(np.percentile(cosine, 1)), 5),
        "cosine_median": round(float(np.median(cosine)), 5),
        f"neighbour_overlap@{args.k}_mean": round(float(overlap.mean()), 4),
        f"neighbour_overlap@{args.k}_min": round(float(overlap.min()), 2),
        "raw_relative_error_median": round(float(np.median(raw_rel)), 5),
        "raw_relative_error_max": round(float(raw_rel.max()), 5),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
