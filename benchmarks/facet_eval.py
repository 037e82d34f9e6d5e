"""Style facets on labelled folders (issue 22): today's default (v2, colour Grams) against the pattern facet
(grey Grams pooled over turned views, with and without shrunk views) and the colour facet against the colour
histogram, leave-one-out mAP@10 as `stylerec style-eval` computes it, from one set of network passes.

    python benchmarks/facet_eval.py describe /work/shared/datasets/dtd10 /tmp/dtd10.pt   # slow: the passes
    python benchmarks/facet_eval.py score /tmp/dtd10.pt                                     # seconds

`describe` keeps, per image, each variant's per-layer Gram descriptors (float16) and the colour histogram;
`score` fits each compact projection on the folder itself (unsupervised, as `style-eval`) and prints a table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from transfer.embed import iter_batches
from transfer.encoder import STYLE_LAYERS, EncoderConfig, StyleEncoder
from transfer.facets import colour_dim, colour_histogram, luminance, stored_scales, view
from transfer.gram import gram_descriptor, masked_gram
from transfer.projection import fit_pca
from transfer.style_eval import labelled_images, retrieval_metrics

TURNS = (0.0, 45.0, 90.0, 135.0)
VARIANTS = {
    "colour Grams, 1 view (v2 default)": None,
    "grey Grams, 1 view": ((0.0, 1.0),),
    "grey Grams, 4 turns (pattern facet)": tuple((a, 1.0) for a in TURNS),
}
WEIGHTS = dict(zip(STYLE_LAYERS, (0.25, 1.0, 2.0, 0.75), strict=True))


def describe(root: str, out: str, size: int, per_class: int | None = None, save_every: int | None = None) -> None:
    """The passes over a labelled folder, in class-interleaved order (the i-th image of every label, then the
    (i+1)-th): with `save_every` batches the file is rewritten as it goes, so a run stopped early leaves a
    class-balanced prefix of the set to `score`."""
    config = EncoderConfig(image_size=size, facets=False)
    encoder = StyleEncoder(config)
    paths, labels = labelled_images(root)
    rank = [labels[: i + 1].count(label) for i, label in enumerate(labels)]  # 1-based, file name order
    keep = [i for i in range(len(labels)) if per_class is None or rank[i] <= per_class]
    keep.sort(key=lambda i: (rank[i], labels[i]))
    paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    views = sorted({v for vs in VARIANTS.values() if vs for v in vs})
    kept, hist = [], []
    parts: dict[str, dict[str, list[torch.Tensor]]] = {v: {name: [] for name in STYLE_LAYERS} for v in VARIANTS}
    started = time.perf_counter()

    def save() -> None:
        torch.save(
            {
                "labels": [labels[i] for i in kept],
                "hist": torch.cat(hist),
                "variants": {v: {n: torch.cat(x) for n, x in d.items()} for v, d in parts.items()},
                "seconds": time.perf_counter() - started,
                "size": size,
                "complete": len(kept) == len(paths),
            },
            out,
        )

    for number, batch in enumerate(iter_batches(paths, config, 16, progress=True, desc="describe"), 1):
        if not batch.indices:
            continue
        kept.extend(batch.indices)
        pixels, mask = batch.pixels, batch.masks
        hist.append(colour_histogram(pixels, mask))
        feats = encoder.features(pixels)
        grams = {(None, name): masked_gram(feats[name], mask) for name in STYLE_LAYERS}
        grey = luminance(pixels)
        for degrees, scale in views:
            vp, vm = view(grey, mask, degrees, scale)
            feats = encoder.features(vp)
            for name in STYLE_LAYERS:
                grams[((degrees, scale), name)] = masked_gram(feats[name], vm)
        for variant, vs in VARIANTS.items():
            for name in STYLE_LAYERS:
                gram = grams[(None, name)] if vs is None else sum(grams[(v, name)] for v in vs) / len(vs)
                parts[variant][name].append(gram_descriptor(gram).half())
        if save_every and number % save_every == 0:
            save()
    save()


def score(path: str, dim: int, seed: int = 0) -> None:
    data = torch.load(path)
    labels, hist = data["labels"], data["hist"].numpy()

    def project(raw: np.ndarray, d: int) -> np.ndarray:
        return F.normalize(torch.as_tensor(fit_pca(raw, d, seed).transform(torch.as_tensor(raw))), dim=1).numpy()

    rows, vectors = [], {}
    for variant, layers in data["variants"].items():
        raw = torch.cat([layers[n].float() * WEIGHTS[n] ** 0.5 for n in STYLE_LAYERS], 1).numpy()
        d = dim if layers is data["variants"]["colour Grams, 1 view (v2 default)"] else dim - colour_dim(dim)
        vectors[variant] = project(raw, d)
        rows.append((variant, d, retrieval_metrics(vectors[variant], labels)))
    rows.append(("colour-hist (raw, 512)", 512, retrieval_metrics(hist, labels)))
    colour = project(hist, colour_dim(dim))
    rows.append(("colour facet (hist PCA)", colour_dim(dim), retrieval_metrics(colour, labels)))
    pattern_scale, colour_scale = stored_scales()  # the stored faceted vector: "both", pattern 3:1 colour
    both = np.concatenate([vectors["grey Grams, 4 turns (pattern facet)"] * pattern_scale, colour * colour_scale], 1)
    rows.append(("both (stored facets, 3:1)", dim, retrieval_metrics(both, labels)))
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    complete = "the whole set" if data.get("complete", True) else "a class-balanced prefix (stopped early)"
    print(f"{path}: {len(labels)} images ({complete}; per class {min(counts.values())}-{max(counts.values())}),")
    print(f"{data['size']} px, passes took {data['seconds']:.0f} s")
    print("| variant | dim | mAP@10 | P@10 |\n|---|---|---|---|")
    for variant, d, m in rows:
        print(f"| {variant} | {d} | {m['map@10']:.3f} | {m['p@10']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("describe")
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--per-class", type=int, default=None, help="only the first N images of each label")
    p.add_argument("--save-every", type=int, default=None, help="rewrite OUT every N batches (partial runs score)")
    p = sub.add_parser("score")
    p.add_argument("data")
    p.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    if args.command == "describe":
        describe(args.root, args.out, args.size, args.per_class, args.save_every)
    else:
        score(args.data, args.dim)


if __name__ == "__main__":
    main()
