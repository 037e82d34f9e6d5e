"""Style descriptor variants scored from cached per-layer VGG19 Grams (issue 16).

    python benchmarks/style_variants.py cache --datasets fashion_texture,dtd10,hm_patterns,svc=SET_DIR
    python benchmarks/style_variants.py score [--datasets fashion_texture-256,...] [--json OUT]

`cache` runs the network once per labelled dataset and keeps, per image and layer (relu1_1..relu5_4), the masked
Gram (upper triangle, divided by its Frobenius norm, float16), its Frobenius norm and the masked mean of the
features, plus the content (masked GAP relu5_1) and colour-histogram baselines. `score` builds every variant
from that cache (no network) as n x n kernels per (layer, root), kept on disk: layer mixes, element-wise signed
square root vs matrix square root (Newton-Schulz, 5 iterations), PCA to 256-d fitted on the evaluated folder
(exactly, as kernel PCA) with a spectral power, leave-one-out mAP@10 and, where a file name repeats across labels
(the style-vs-content set made by benchmarks/style_vs_content.sh), leak@1. The baselines are scored as
`style-eval` scores them (raw cosine, no PCA). It prints a markdown table.

Cache: $STYLEREC_STYLE_CACHE or /work/shared-var/style-cache, one folder per dataset and image size.
Datasets: fashion_texture, dtd10, hm_patterns (H&M `graphical_appearance_name`, classes with >= 20 imaged items,
at most --hm-per-class each) and any `<label>/<image>` folder given as NAME=PATH (the style-vs-content set).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from transfer.embed import iter_batches
from transfer.encoder import EncoderConfig, StyleEncoder
from transfer.gram import masked_gram, triu_indices
from transfer.style_eval import colour_histogram, labelled_images

ALL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu5_2", "relu5_3", "relu5_4")


def datasets_root() -> Path:
    return Path(os.environ.get("STYLEREC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def cache_root() -> Path:
    return Path(os.environ.get("STYLEREC_STYLE_CACHE", "/work/shared-var/style-cache"))


def hm_pattern_images(root: Path, per_class: int, min_items: int = 20, seed: int = 0) -> tuple[list[Path], list[str]]:
    """H&M packshots labelled by `graphical_appearance_name`: classes with enough images, at most `per_class` each."""
    import pandas as pd

    articles = pd.read_csv(root / "articles.csv", dtype={"article_id": str})
    articles = articles[articles["has_image"]]
    counts = articles["graphical_appearance_name"].value_counts()
    paths, labels = [], []
    for label, group in articles[articles["graphical_appearance_name"].isin(counts[counts >= min_items].index)].groupby(
        "graphical_appearance_name"
    ):
        for article_id in sorted(group["article_id"].sample(frac=1, random_state=seed).head(per_class)):
            paths.append(root / "images" / article_id[:3] / f"{article_id}.jpg")
            labels.append(str(label))
    return paths, labels


def dataset_images(name: str, hm_per_class: int) -> tuple[list[Path], list[str]]:
    if "=" in name:
        return labelled_images(name.split("=", 1)[1])
    if name == "hm_patterns":
        return hm_pattern_images(datasets_root() / "hm", hm_per_class)
    return labelled_images(datasets_root() / name)


def cache_dataset(name: str, size: int, hm_per_class: int, batch_size: int = 8) -> Path:
    """Run VGG19 once over a labelled dataset and write the per-layer Gram cache."""
    paths, labels = dataset_images(name, hm_per_class)
    out = cache_root() / f"{name.split('=', 1)[0]}-{size}"
    if (out / "done").exists():
        print(f"{out}: cached already", file=sys.stderr)
        return out
    out.mkdir(parents=True, exist_ok=True)
    config = EncoderConfig(image_size=size, layers=ALL_LAYERS)
    encoder = StyleEncoder(config, device="cpu")
    n = len(paths)
    grams = {
        layer: np.lib.format.open_memmap(
            out / f"gram_{layer}.npy", "w+", np.float16, (n, len(triu_indices(encoder_channels(layer))))
        )
        for layer in ALL_LAYERS
    }
    norms = {layer: np.zeros(n, np.float32) for layer in ALL_LAYERS}
    means = {layer: np.zeros((n, encoder_channels(layer)), np.float32) for layer in ALL_LAYERS}
    content = np.zeros((n, 512), np.float32)
    hist = np.zeros((n, 512), np.float32)
    ok = np.zeros(n, bool)
    started = time.perf_counter()
    for batch in iter_batches(paths, config, batch_size, 1, progress=True, desc=name):
        if not batch.indices:
            continue
        idx = np.array(batch.indices)
        ok[idx] = True
        feats = encoder.features(batch.pixels)
        with torch.inference_mode():
            for layer in ALL_LAYERS:
                gram = masked_gram(feats[layer], batch.masks)
                c = gram.shape[-1]
                upper = gram.reshape(len(idx), c * c)[:, triu_indices(c)]
                frob = gram.flatten(1).norm(dim=1)
                grams[layer][idx] = (upper / frob[:, None]).numpy().astype(np.float16)
                norms[layer][idx] = frob.numpy()
                f = feats[layer].float()
                w = torch.nn.functional.adaptive_avg_pool2d(batch.masks, f.shape[-2:])
                means[layer][idx] = ((f * w).sum(dim=(2, 3)) / w.sum(dim=(2, 3)).clamp_min(1e-6)).numpy()
            content[idx] = encoder.content_from_features(feats, batch.masks).numpy()
            hist[idx] = colour_histogram(batch.pixels, batch.masks).numpy()
    for layer in ALL_LAYERS:
        grams[layer].flush()
        np.save(out / f"norm_{layer}.npy", norms[layer])
        np.save(out / f"mean_{layer}.npy", means[layer])
    np.save(out / "content.npy", content)
    np.save(out / "hist.npy", hist)
    meta = {"paths": [str(p) for p in paths], "labels": labels, "ok": ok.tolist(), "size": size}
    (out / "meta.json").write_text(json.dumps(meta))
    (out / "done").write_text(f"{time.perf_counter() - started:.0f} s\n")
    print(f"{out}: {ok.sum()} images in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


# -- scoring from the cache ---------------------------------------------------------------------------------
class Cached:
    """One dataset's cache: labels of the images that loaded, and per-layer descriptors built on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        meta = json.loads((folder / "meta.json").read_text())
        self.ok = np.array(meta["ok"])
        self.labels = [lab for lab, good in zip(meta["labels"], self.ok, strict=True) if good]
        self.paths = [p for p, good in zip(meta["paths"], self.ok, strict=True) if good]

    def upper(self, layer: str) -> np.ndarray:
        return np.load(self.folder / f"gram_{layer}.npy", mmap_mode="r")[self.ok]

    def array(self, name: str) -> np.ndarray:
        return np.load(self.folder / f"{name}.npy")[self.ok]

    def full_grams(self, layer: str, rows: slice) -> torch.Tensor:
        """Frobenius-normalised (n, C, C) Grams, float32, for a slice of the images."""
        c = encoder_channels(layer)
        upper = torch.from_numpy(self.upper(layer)[rows].astype(np.float32))
        full = torch.zeros(len(upper), c * c)
        rows_i, cols_i = torch.triu_indices(c, c)
        full[:, rows_i * c + cols_i] = upper
        full[:, cols_i * c + rows_i] = upper
        return full.view(-1, c, c)


def unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.to(torch.float32), dim=1)


def layer_descriptor(data: Cached, layer: str, norm: str, chunk: int = 64) -> torch.Tensor:
    """(n, C(C+1)/2) unit descriptors of one layer: `ew` signed sqrt, `plain`, `ms3`/`ms5`/`ms10` Newton-Schulz
    matrix sqrt, `eig` exact matrix sqrt, `cov-...` the same on the centred Gram (covariance)."""
    from transfer.gram import sqrtm_newton_schulz

    if norm in ("ew", "plain"):
        x = torch.from_numpy(data.upper(layer).astype(np.float32))
        return unit(x.sqrt() if norm == "ew" else x)
    c = encoder_channels(layer)
    idx = triu_indices(c)
    centred = norm.startswith("cov-")
    method = norm.removeprefix("cov-")
    frob = torch.from_numpy(data.array(f"norm_{layer}"))
    mean = torch.from_numpy(data.array(f"mean_{layer}"))
    out = []
    for first in range(0, len(data.labels), chunk):
        rows = slice(first, first + chunk)
        g = data.full_grams(layer, rows)
        if centred:
            m = mean[rows] / frob[rows].sqrt()[:, None]
            g = g - m[:, :, None] * m[:, None, :]
        if method == "eig":
            e, v = torch.linalg.eigh(g.double())
            r = ((v * e.clamp_min(0).sqrt()[:, None, :]) @ v.transpose(1, 2)).float()
        elif method == "ew":
            r = torch.copysign(g.abs().sqrt(), g)
        else:
            r = sqrtm_newton_schulz(g, int(method.removeprefix("ms")))
        out.append(unit(r.reshape(len(g), c * c)[:, idx]))
    return torch.cat(out)


def kernel(x: torch.Tensor) -> torch.Tensor:
    return (x @ x.T).double()


def map_from_kernel(k: torch.Tensor, labels: list[str], pca: int | None = 256, power: float = 0.0) -> float:
    """Leave-one-out mAP@10 of the descriptors whose inner products are `k`: raw cosine, or after PCA to `pca`
    dimensions fitted on the same images (kernel PCA with a linear kernel is exactly that PCA), each component
    scaled by its variance to the `power` (0: plain PCA, -0.5: whitening)."""
    from transfer.style_eval import retrieval_metrics

    if pca is None:
        d = k.diagonal().clamp_min(1e-12).sqrt()
        return _map_from_sims(k / d[:, None] / d[None, :], labels)
    return retrieval_metrics(pca_vectors(k, pca, power).numpy(), labels)["map@10"]


def pca_vectors(k: torch.Tensor, dim: int = 256, power: float = 0.0) -> torch.Tensor:
    n = len(k)
    h = torch.eye(n, dtype=k.dtype) - 1.0 / n
    e, v = torch.linalg.eigh(h @ k @ h)
    top = e.argsort(descending=True)[:dim]
    return unit(v[:, top] * e[top].clamp_min(1e-12) ** (0.5 + power))


def leakage(sims: torch.Tensor, paths: list[str]) -> float:
    """Share of queries whose nearest other image shows the same product (file stem) in another style."""
    products = np.unique([Path(p).stem for p in paths], return_inverse=True)[1]
    sims = sims.clone().float()
    sims.fill_diagonal_(-torch.inf)
    top1 = sims.argmax(dim=1).numpy()
    return float(np.mean(products[top1] == products))


def _map_from_sims(sims: torch.Tensor, labels: list[str], k: int = 10) -> float:
    sims = sims.clone().float()
    codes = torch.as_tensor(np.unique(np.asarray(labels), return_inverse=True)[1])
    sims.fill_diagonal_(-torch.inf)
    top = sims.topk(k, dim=1).indices
    relevant = (codes[top] == codes[:, None]).float()
    n_rel = torch.bincount(codes)[codes] - 1
    ap = (relevant.cumsum(1) / torch.arange(1, k + 1) * relevant).sum(1) / n_rel.clamp(max=k).clamp_min(1)
    return float(ap[n_rel > 0].mean())


def encoder_channels(layer: str) -> int:
    from transfer.vgg import LAYER_CHANNELS

    return LAYER_CHANNELS[layer]


class Scorer:
    """Kernels (n x n inner products) per dataset and (layer, normalisation), computed once and kept on disk."""

    def __init__(self, folder: Path) -> None:
        self.data = Cached(folder)
        self.kernels: dict[str, torch.Tensor] = {}
        (folder / "kernels").mkdir(exist_ok=True)

    def kernel(self, part: str) -> torch.Tensor:
        """`part` is `content`, `hist` or `LAYER:NORM`."""
        if part not in self.kernels:
            path = self.data.folder / "kernels" / f"{part.replace(':', '-')}.pt"
            if path.exists():
                self.kernels[part] = torch.load(path)
            else:
                started = time.perf_counter()
                if part in ("content", "hist"):
                    x = unit(torch.from_numpy(self.data.array(part)))
                else:
                    layer, norm = part.split(":")
                    x = layer_descriptor(self.data, layer, norm)
                self.kernels[part] = kernel(x)
                torch.save(self.kernels[part], path)
                print(f"  {self.data.folder.name} {part}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return self.kernels[part]

    def mix(self, weights: dict[str, float]) -> torch.Tensor:
        return sum(w * self.kernel(part) for part, w in weights.items() if w)

    def score(self, weights: dict[str, float], pca: int | None = 256, power: float = 0.0) -> float:
        return map_from_kernel(self.mix(weights), self.data.labels, pca, power)

    def leak(self, weights: dict[str, float], pca: int | None = 256, power: float = 0.0) -> float:
        k = self.mix(weights)
        if pca is not None:
            y = pca_vectors(k, pca, power)
            k = (y @ y.T).double()
        return leakage(k, self.data.paths)


V1 = {"relu1_1:ew": 0.25, "relu2_1:ew": 0.5, "relu3_1:ew": 1.0, "relu4_1:ew": 1.0, "relu5_1:ew": 1.0}
V2 = {"relu2_1:ew": 0.25, "relu3_1:ew": 1.0, "relu4_1:ew": 2.0, "relu5_1:ew": 0.75}
V2_DEEP = {"relu2_1:ew": 0.25, "relu3_1:ew": 1.0, "relu4_1:ew": 2.0, "relu5_1:ew": 0.5}
V2_DEEP |= {f"relu5_{i}:ms5": 0.0625 for i in (2, 3, 4)}
RELU5_MS = {f"relu5_{i}:ms5": 1.0 for i in range(1, 5)}


def variants() -> dict[str, tuple[dict[str, float], float | None]]:
    """Named variants: (weights of unit per-layer descriptors, PCA spectral power; None = no PCA, raw cosine)."""
    v: dict[str, tuple[dict[str, float], float | None]] = {
        "content (GAP relu5_1, raw)": ({"content": 1.0}, None),
        "colour-hist (raw)": ({"hist": 1.0}, None),
        "v1 default": (V1, 0.0),
        "**v2 default**": (V2, 0.0),
    }
    for layer in ALL_LAYERS:
        v[f"{layer} alone"] = ({f"{layer}:ew": 1.0}, 0.0)
    for i in range(1, 5):
        v[f"relu5_{i} alone, matrix root"] = ({f"relu5_{i}:ms5": 1.0}, 0.0)
    v["relu5_1..5_4, matrix roots"] = (RELU5_MS, 0.0)
    v["relu5_1..5_4, matrix roots, PCA power 0.25"] = (RELU5_MS, 0.25)
    v["relu5_1..5_4, element-wise roots, PCA power 0.25"] = ({f"relu5_{i}:ew": 1.0 for i in range(1, 5)}, 0.25)
    texture = {"relu1_1:ew": 0.125, "relu2_1:ew": 0.25, "relu3_1:ew": 0.5, "relu4_1:ew": 0.5} | RELU5_MS
    v["texture-first: (1/8, 1/4, 1/2, 1/2) + relu5_x roots, power 0.25"] = (texture, 0.25)
    v["v1 + relu5_2..5_4 (element-wise)"] = (V1 | {f"relu5_{i}:ew": 1.0 for i in (2, 3, 4)}, 0.0)
    v["relu3_1 + 2 relu4_1"] = ({"relu3_1:ew": 1.0, "relu4_1:ew": 2.0}, 0.0)
    v["best on fashion alone: relu3_1 + 2 relu4_1 + relu5_1/2"] = (
        {"relu3_1:ew": 1.0, "relu4_1:ew": 2.0, "relu5_1:ew": 0.5},
        0.0,
    )
    v["v2 + relu5_2..5_4 matrix roots at 1/16 (relu5_1 at 1/2)"] = (V2_DEEP, 0.0)
    v["v2 with PCA power 0.25"] = (V2, 0.25)
    return v


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("cache")
    p.add_argument("--datasets", default="fashion_texture,dtd10,hm_patterns")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--hm-per-class", type=int, default=20)
    p = sub.add_parser("score")
    p.add_argument("--datasets", default="fashion_texture-256,dtd10-256,hm_patterns20-256,svc-256")
    p.add_argument("--variants", help="comma-separated names (default: all)")
    p.add_argument("--json")
    args = parser.parse_args()
    if args.cmd == "score":
        table = variants()
        names = args.variants.split(",") if args.variants else list(table)
        results: dict[str, dict[str, float]] = {}
        for folder in args.datasets.split(","):
            scorer = Scorer(cache_root() / folder)
            leaks = len({Path(p).stem for p in scorer.data.paths}) < len(scorer.data.paths)
            for name in names:
                weights, power = table[name]
                row = results.setdefault(name, {})
                pca = None if power is None else 256
                row[folder] = round(scorer.score(weights, pca, power or 0.0), 3)
                if leaks:
                    row[f"{folder} leak@1"] = round(scorer.leak(weights, pca, power or 0.0), 2)
                print(f"{folder:24s} {name:60s} {row[folder]:.3f}", file=sys.stderr)
        print("| variant | " + " | ".join(next(iter(results.values()))) + " |")
        print("|---" * (1 + len(next(iter(results.values())))) + "|")
        for name, row in results.items():
            print(f"| {name} | " + " | ".join(f"{x}" for x in row.values()) + " |")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    if args.cmd == "cache":
        for name in args.datasets.split(","):
            cache_dataset(name, args.image_size, args.hm_per_class)


if __name__ == "__main__":
    main()
