"""Same-style retrieval quality (mAP@10, P@10, content leakage), the figures in BENCHMARKS.md.

    python benchmarks/style_quality.py [--image-size 256] [--hm-per-class 30] [--style-vs-content DIR] [--json OUT]

Every dataset: gram (the default 256-d embedding, PCA fitted on the folder itself), gram-v1 (the v1 embedding,
five layers, element-wise roots, from the same network pass), gram-head (the shipped learned head, `--head`),
content (GAP relu5_1) and colour-hist (8x8x8 RGB),
all leave-one-out by cosine. Datasets:
- fashion_texture (11 clothing patterns) and dtd10 (10 textures);
- hm_patterns: H&M packshots, relevance = same `graphical_appearance_name`, classes with at least 20 imaged
  items, at most --hm-per-class each (so "Solid" does not swamp the mean), with the foreground mask;
- the style-vs-content set (`<style>/<article_id>.jpg`, the same products rendered in every style; made by
  benchmarks/style_vs_content.sh): relevance = same style, and leak@1 = the share of queries whose nearest image
  is the same product in another style.
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
from transfer.style_eval import style_eval

METHODS = ("gram", "gram-v1", "gram-head", "content", "colour-hist")


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
    parser.add_argument("--hm-per-class", type=int, default=30)
    parser.add_argument("--style-vs-content", default="/work/shared-var/style-vs-content/set")
    parser.add_argument("--datasets", default="fashion_texture,dtd10,hm_patterns,style_vs_content")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    root = datasets_root()
    folders = {"fashion_texture": root / "fashion_texture", "dtd10": root / "dtd10"}
    if (root / "hm").is_dir():
        folders["hm_patterns"] = hm_labelled_folder(root / "hm", args.hm_per_class)
    if Path(args.style_vs_content).is_dir():
        folders["style_vs_content"] = Path(args.style_vs_content)
    config = EncoderConfig(image_size=args.image_size)
    results: dict[str, dict] = {}
    for name in args.datasets.split(","):
        if name in folders and folders[name].is_dir():
            started = time.perf_counter()
            results[name] = style_eval(folders[name], METHODS, config, progress=True)
            results[name]["seconds"] = round(time.perf_counter() - started, 1)
            print(name, json.dumps(results[name]), flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
