"""Same-style retrieval quality (mAP@10, P@10), the figures in BENCHMARKS.md.

    python benchmarks/style_quality.py [--image-size 256] [--hm-per-class 60] [--json OUT]

- fashion_texture (11 clothing patterns) and dtd10 (10 textures): gram (256-d), gram-raw (uncompressed
  five-layer Gram), content (GAP relu5_1) and colour-hist (8x8x8 RGB), all leave-one-out by cosine.
- H&M packshots, relevance = same `graphical_appearance_name`, classes with at least 20 imaged items (at most
  --hm-per-class each, so "Solid" does not swamp the mean): gram with and without the foreground mask.
Datasets come from ../shared/datasets (or $STYLEREC_DATASETS); missing ones are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from transfer.encoder import EncoderConfig
from transfer.style_eval import METHODS, style_eval


def datasets_root() -> Path:
    return Path(os.environ.get("STYLEREC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def hm_labelled_folder(root: Path, per_class: int, min_items: int = 20, seed: int = 0) -> Path:
    """Symlinks <graphical_appearance_name>/<article_id>.jpg for the pattern classes with enough images."""
    articles = pd.read_csv(root / "articles.csv", dtype={"article_id": str})
    articles = articles[articles["has_image"]]
    counts = articles["graphical_appearance_name"].value_counts()
    keep = counts[counts >= min_items].index
    out = Path(tempfile.mkdtemp()) / "hm_patterns"
    for label, group in articles[articles["graphical_appearance_name"].isin(keep)].groupby("graphical_appearance_name"):
        folder = out / label.replace("/", "-")
        folder.mkdir(parents=True)
        for article_id in group["article_id"].sample(frac=1, random_state=seed).head(per_class):
            (folder / f"{article_id}.jpg").symlink_to(root / "images" / article_id[:3] / f"{article_id}.jpg")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--hm-per-class", type=int, default=60)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    root = datasets_root()
    config = EncoderConfig(image_size=args.image_size)
    results: dict[str, dict] = {}
    for name in ("fashion_texture", "dtd10"):
        if (root / name).is_dir():
            started = time.perf_counter()
            results[name] = style_eval(root / name, METHODS, config, progress=True)
            results[name]["seconds"] = round(time.perf_counter() - started, 1)
    if (root / "hm").is_dir():
        folder = hm_labelled_folder(root / "hm", args.hm_per_class)
        results["hm_patterns"] = {
            "gram (mask)": style_eval(folder, ("gram",), config, progress=True)["gram"],
            "gram (no mask)": style_eval(folder, ("gram",), config.model_copy(update={"use_mask": False}))["gram"],
            "classes": sorted(p.name for p in folder.iterdir()),
        }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
