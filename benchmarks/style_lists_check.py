"""Do the batch's style lists change any answer? Feeds and same-style lists of a shop with the nearest-item lists
its tables version holds (`StyleSpace.neighbours`), then with them removed (every query searched in the index),
for the same shoppers and items.

    python benchmarks/style_lists_check.py --db shop.db --models models --embeddings STORE --index DIR \\
        [--shoppers 400] [--heavy 20] [--items 300]

Prints JSON: how many feeds are identical (items, scores, reasons, CF and style values), how many same-style lists
have the same items, and the largest score difference between them.
"""

from __future__ import annotations

import argparse
import json
import random

from serving import add_shop_flags, one_compute_thread, shop_paths

one_compute_thread()  # before numpy and FAISS load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shop_flags(parser)
    parser.add_argument("--shoppers", type=int, default=400, help="random shoppers")
    parser.add_argument("--heavy", type=int, default=20, help="and the N (<= 20) shoppers with the most events")
    parser.add_argument("--items", type=int, default=300, help="random articles' same-style lists")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    from worker_open import _shoppers

    from recsys.shop.catalog import open_catalog

    paths = shop_paths(args)
    catalog = open_catalog(paths, build_missing=False)
    style = catalog.recommender.style
    if style is None or style.neighbours is None:
        raise SystemExit("this shop's worker reads no style lists (no style vectors, or a tables version without them)")
    rng = random.Random(args.seed)
    users = rng.sample(catalog.store.shoppers(), args.shoppers) + _shoppers(paths.db, 0, args.seed)[1][: args.heavy]
    items = rng.sample(style.ids, args.items)

    def answers() -> tuple[dict, dict]:
        catalog.feeds.clear()
        feeds = {u: [(r.item_id, r.score, r.reason, r.cf, r.style) for r in catalog.feed(u, 12)] for u in users}
        alike = {i: [(r.item_id, r.style) for r in catalog.similar(i, 10)] for i in items}
        return feeds, alike

    listed = answers()
    lists, style.neighbours = style.neighbours, None
    searched = answers()
    style.neighbours = lists
    catalog.close()
    feeds, alike = listed[0], listed[1]
    same_items = [i for i in items if [x for x, _ in alike[i]] == [x for x, _ in searched[1][i]]]
    differences = [abs(a[1] - b[1]) for i in same_items for a, b in zip(alike[i], searched[1][i], strict=True)]
    print(json.dumps({
        "feeds": len(users),
        "identical_feeds": sum(feeds[u] == searched[0][u] for u in users),
        "feeds_with_a_style_reason": sum(any(r[2].startswith("same style as") for r in feeds[u]) for u in users),
        "same_style_lists": len(items),
        "same_items": len(same_items),
        "largest_score_difference": max(differences, default=0.0),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
