"""Fit and score the learned style head (issue 16, `transfer/head.py`).

    python benchmarks/style_head.py fit TRAIN_SET [--version style-head-1] [--rank 64]
    python benchmarks/style_head.py score [--head style-head-1] [--datasets fashion_texture-256,...]

`fit` reads a `<style>/<product>.jpg` training set made by `benchmarks/style_head_renders.py` (dev H&M products
restyled in H&M patterns: no evaluation set's images or labels), runs VGG19 once, and learns
  1. per layer, the channel reduction P: the top `--rank` eigenvectors of the mean (Frobenius-normalised) Gram;
  2. the nuisance directions U: the leading principal directions of the descriptors' within-style scatter (how
     different products in one style differ); their number k is chosen on the training set itself, fitting on half
     of its products and scoring same-style retrieval on the other half;
and writes `transfer/weights/<version>.npz` (float16).
`score` applies a head to the per-layer Gram cache of `benchmarks/style_variants.py` (no network) and prints
mAP@10 with PCA to 256-d fitted on each evaluated folder (as the product fits it on the catalog) and leak@1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from style_variants import Cached, _map_from_sims, cache_root, kernel, leakage, pca_vectors

from transfer.embed import iter_batches
from transfer.encoder import EncoderConfig, StyleEncoder
from transfer.gram import masked_gram
from transfer.head import StyleHead, load_head
from transfer.style_eval import labelled_images

LAYERS = ("relu2_1", "relu3_1", "relu4_1", "relu5_1")
WEIGHTS = (0.25, 1.0, 2.0, 0.75)  # the v2 layer weights
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "transfer" / "weights"


def descriptors(grams: dict[str, torch.Tensor], reductions: tuple[np.ndarray, ...]) -> torch.Tensor:
    """Layer-weighted, signed-square-rooted, unit descriptors of the reduced Grams P G P^T."""
    parts = []
    for (name, weight), p in zip(zip(LAYERS, WEIGHTS, strict=True), reductions, strict=True):
        pt = torch.from_numpy(p)
        r = pt @ grams[name] @ pt.T
        rows, cols = torch.triu_indices(len(p), len(p))
        upper = r[:, rows, cols]
        parts.append(F.normalize(torch.copysign(upper.abs().sqrt(), upper), dim=1) * weight**0.5)
    return torch.cat(parts, dim=1)


def within_group_directions(x: torch.Tensor, groups: np.ndarray, k: int) -> torch.Tensor:
    """The top-k principal directions of x once each group's mean is removed (k, D)."""
    centred = x.clone()
    for g in np.unique(groups):
        rows = torch.as_tensor(groups == g)
        centred[rows] -= centred[rows].mean(0)
    return torch.linalg.svd(centred, full_matrices=False)[2][:k]


def remove(x: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
    return x if u is None or len(u) == 0 else x - (x @ u.T) @ u


def fit(train_set: Path, version: str, rank: int, ks: tuple[int, ...] = (0, 4, 8, 16, 32)) -> StyleHead:
    paths, styles = labelled_images(train_set)
    products = np.array([Path(p).stem for p in paths])
    styles = np.array(styles)
    encoder = StyleEncoder(EncoderConfig(layers=LAYERS), device="cpu")
    grams, order = {name: [] for name in LAYERS}, []
    for batch in iter_batches(paths, encoder.config, 16, 1, progress=True, desc="training set"):
        order += batch.indices
        feats = encoder.features(batch.pixels)
        with torch.inference_mode():
            for name in LAYERS:
                g = masked_gram(feats[name], batch.masks)
                grams[name].append(g / g.flatten(1).norm(dim=1)[:, None, None])
    full = {name: torch.cat(parts) for name, parts in grams.items()}
    products, styles = products[order], styles[order]  # images that failed to load are left out
    reductions = []
    for name in LAYERS:
        values, vectors = torch.linalg.eigh(full[name].mean(0).double())
        reductions.append(vectors[:, values.argsort(descending=True)[:rank]].T.float().numpy())
    reductions = tuple(reductions)
    x = descriptors(full, reductions)
    # k on the training set itself: nuisance directions from half of the products, retrieval on the other half
    names = np.unique(products)
    half = np.isin(products, np.random.default_rng(0).permutation(names)[: len(names) // 2])
    scores = {}
    for k in ks:
        u = within_group_directions(x[torch.as_tensor(half)], styles[half], k) if k else None
        held = remove(x[torch.as_tensor(~half)], u)
        held = F.normalize(held - held.mean(0), dim=1)
        scores[k] = _map_from_sims(held @ held.T, list(styles[~half]))
    best = max(scores, key=scores.get)
    print("nuisance directions k -> held-out mAP@10 on the training renders:", scores, "chosen", best)
    u = within_group_directions(x, styles, best) if best else torch.zeros(0, x.shape[1])
    head = StyleHead(version, LAYERS, WEIGHTS, reductions, u.numpy(), sha256="")
    WEIGHTS_DIR.mkdir(exist_ok=True)
    out = WEIGHTS_DIR / f"{version}.npz"
    head.save(str(out))
    print(f"{out}: {out.stat().st_size / 1e3:.0f} kB, sha256 {hashlib.sha256(out.read_bytes()).hexdigest()[:12]}")
    return head


def cached_grams(data: Cached) -> dict[str, torch.Tensor]:
    return {name: data.full_grams(name, slice(None)) for name in LAYERS}


def score(version: str, folders: list[str]) -> dict[str, dict[str, float]]:
    head = load_head(version)
    results: dict[str, dict[str, float]] = {}
    for folder in folders:
        data = Cached(cache_root() / folder)
        grams = cached_grams(data)
        for name, u in (("reduced Gram (no nuisance removal)", None), (version, torch.from_numpy(head.nuisance))):
            y = pca_vectors(kernel(remove(descriptors(grams, head.reductions), u))).float()
            row = results.setdefault(name, {})
            row[folder] = round(_map_from_sims(y @ y.T, data.labels), 3)
            if len({Path(p).stem for p in data.paths}) < len(data.paths):
                row[f"{folder} leak@1"] = round(leakage(y @ y.T, data.paths), 2)
        del grams
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{v}" for v in row.values()) + " |")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fit")
    p.add_argument("train_set", type=Path)
    p.add_argument("--version", default="style-head-1")
    p.add_argument("--rank", type=int, default=64)
    p = sub.add_parser("score")
    p.add_argument("--head", default="style-head-1")
    p.add_argument("--datasets", default="fashion_texture-256,dtd10-256,hm_patterns20-256,svc-256")
    p.add_argument("--json")
    args = parser.parse_args()
    if args.cmd == "fit":
        fit(args.train_set, args.version, args.rank)
    else:
        results = score(args.head, args.datasets.split(","))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
