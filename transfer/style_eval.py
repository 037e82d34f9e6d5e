"""Same-style retrieval on a labelled folder (`<label>/<image>`): leave-one-out, by cosine.

Methods: `gram` (the compact style embedding, projection fitted on the folder itself: unsupervised),
`gram-raw` (the uncompressed Gram descriptor), `gram-v1` (the v1 embedding: five layers, element-wise square
roots, same image size and dimension, from the same network pass), `gram-v2` (the one-part embedding before facets:
colour Grams of relu2_1..relu5_1), `pattern` and `colour` (the two facets of a faceted config, `transfer.facets`;
`gram` is then both), and the baselines a style embedding must beat,
`content` (masked global-average-pooled relu5_1) and `colour-hist` (8x8x8 RGB histogram of the masked
pixels, square-rooted).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.errors import BadInput, NoSuchFile
from transfer.embed import iter_batches
from transfer.encoder import STYLE_LAYERS, STYLE_LAYERS_V1, EncoderConfig, StyleEncoder
from transfer.facets import colour_histogram
from transfer.head import DEFAULT_HEAD, load_head
from transfer.images import IMAGE_SUFFIXES

METHODS = ("gram", "gram-raw", "gram-v1", "gram-v2", "gram-head", "pattern", "colour", "content", "colour-hist")


def labelled_images(root: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """Images under each sub-folder of `root`, labelled by the sub-folder; files at the top level are ignored."""
    root = Path(root)
    if not root.is_dir():
        raise NoSuchFile(f"not a folder: {root}")
    paths, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                paths.append(p)
                labels.append(folder.name)
    if not paths:
        raise BadInput(f"no labelled images in {root}: expected <label>/<image> sub-folders")
    return paths, labels


def retrieval_metrics(
    vectors: np.ndarray, labels: list[str], k: int = 10, items: list[str] | None = None
) -> dict[str, float]:
    """Leave-one-out mAP@k and P@k by cosine; AP@k divides by min(k, number of relevant items).

    Queries with no other item of their label are skipped. With `items` (what each image shows, e.g. the
    product in a style-vs-content set), also `leak@1`: the share of queries whose nearest image shows the
    same item under another label.
    """
    x = F.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=1)
    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    codes_t = torch.as_tensor(codes)
    sims = x @ x.T
    sims.fill_diagonal_(-torch.inf)
    k = min(k, len(labels) - 1)
    top = sims.topk(k, dim=1).indices
    relevant = (codes_t[top] == codes_t[:, None]).to(torch.float32)  # (n, k)
    n_relevant = torch.bincount(codes_t)[codes_t] - 1
    has_relevant = n_relevant > 0
    precision_at = relevant.cumsum(dim=1) / torch.arange(1, k + 1)
    ap = (precision_at * relevant).sum(dim=1) / n_relevant.clamp(max=k).clamp_min(1)
    results = {
        f"map@{k}": float(ap[has_relevant].mean()),
        f"p@{k}": float(relevant[has_relevant].mean()),
        "n": len(labels),
    }
    if items is not None:
        item_codes = torch.as_tensor(np.unique(np.asarray(items), return_inverse=True)[1])
        results["leak@1"] = float((item_codes[top[:, 0]] == item_codes).to(torch.float32).mean())
    return results


def style_eval(
    root: str | os.PathLike,
    methods: tuple[str, ...] = ("gram",),
    config: EncoderConfig | None = None,
    k: int = 10,
    device: str | None = None,
    batch_size: int = 16,
    num_workers: int | None = None,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics per method for leave-one-out same-label retrieval in `root`. One network pass serves all methods."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise BadInput(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    config = config or EncoderConfig()
    paths, labels = labelled_images(root)
    if not config.facets and {"pattern", "colour"} & set(methods):
        raise BadInput("the pattern and colour methods are the facets of a faceted config (facets=True)")
    needs_network = bool({"gram", "gram-raw", "gram-v1", "gram-v2", "pattern", "colour", "content"} & set(methods))
    extra = (STYLE_LAYERS_V1 if "gram-v1" in methods else ()) + (load_head().layers if "gram-head" in methods else ())
    extra += STYLE_LAYERS if "gram-v2" in methods else ()
    encoder = StyleEncoder(config, device=device, extra_layers=extra) if needs_network else None
    v1 = None
    if "gram-v1" in methods:
        v1_config = config.model_copy(
            update={"layers": STYLE_LAYERS_V1, "layer_weights": None, "matrix_root_layers": None, "facets": False}
        )
        v1 = StyleEncoder(v1_config, device=device)
    v2 = None
    if "gram-v2" in methods:
        v2_config = config.model_copy(
            update={"layers": STYLE_LAYERS, "layer_weights": None, "matrix_root_layers": None, "facets": False}
        )
        v2 = StyleEncoder(v2_config, device=device)
    head = None
    if "gram-head" in methods:  # the shipped learned head on the same network pass
        head = StyleEncoder(EncoderConfig.model_validate(config.model_dump() | {"head": DEFAULT_HEAD}), device=device)
    parts: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    kept: list[int] = []
    for batch in iter_batches(paths, config, batch_size, num_workers, progress=progress, desc="style-eval"):
        if not batch.indices:
            continue
        kept.extend(batch.indices)
        one_pass = {"gram-v1", "gram-v2", "gram-head", "content"} | (set() if config.facets else {"gram", "gram-raw"})
        feats = encoder.features(batch.pixels) if encoder and one_pass & set(methods) else None
        if {"gram", "gram-raw", "pattern", "colour"} & set(methods):
            if config.facets:  # the pattern facet looks at views of its own
                raw = encoder.raw_descriptors(batch.pixels, batch.masks).cpu()
            else:
                raw = encoder.descriptors_from_features(feats, batch.masks).cpu()
            for m in ("gram", "gram-raw", "pattern", "colour"):
                if m in methods:
                    parts[m].append(raw)
        if v2 is not None:
            parts["gram-v2"].append(v2.descriptors_from_features(feats, batch.masks).cpu())
        if head is not None:
            parts["gram-head"].append(head.descriptors_from_features(feats, batch.masks).cpu())
        if v1 is not None:
            parts["gram-v1"].append(v1.descriptors_from_features(feats, batch.masks).cpu())
        if "content" in methods:
            parts["content"].append(encoder.content_from_features(feats, batch.masks).cpu())
        if "colour-hist" in methods:
            parts["colour-hist"].append(colour_histogram(batch.pixels, batch.masks))
    kept_labels = [labels[i] for i in kept]
    stems = [paths[i].stem for i in kept]
    items = stems if len(set(stems)) < len(stems) else None  # the same file name under several labels
    results = {}
    fitted = False
    for m in methods:
        vectors = torch.cat(parts.pop(m))
        if m in ("gram", "gram-v1", "gram-v2", "gram-head", "pattern", "colour"):
            model = {"gram-v1": v1, "gram-v2": v2, "gram-head": head}.get(m, encoder)
            if model is not encoder or not fitted:
                sample = np.random.default_rng(config.seed).permutation(len(vectors))[: config.fit_samples]
                model.fit_projection(vectors[np.sort(sample)].numpy())
                fitted = fitted or model is encoder
            vectors = model.project(vectors)
            split = config.pattern_dim
            if m in ("pattern", "colour"):
                vectors = vectors[:, :split] if m == "pattern" else vectors[:, split:]
        results[m] = retrieval_metrics(vectors.cpu().numpy(), kept_labels, k, items)
    return results
