"""Offline evaluation: the classic baselines, the project's models and the learned feed on one train/test split.

Every model of `recsys.models.base` is fitted on one snapshot of the training data and ranks for every test shopper
(shoppers a model cannot personalise for get what it gives a stranger). The feed's ranker learns on windows carved
from the training data only, never from the test window. Each metric comes with a 95% bootstrap interval over
shoppers, the feed is compared with the best baseline and with itself without style by a paired bootstrap, and
cold items (never bought in training) are measured beside a random pick among the shopper's product types.
`keep_new` drops, seeded, all but that share of the test window's new articles from the catalog, so that
new-item results are measured on a realistic pool (a dev catalog holds every article that will sell).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from common.errors import BadInput
from recsys.candidates import ItemInfo, Shopper, Snapshot
from recsys.evaluation import metrics
from recsys.models.base import BASELINES, MODELS, HybridModel, make_models
from recsys.models.cf import CFConfig
from recsys.models.hybrid import StyleSpace
from recsys.models.ranker import RankerConfig, training_folds

log = logging.getLogger(__name__)

SOURCE_DEPTHS = (20, 50, 100)


@dataclass
class EvalData:
    """A split with what the models need: the catalog (titles, product types, groups) and its style vectors."""

    train: pd.DataFrame
    test: pd.DataFrame
    style: StyleSpace | None = None
    catalog_items: Sequence[str] = ()
    split: str = "random"
    seed: int = 42
    catalog: pd.DataFrame | None = None
    keep_new: float | None = None  # share of the test window's new articles kept in the catalog (None: all)

    @property
    def universe(self) -> set[str]:
        """Every item a model may recommend: the catalog plus everything bought in training."""
        return set(self.catalog_items) | set(self.train["item_id"])


@dataclass
class EvalResult:
    k: int
    models: dict[str, dict[str, float | list[float] | None]]
    curves: dict[str, dict[int, dict[str, float]]]  # model -> K -> metrics
    comparisons: dict[str, dict]
    cold: dict[str, float | int | None]
    sources: dict[str, dict[str, float]]
    ranker: dict
    cold_warm: dict[str, dict[str, float | None]]
    data: dict[str, int | float]
    skipped: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "k": self.k,
            "models": self.models,
            "comparisons": self.comparisons,
            "cold": self.cold,
            "sources": self.sources,
            "hybrid": self.ranker,
            "data": self.data,
            "skipped": self.skipped,
        }


def _relevant(test: pd.DataFrame) -> dict[str, set[str]]:
    return {user: set(items) for user, items in test.groupby("user_id")["item_id"]}


def restricted_catalog(data: EvalData) -> tuple[set[str], StyleSpace | None, int]:
    """(items the models may recommend, style vectors of those, new articles removed) under `keep_new`."""
    universe = data.universe
    style = data.style
    if data.keep_new is None:
        return universe, style, 0
    new = sorted(set(data.test["item_id"]) - set(data.train["item_id"]))
    rng = np.random.default_rng(data.seed)
    kept = set(rng.choice(new, round(len(new) * data.keep_new), replace=False)) if new else set()
    removed = set(new) - kept
    universe = universe - removed
    if style is not None:
        ids = [i for i in style.ids if i not in removed]
        style = StyleSpace(ids, np.stack([style.vector(i) for i in ids]), style.model_id) if ids else None
    return universe, style, len(removed)


def evaluate(
    data: EvalData,
    k: int = 10,
    models: Sequence[str] = MODELS,
    cf_config: CFConfig | None = None,
    ranker_config: RankerConfig | None = None,
    progress: bool = False,
) -> EvalResult:
    """Fit each model on `data.train`, rank for every test user, and measure at `k` (and other K for curves)."""
    make_models(models, RankerConfig(), data.split)  # unknown names fail before any work
    if len(data.train) == 0 or len(data.test) == 0:
        raise BadInput(f"the split left {len(data.train)} training and {len(data.test)} test interactions")
    temporal = data.split == "temporal"
    ranker_config = ranker_config or RankerConfig()
    if not temporal:  # a random split's protocol removes what the shopper rated in training
        ranker_config = ranker_config.model_copy(update={"allow_bought": False})
    if data.keep_new is not None:  # training windows see new articles in the same share as the test catalog
        ranker_config = ranker_config.model_copy(update={"window_new_share": data.keep_new})
    skipped: dict[str, str] = {}
    universe, style, removed = restricted_catalog(data)
    if style is None and "style" in models:
        skipped["style"] = "no style vectors: pass --catalog with product images"
    models = [m for m in models if m not in skipped]

    items = ItemInfo.from_data(data.catalog, data.train)
    snapshot = Snapshot.build(data.train, items, style, cf_config=cf_config, allowed=universe)
    folds = None
    if any(m.startswith("hybrid") for m in models):
        folds = training_folds(
            data.train, items, style, ranker_config, cf_config, universe, "temporal" if temporal else "random"
        )
    fitted = make_models(models, ranker_config, "temporal" if temporal else "random", folds)
    for model in fitted.values():
        model.fit(snapshot, data.train)

    relevant = _relevant(data.test)
    max_k = max(k, 20)
    lists: dict[str, dict[str, list[str]]] = {}
    for (
        name,
        model,
    ) in fitted.items():  # the same objects the service calls (`recsys.models.base`, `recsys.models.feeds`)
        users = tqdm(relevant, desc=f"ranking test users: {name}", disable=not progress)
        lists[name] = model.recommend_many(users, max_k)

    cold_items = set(data.test["item_id"]) - set(data.train["item_id"])
    warm_relevant = {u: s - cold_items for u, s in relevant.items()}
    vectors = {i: style.vector(i) for i in style.ids} if style is not None else {}
    popularity = snapshot.popularity["all"]
    per_user = {}
    results, curves, cold_warm = {}, {}, {}
    for model, recs in lists.items():
        per_user[model] = metrics.per_user(recs, relevant, k)
        row: dict[str, float | list[float] | None] = {}
        for name, values in per_user[model].items():
            row[name] = round(float(values.mean()), 6)
            row[f"{name}_ci"] = [round(v, 6) for v in metrics.bootstrap_ci(values, seed=data.seed)]
        row["coverage"] = round(metrics.coverage(recs, len(universe), k), 6)
        cold = metrics.cold_recall(recs, relevant, cold_items, k)
        row[f"cold_recall@{k}"] = None if cold is None else round(cold, 6)
        row["popularity_bias"] = round(metrics.popularity_bias(recs, popularity, k), 6)
        ils = metrics.intra_list_similarity(recs, vectors, k) if vectors else None
        row["intra_list_similarity"] = None if ils is None else round(ils, 6)
        results[model] = row
        curves[model] = {kk: metrics.ranking_metrics(recs, relevant, kk) for kk in sorted({1, 5, 10, k, 20})}
        cold_warm[model] = {"cold": cold, "warm": metrics.ranking_metrics(recs, warm_relevant, k)[f"recall@{k}"]}

    comparisons = _comparisons(per_user, results, k, data.seed)
    cold = _cold_report(data, snapshot, universe, relevant, cold_items, k, lists)
    sources = source_recall(snapshot, relevant, ranker_config) if "hybrid" in fitted else {}
    ranker = {}
    for name in ("hybrid", "hybrid-nostyle"):
        model = fitted.get(name)
        if isinstance(model, HybridModel):
            ranker[name] = {
                "learned": model.fallback is None,
                "objective": model.config.objective,
                "fallback": model.fallback,
                "training": model.ranker.training,
                "windows": [[pd.Timestamp(t, unit="s").isoformat() for t in w] for w in model.ranker.windows],
                "feature_gain": {f: round(g, 3) for f, g in model.ranker.importance().items()},
            }
    data_summary = {
        "train_interactions": len(data.train),
        "test_interactions": len(data.test),
        "train_users": int(data.train["user_id"].nunique()),
        "test_users": len(relevant),
        "test_users_unknown_in_train": len(set(relevant) - set(data.train["user_id"])),
        "items": len(universe),
        "items_with_style_vectors": len(vectors),
        "cold_test_items": len(cold_items),
        "new_items_removed_from_catalog": removed,
    }
    return EvalResult(k, results, curves, comparisons, cold, sources, ranker, cold_warm, data_summary, skipped)


def _comparisons(per_user: dict, results: dict, k: int, seed: int) -> dict[str, dict]:
    """Paired bootstraps of the feed against the best baseline (by MAP@k) and against the feed without style."""
    out: dict[str, dict] = {}
    baselines = [m for m in BASELINES if m in results]
    pairs = []
    if "hybrid" in results and baselines:
        best = max(baselines, key=lambda m: (results[m][f"map@{k}"], results[m][f"ndcg@{k}"]))
        pairs.append(("hybrid", best))
    if "hybrid" in results and "hybrid-nostyle" in results:
        pairs.append(("hybrid", "hybrid-nostyle"))
    if "hybrid" in results and "style" in results:
        pairs.append(("hybrid", "style"))
    for a, b in pairs:
        out[f"{a} vs {b}"] = {
            name: metrics.paired_bootstrap(per_user[a][name], per_user[b][name], seed=seed)
            for name in (f"map@{k}", f"ndcg@{k}", f"recall@{k}")
        }
    return out


def _cold_report(data, snapshot, universe, relevant, cold_items, k, lists) -> dict:
    """The never-bought pool's base rate and a random pick among each shopper's product types (cold recall)."""
    pool = sorted(i for i in universe if i not in snapshot.popularity["all"])
    bought = set(data.test["item_id"])
    base_rate = len([i for i in pool if i in bought]) / len(pool) if pool else None
    kinds = snapshot.items.kind
    by_kind: dict[str, list[str]] = {}
    for item in pool:
        by_kind.setdefault(kinds.get(item, ""), []).append(item)
    rng = np.random.default_rng(data.seed)
    random_lists = {}
    for user in relevant:
        shopper = Shopper(snapshot, user)
        own = {kinds[i] for i in shopper.items if i in kinds}
        choices = [i for kind in sorted(own) for i in by_kind.get(kind, [])] or pool
        random_lists[user] = list(rng.choice(choices, min(k, len(choices)), replace=False)) if choices else []
    out: dict[str, float | int | None] = {
        "never_bought_pool": len(pool),
        "never_bought_pool_base_rate": None if base_rate is None else round(base_rate, 6),
        f"random_own_types_cold_recall@{k}": metrics.cold_recall(random_lists, relevant, cold_items, k),
    }
    for model, recs in lists.items():
        out[f"{model}_cold_recall@{k}"] = metrics.cold_recall(recs, relevant, cold_items, k)
    return out


def source_recall(
    snapshot: Snapshot, relevant: dict[str, set[str]], config: RankerConfig, depths: Sequence[int] = SOURCE_DEPTHS
) -> dict[str, dict[str, float]]:
    """Each candidate source's recall@N of the held-out purchases, and the union's (the ranker's ceiling); `new@N`:
    the share of a source's candidates never bought before (how many new articles it brings in)."""
    sources = RankerConfig(use_style=True).active_sources() if snapshot.style is not None else config.active_sources()
    out: dict[str, dict[str, float]] = {s.name: {} for s in sources}
    out["union"] = {}
    for n in depths:
        found = {s.name: {} for s in sources}
        union: dict[str, list[str]] = {}
        for user in relevant:
            shopper = Shopper(snapshot, user)
            union[user] = []
            for source in sources:
                items = [c.item_id for c in source.generate(snapshot, shopper, n)]
                found[source.name][user] = items
                union[user] += items
        bought = snapshot.popularity["all"]
        for name, lists in found.items():
            out[name][f"recall@{n}"] = round(metrics.ranking_metrics(lists, relevant, n)[f"recall@{n}"], 6)
            proposed = [i for items in lists.values() for i in items]
            out[name][f"new@{n}"] = (
                round(sum(i not in bought for i in proposed) / len(proposed), 4) if proposed else 0.0
            )
        hits = [len(set(union[u]) & items) / len(items) for u, items in relevant.items() if items]
        out["union"][f"recall@{n}"] = round(float(np.mean(hits)), 6) if hits else 0.0
        out["union"][f"size@{n}"] = round(float(np.mean([len(set(v)) for v in union.values()])), 1)
    return out


# -- report -------------------------------------------------------------------------------------------------
def write_report(result: EvalResult, folder: str | Path, title: str, command: str = "") -> Path:
    """A markdown report with PNG plots (metric vs K, cold vs warm, feature gain) and results.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    k = result.k
    (folder / "results.json").write_text(json.dumps(result.as_json(), indent=2))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for model, curve in result.curves.items():
        ks = sorted(curve)
        for ax, name in zip(axes, ("recall", "ndcg"), strict=False):
            ax.plot(ks, [curve[x][f"{name}@{x}"] for x in ks], marker="o", label=model)
            ax.set(xlabel="K", ylabel=f"{name}@K", title=f"{name} vs K")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(folder / "metric_vs_k.png", dpi=100)
    plt.close(fig)
    plots = ["metric_vs_k.png"]

    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(result.cold_warm)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [result.cold_warm[m]["warm"] or 0 for m in names], 0.4, label="warm items")
    ax.bar(x + 0.2, [result.cold_warm[m]["cold"] or 0 for m in names], 0.4, label="cold items (never bought)")
    ax.set(xticks=x, ylabel=f"recall@{k}", title="cold vs warm test items")
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "cold_vs_warm.png", dpi=100)
    plt.close(fig)
    plots.append("cold_vs_warm.png")

    gains = (result.ranker.get("hybrid") or {}).get("feature_gain") or {}
    if gains:
        top = list(gains.items())[:20][::-1]
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
        ax.barh([f for f, _ in top], [g for _, g in top])
        ax.set(xlabel="total gain", title="hybrid ranker: feature importance")
        fig.tight_layout()
        fig.savefig(folder / "feature_gain.png", dpi=100)
        plt.close(fig)
        plots.append("feature_gain.png")

    lines = [f"# {title}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += ["## Data", ""] + [f"- {name.replace('_', ' ')}: {value:,}" for name, value in result.data.items()]
    shown = ["precision", "recall", "ndcg", "map", "hitrate"]
    lines += ["", f"## Models at K={k} (95% bootstrap intervals over shoppers)", ""]
    lines += ["| model | " + " | ".join(f"{m}@{k}" for m in shown) + f" | coverage | cold recall@{k} |"]
    lines += ["|---|" + "---|" * (len(shown) + 2)]
    for model, row in result.models.items():
        cells = [f"{row[f'{m}@{k}']:.4f} [{row[f'{m}@{k}_ci'][0]:.4f}, {row[f'{m}@{k}_ci'][1]:.4f}]" for m in shown]
        cold = row[f"cold_recall@{k}"]
        cells += [f"{row['coverage']:.4g}", "n/a" if cold is None else f"{cold:.4f}"]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", "With a few hundred test shoppers these intervals are wide: read differences with them.", ""]
    if result.comparisons:
        lines += [
            "## Paired bootstrap (same shoppers)",
            "",
            "| comparison | metric | difference | 95% CI | P(not better) |",
        ]
        lines += ["|---|---|---|---|---|"]
        for pair, by_metric in result.comparisons.items():
            for name, c in by_metric.items():
                lines.append(
                    f"| {pair} | {name} | {c['difference']:+.4f} | [{c['ci'][0]:+.4f}, {c['ci'][1]:+.4f}] "
                    f"| {c['p_not_better']:.3f} |"
                )
        lines.append("")
    if result.cold:
        lines += ["## Cold items (never bought in training)", ""]
        lines += [f"- {name.replace('_', ' ')}: {value}" for name, value in result.cold.items()]
        lines.append("")
    if result.sources:
        depths = [key for key in next(iter(result.sources.values())) if key.startswith(("recall", "new"))]
        lines += ["## Candidate sources: recall of the test purchases; new@N: share never bought before", ""]
        lines += ["| source | " + " | ".join(depths) + " |", "|---|" + "---|" * len(depths)]
        for name, row in result.sources.items():
            lines.append(f"| {name} | " + " | ".join(f"{row[d]:.4f}" if d in row else "" for d in depths) + " |")
        lines.append("")
    for name, info in result.ranker.items():
        how = f"learned (LightGBM, {info['objective']})" if info["learned"] else f"fallback: {info['fallback']}"
        lines += [f"- {name}: {how}; training {info['training']}"]
    for model, reason in result.skipped.items():
        lines += ["", f"- {model} skipped: {reason}"]
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    (folder / "report.md").write_text("\n".join(lines))
    return folder / "report.md"
