"""Writes the walkthrough notebooks from the cell sources below (run it after editing them)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """\
import os, sys, tempfile
from pathlib import Path

REPO = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
sys.path[:0] = [str(REPO), str(REPO / "notebooks")]
DATASETS = Path(os.environ.get("STYLEREC_DATASETS", REPO.parent / "shared" / "datasets"))
# STYLEREC_NOTEBOOK_WORK keeps the work between runs (a rerun then embeds only what changed); else a new folder
WORK = Path(os.environ.get("STYLEREC_NOTEBOOK_WORK") or tempfile.mkdtemp(prefix="stylerec-notebook-"))
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np"""

DEMO = """\
from demo_setup import demo_shop

catalog_dir, shop = demo_shop(WORK)  # the shop opened the way the CLI and the service open it"""

NOTEBOOKS = {
    "01_style_space.ipynb": [
        new_markdown_cell(
            "# 01 · The style space\n\nEmbed the generated demo catalog (288 packshots: 6 categories x 6 patterns x 8 "
            "colourways), look at nearest style neighbours, and map the whole space in 2-D. Same pattern and "
            "colourway should sit together whatever the product is."
        ),
        new_code_cell(SETUP),
        new_code_cell(DEMO),
        new_markdown_cell("## Nearest style neighbours\nThe query on the left, its five nearest neighbours by cosine."),
        new_code_cell(
            """\
from PIL import Image
from recsys.shop.demo import read_catalog

catalog = read_catalog(catalog_dir / "items.csv")
queries = ["D0010", "D0077", "D0165", "D0236"]
fig, axes = plt.subplots(len(queries), 6, figsize=(10, 2.2 * len(queries)))
for row, query in zip(axes, queries):
    hits = [query] + [r.item_id for r in shop.similar(query, 5)]
    for ax, item in zip(row, hits):
        ax.imshow(Image.open(catalog_dir / catalog[item]["image"]))
        ax.set_title(f"{catalog[item]['pattern']}\\n{catalog[item]['colour']}", fontsize=7)
        ax.axis("off")
plt.tight_layout()"""
        ),
        new_markdown_cell("## A 2-D map of the style space (t-SNE), coloured by pattern"),
        new_code_cell(
            """\
from sklearn.manifold import TSNE

xy = TSNE(perplexity=20, random_state=0, init="pca").fit_transform(shop.style.vectors)
patterns = [catalog[i]["pattern"] for i in shop.style.ids]
fig, ax = plt.subplots(figsize=(7, 6))
for pattern in sorted(set(patterns)):
    pick = [n for n, p in enumerate(patterns) if p == pattern]
    ax.scatter(xy[pick, 0], xy[pick, 1], s=14, label=pattern)
ax.legend()
ax.set_title("style vectors, t-SNE")
same = np.mean([catalog[o]["pattern"] == catalog[i]["pattern"]
                for i in shop.style.ids for o in (r.item_id for r in shop.similar(i, 5))])
print(f"top-5 neighbours sharing the pattern: {same:.0%} (chance 17%)")
assert same > 0.4"""
        ),
    ],
    "02_offline_evaluation.ipynb": [
        new_markdown_cell(
            "# 02 · Offline evaluation\n\nPopularity, CF, style and the hybrid on one split, the way `stylerec "
            "evaluate` runs them. On H&M (when `../shared/datasets` is there: train before July 2020, test July, "
            "K=12; style vectors are used when `var/embeddings/hm` holds them) or else on the demo shop."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            """\
from recsys.store.data_io import read_catalog, read_interactions
from recsys.evaluation.evaluate import EvalData, evaluate
from recsys.models.ranker import RankerConfig
from recsys.evaluation.splits import split

hm = DATASETS / "hm"
if hm.is_dir():
    interactions = read_interactions(hm / "transactions.csv")
    cutoff = 1593561600.0  # 2020-07-01
    train, test = split(interactions, "temporal", cutoff=cutoff)
    style = None
    if (REPO / "var" / "embeddings" / "hm" / "encoder.json").exists():
        from recsys.shop.catalog import catalog_style_space
        style = catalog_style_space(hm, REPO / "var" / "embeddings" / "hm")
    data = EvalData(train, test, style, list(read_catalog(hm)["item_id"]), "temporal")
    models = ["repurchase", "popularity", "cf"] + (["style"] if style else []) + ["hybrid"]
    k = 12
else:
    from demo_setup import demo_shop
    from recsys.shop.catalog import catalog_style_space
    catalog_dir, _ = demo_shop(WORK)
    from recsys.shop.shoppers import DAY, START
    interactions = read_interactions(catalog_dir / "interactions.csv")
    train, test = split(interactions, "temporal", cutoff=START + 100 * DAY)
    style = catalog_style_space(catalog_dir, WORK / "store")
    data = EvalData(train, test, style, list(style.ids), "temporal")
    k, models = 10, ["repurchase", "popularity", "cf", "style", "hybrid"]
# the learned feed trains on windows carved from train only; a few windows keep the walkthrough quick
result = evaluate(data, k, models, ranker_config=RankerConfig(windows=6))
print(result.data)
wanted = ("recall", "ndcg", "map", "cold")
{m: {name: v for name, v in r.items() if name.startswith(wanted)} for m, r in result.models.items()}"""
        ),
        new_markdown_cell("## Metric vs K, and what the feed's learned ranker relies on (feature gain)"),
        new_code_cell(
            """\
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
for model, curve in result.curves.items():
    ks = sorted(curve)
    left.plot(ks, [curve[x][f"recall@{x}"] for x in ks], marker="o", label=model)
left.set(xlabel="K", ylabel="recall@K", title="recall vs K")
left.legend()
gains = result.ranker.get("hybrid", {}).get("feature_gain", {})
top = list(gains.items())[:12][::-1]
right.barh([f for f, _ in top], [g for _, g in top])
right.set(xlabel="total gain", title="hybrid ranker: top features")
plt.tight_layout()
assert result.models["hybrid"][f"ndcg@{k}"] > 0"""
        ),
    ],
    "03_render.ipynb": [
        new_markdown_cell(
            "# 03 · Re-rendering products in palette styles\n\nThe gatys renderer with the product-safe defaults "
            "(background and silhouette kept, the product's colours kept), at a small size so the walkthrough is "
            "quick on a CPU. `stylerec render` does the same at 384 px with a render cache."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            """\
from recsys.shop.demo import make_demo_catalog, make_demo_styles
from transfer.images import load_image
from transfer.render import GatysRenderer, RenderOptions, finish
from transfer.render_cache import load_style

catalog_dir = WORK / "demo"
make_demo_catalog(catalog_dir)
styles = make_demo_styles(WORK / "styles", size=192)
products = [catalog_dir / "images" / f"{item}.jpg" for item in ("D0010", "D0100")]
renderer = GatysRenderer("cpu")
options = RenderOptions(size=96, steps=10, scales=1)
sheet = []
for product_path in products:
    product = load_image(product_path)
    row = [product.rgb]
    for style_path in styles[:2]:
        rendered = renderer.render(product, load_style(style_path), options).image
        row.append(np.asarray(finish(product, rendered, options)))
    sheet.append(row)"""
        ),
        new_markdown_cell("## Contact sheet: original, then each style"),
        new_code_cell(
            """\
fig, axes = plt.subplots(len(sheet), len(sheet[0]), figsize=(2 * len(sheet[0]), 3 * len(sheet)))
for r, row in enumerate(sheet):
    for c, image in enumerate(row):
        axes[r, c].imshow(image)
        axes[r, c].axis("off")
        axes[r, c].set_title("original" if c == 0 else styles[c - 1].stem, fontsize=8)
plt.tight_layout()
# the studio background (top-left corner) is untouched in every render
assert all(np.array_equal(row[c][:10, :10], row[0][:10, :10]) for row in sheet for c in range(1, len(row)))"""
        ),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        notebook = new_notebook(cells=cells)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
