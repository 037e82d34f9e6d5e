"""Train-only validation of the feed ranker's settings (issue 13): windows inside the training data, never a test
window.

The training windows of `recsys.models.ranker.training_folds` are carved from the purchases before `--cutoff` (28 days
each, 14 days apart). Each of the latest `--val` non-overlapping windows is ranked by a ranker trained on the
windows that end before it starts (rolling origin) and scored as `stylerec evaluate` scores a test window: MAP@12
and NDCG@12 over every shopper who bought in it, next to the repurchase rule on the same snapshot. Candidates and
features of every window are computed once; each variant (see `VARIANTS`) is a config change or a set of
features left out.

    python benchmarks/feed_validation.py --cutoff 2020-06-10 --variants base,extra [--keep-new 0.15]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.candidates import ItemInfo, Shopper, generate, repurchase_order
from recsys.evaluation import metrics
from recsys.models.hybrid import DAY
from recsys.models.ranker import (
    EXTRA_FEATURES,
    STYLE_FEATURES,
    Feed,
    LearnedRanker,
    RankerConfig,
    feature_names,
    features,
    train_booster,
    window_shoppers,
)
from recsys.shop.catalog import catalog_style_space
from recsys.store.data_io import read_catalog, read_interactions

REPO = Path(__file__).resolve().parents[1]
K = 12

# name -> (RankerConfig overrides, features left out)
EXTRA = {"repurchase_features": True}
SLOW = {"rounds": 300, "learning_rate": 0.03}
VARIANTS: dict[str, tuple[dict, tuple[str, ...]]] = {
    "base": ({}, ()),  # the product's defaults
    "nostyle": ({"use_style": False}, ()),
    "no-style-features": ({}, STYLE_FEATURES),
    "extra": (EXTRA, ()),
    "extra-nostyle": ({**EXTRA, "use_style": False}, ()),
    "extra-no-style-features": (EXTRA, STYLE_FEATURES),
    "extra-lambdarank": ({**EXTRA, "objective": "lambdarank"}, ()),
    "extra-rounds-200": ({**EXTRA, "rounds": 200}, ()),
    "extra-slow": ({**EXTRA, **SLOW}, ()),
    "extra-leaves-15": ({**EXTRA, "leaves": 15}, ()),
    "extra-min-leaf-50": ({**EXTRA, "min_data_in_leaf": 50}, ()),
    "extra-min-leaf-200": ({**EXTRA, "min_data_in_leaf": 200}, ()),
    "extra-windows-20": ({**EXTRA, "windows": 20}, ()),
    "extra-windows-40": ({**EXTRA, "windows": 40}, ()),
    "extra-candidates-60": ({**EXTRA, "candidates": 60}, ()),
    "extra-window-42d": ({**EXTRA, "window_days": 42.0}, ()),
    "slow": (SLOW, ()),
    "slow-nostyle": ({**SLOW, "use_style": False}, ()),
}
for _feature in EXTRA_FEATURES:
    VARIANTS[f"extra-no-{_feature}"] = (EXTRA, (_feature,))


def window_data(snapshot, bought: pd.DataFrame, config: RankerConfig) -> dict:
    """Every shopper of the window: candidate pool, feature rows (all features), labels."""
    relevant = bought.groupby("user_id")["item_id"].agg(set).to_dict()
    sources = config.active_sources()
    rows = {}
    for user in sorted(relevant):
        shopper = Shopper(snapshot, user)
        pool = generate(snapshot, shopper, sources, config.candidates)
        x = features(snapshot, shopper, pool, config) if pool.items else None
        y = np.array([item in relevant[user] for item in pool.items], float)
        rule = repurchase_order(snapshot, shopper, K)
        rows[user] = (pool, x, y, rule)
    return {"relevant": relevant, "rows": rows}


def training_rows(data: dict, config: RankerConfig) -> tuple[list, list, list[int]]:
    """As `LearnedRanker._examples`: shoppers with a hit and a miss among candidates, sampled to the cap."""
    xs, ys, groups = [], [], []
    for user in window_shoppers(data["relevant"], config):
        _, x, y, _ = data["rows"][user]
        if 0 < y.sum() < len(y):
            xs.append(x)
            ys.append(y)
            groups.append(len(y))
    return xs, ys, groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/hm/transactions.csv"))
    parser.add_argument("--catalog", default=str(REPO.parent / "shared/datasets/hm"))
    parser.add_argument("--embeddings", default="/work/shared-var/embeddings-v2/hm")
    parser.add_argument("--cutoff", default="2020-06-10", help="the test window's start: only data before it is used")
    parser.add_argument("--keep-new", type=float, default=None, help="as stylerec evaluate --keep-new")
    parser.add_argument("--val", type=int, default=4, help="validation windows (the latest non-overlapping ones)")
    parser.add_argument("--variants", default="base,extra")
    parser.add_argument("--seeds", default="42", help="LightGBM seeds; each variant's figures are their mean")
    parser.add_argument("--folds", type=int, default=46, help="windows carved (enough for every variant)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()

    from recsys.models.ranker import training_folds

    started = time.time()
    interactions = read_interactions(args.data)
    cutoff = pd.Timestamp(args.cutoff, tz="UTC").timestamp()
    train = interactions[interactions["timestamp"] < cutoff]
    catalog = read_catalog(args.catalog)
    style = catalog_style_space(args.catalog, args.embeddings, catalog)
    items = ItemInfo.from_data(catalog, train)
    universe = set(catalog["item_id"]) | set(train["item_id"])
    base = RankerConfig()
    if args.keep_new is not None:
        base = base.model_copy(update={"window_new_share": args.keep_new})
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    seeds = [int(v) for v in args.seeds.split(",")]
    lengths = sorted({base.model_copy(update=VARIANTS[n][0]).window_days for n in names})
    folds_by_length = {
        days: training_folds(
            train, items, style, base.model_copy(update={"windows": args.folds, "window_days": days}), None, universe
        )
        for days in lengths
    }
    print(f"{args.folds} windows built in {time.time() - started:.0f} s", flush=True)

    cache: dict[tuple, list[dict]] = {}
    # validation windows: the latest non-overlapping 28-day ones
    val_folds = list(range(0, round(28 / base.window_step_days) * args.val, round(28 / base.window_step_days)))
    val_data: dict[tuple, list[dict]] = {}
    results: dict[str, dict] = {}
    for name in names:
        overrides, dropped = VARIANTS[name]
        config = base.model_copy(update=overrides)
        folds = folds_by_length[config.window_days]
        full = config.model_copy(update=EXTRA)  # every feature is computed once; variants leave some out
        if not config.repurchase_features:
            dropped = (*dropped, *EXTRA_FEATURES)
        key = (config.use_style, config.candidates, config.window_days)
        if key not in cache:
            t0 = time.time()
            cache[key] = [window_data(s, b, full) for s, b in folds]
            print(f"features {key} in {time.time() - t0:.0f} s", flush=True)
        data = cache[key]
        if key[:2] not in val_data:
            val_data[key[:2]] = [
                window_data(*folds_by_length[28.0][v], full) if config.window_days != 28.0 else data[v]
                for v in val_folds
            ]
        all_names = feature_names(full)
        cols = [n for n, f in enumerate(all_names) if f not in dropped]
        kept = [all_names[n] for n in cols]
        per_window = []
        for v, val in zip(val_folds, val_data[key[:2]], strict=True):
            snapshot_v = folds_by_length[28.0][v][0]
            start = snapshot_v.now
            # the ranker as the product would train it at the window's start: the `windows` latest before it
            earlier = [j for j, (s, _) in enumerate(folds) if s.now + config.window_days * DAY <= start + 1.0]
            xs, ys, groups = [], [], []
            for j in earlier[: config.windows]:
                x, y, g = training_rows(data[j], config)
                xs += x
                ys += y
                groups += g
            relevant = val["relevant"]
            cold = {i for items in relevant.values() for i in items} - set(snapshot_v.popularity["all"])
            rule = {user: row[3] for user, row in val["rows"].items()}
            by_seed = []
            for seed in seeds:
                seeded = config.model_copy(update={"seed": seed})
                booster = train_booster(np.vstack(xs)[:, cols], np.concatenate(ys), groups, kept, seeded)
                ranker = LearnedRanker(seeded)
                ranker.booster = booster
                feed = Feed(snapshot_v, ranker)
                recs = {}
                for user, (pool, x, _, _) in val["rows"].items():
                    if x is None:
                        recs[user] = []
                        continue
                    order = np.argsort(-booster.predict(x[:, cols], num_threads=1), kind="stable")
                    recs[user] = [pool.items[n] for n in feed._with_new_items(order, pool, K)]
                found = metrics.ranking_metrics(recs, relevant, K)
                found["cold"] = metrics.cold_recall(recs, relevant, cold, K) or 0.0
                by_seed.append(found)
            ours = {key: float(np.mean([f[key] for f in by_seed])) for key in by_seed[0]}
            base_rule = metrics.ranking_metrics(rule, relevant, K)
            per_window.append(
                {
                    "window_start": pd.Timestamp(start, unit="s").date().isoformat(),
                    "shoppers": len(val["relevant"]),
                    "training_shoppers": len(groups),
                    "map": ours[f"map@{K}"],
                    "ndcg": ours[f"ndcg@{K}"],
                    "cold_recall": ours["cold"],
                    "map_by_seed": [f[f"map@{K}"] for f in by_seed],
                    "repurchase_map": base_rule[f"map@{K}"],
                    "repurchase_ndcg": base_rule[f"ndcg@{K}"],
                }
            )
        scalars = [key for key in per_window[0] if key not in ("window_start", "map_by_seed")]
        mean = {key: float(np.mean([w[key] for w in per_window])) for key in scalars}
        mean["map_by_seed"] = [float(m) for m in np.mean([w["map_by_seed"] for w in per_window], axis=0)]
        mean["map_ratio"] = mean["map"] / mean["repurchase_map"]
        mean["ndcg_ratio"] = mean["ndcg"] / mean["repurchase_ndcg"]
        results[name] = {"mean": mean, "windows": per_window}
        print(
            f"{name:24s} MAP {mean['map']:.4f} ({mean['map_ratio']:.3f}x)  NDCG {mean['ndcg']:.4f} "
            f"({mean['ndcg_ratio']:.3f}x)  cold {mean['cold_recall']:.4f}  seeds "
            + " ".join(f"{m:.4f}" for m in mean["map_by_seed"])
            + "  | per window MAP "
            + " ".join(f"{w['map']:.4f}/{w['repurchase_map']:.4f}" for w in per_window),
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
