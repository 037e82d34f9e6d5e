"""Training renders for the learned style head (issue 16), disjoint from every evaluation set.

    python benchmarks/style_head_renders.py OUT_DIR [--products 24] [--styles 8] [--seed 7]

Products: a seeded sample of imaged H&M articles (at most 4 per product group); styles: H&M packshots of patterned
articles (one per `graphical_appearance_name`, Solid excluded). Articles of the style-vs-content set
(`benchmarks/style_vs_content.sh`) and of the H&M pattern-class set (`benchmarks/style_variants.py`) are left out,
and the styles are neither the paintings nor DTD images, so the head never sees an evaluation set's images or
labels. Rendered by the fast renderer at strength 0.6 with the product's colours kept (as the style-vs-content
set), laid out as OUT_DIR/set/<style>/<article_id>.jpg.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from style_variants import datasets_root, hm_pattern_images


def excluded_articles(data: Path) -> set[str]:
    """Articles used by the H&M evaluation sets (pattern classes; the style-vs-content set's sample)."""
    paths, _ = hm_pattern_images(data / "hm", per_class=20)
    out = {p.stem for p in paths}
    a = pd.read_csv(data / "hm" / "articles.csv", dtype={"article_id": str})
    a = a[a["has_image"]].sample(frac=1, random_state=16)
    out |= set(a.groupby("product_group_name").head(6).head(40)["article_id"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--products", type=int, default=24)
    parser.add_argument("--styles", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = datasets_root()
    articles = pd.read_csv(data / "hm" / "articles.csv", dtype={"article_id": str})
    articles = articles[articles["has_image"] & ~articles["article_id"].isin(excluded_articles(data))]
    articles = articles.sample(frac=1, random_state=args.seed)
    patterned = articles[~articles["graphical_appearance_name"].isin(["Solid", "Unknown"])]
    styles = patterned.groupby("graphical_appearance_name").head(1).head(args.styles)
    products = articles[~articles["article_id"].isin(styles["article_id"])]
    products = products.groupby("product_group_name").head(4).head(args.products)

    def image(aid: str) -> str:
        return str(data / "hm" / "images" / aid[:3] / f"{aid}.jpg")

    for aid, pattern in zip(styles["article_id"], styles["graphical_appearance_name"], strict=True):
        name = f"{pattern.replace(' ', '_').lower()}-{aid}"
        renders, link_dir = args.out / "renders" / name, args.out / "set" / name
        link_dir.mkdir(parents=True, exist_ok=True)
        command = ["stylerec", "render", *map(image, products["article_id"]), "--style", image(aid)]
        command += ["--renderer", "fast", "--strength", "0.6", "--out", str(renders), "-q"]
        command += ["--cache", str(args.out / "render-cache"), "--threads", "1"]
        subprocess.run(command, check=True)
        for f in sorted(renders.glob("*.jpg")):
            link = link_dir / f"{f.name.split('-')[0]}.jpg"
            if not link.exists():
                os.symlink(f.resolve(), link)
    print(f"{args.out / 'set'}: {sum(1 for _ in (args.out / 'set').rglob('*.jpg'))} images")


if __name__ == "__main__":
    main()
