"""The facets on the demo shop (issue 22): how many of the 12 nearest products are striped, for striped clothing
as queries and for the `bold-stripes` palette style, by pattern weight; and what filtering a shopper's bought
items costs (the style-first re-ordering keeps the rest).

    python benchmarks/facet_demo.py CATALOG_DIR EMBEDDINGS_DIR

CATALOG_DIR holds the demo's items.csv and interactions.csv (`stylerec demo`), EMBEDDINGS_DIR its (faceted)
embedding store. The palette style is drawn by `recsys.shop.demo.make_demo_styles` and embedded by the store's encoder.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import pandas as pd

from recsys.shop.catalog import load_encoder
from recsys.shop.demo import make_demo_styles, read_catalog
from transfer.facets import pattern_dim_of, weigh_query
from transfer.store import EmbeddingStore

WEIGHTS = (0.0, 0.5, 0.6, 0.67, 0.75, 0.8, 0.9, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("catalog")
    parser.add_argument("embeddings")
    parser.add_argument("--shoppers", type=int, default=3)
    args = parser.parse_args()
    store = EmbeddingStore.load(args.embeddings)
    split = pattern_dim_of(store.model_id)
    if split is None:
        raise SystemExit(f"{args.embeddings}: {store.model_id} has no facets")
    catalog = read_catalog(f"{args.catalog}/items.csv")
    bought = pd.read_csv(f"{args.catalog}/interactions.csv", dtype=str)
    ids, vectors = store.ids, store.vectors
    pattern = np.array([catalog[i]["pattern"] for i in ids])
    clothing = ("tshirt", "dress", "trousers")
    queries = [n for n, i in enumerate(ids) if pattern[n] == "stripes" and catalog[i]["category"] in clothing]
    shoppers = sorted(bought["user_id"].unique())[: args.shoppers]
    owned = [set(bought[bought["user_id"] == u]["item_id"]) for u in shoppers]
    with tempfile.TemporaryDirectory() as tmp:
        style = next(p for p in make_demo_styles(tmp) if p.stem == "bold-stripes")
        bold = load_encoder(args.embeddings).embed_image(style)
    print(f"{store.model_id}: {len(ids)} products, {len(queries)} striped clothing queries, {len(shoppers)} shoppers")
    print("| pattern weight | striped of 12, mean (min) | bold-stripes | most a shopper's filter costs |")
    print("|---|---|---|---|")
    for w in WEIGHTS:
        counts, costs = [], []
        for n in queries:
            scores = vectors @ weigh_query(vectors[n], split, (w, 1 - w))
            scores[n] = -np.inf
            order = np.argsort(-scores)
            alone = int((pattern[order[:12]] == "stripes").sum())
            counts.append(alone)
            for mine in owned:
                kept = [j for j in order if ids[j] not in mine][:12]
                costs.append(alone - int((pattern[kept] == "stripes").sum()))
        palette = np.argsort(-(vectors @ weigh_query(bold, split, (w, 1 - w))))[:12]
        striped = int((pattern[palette] == "stripes").sum())
        print(f"| {w:.2f} | {np.mean(counts):.1f} ({min(counts)}) | {striped} | {max(costs)} |")


if __name__ == "__main__":
    main()
