"""Offline evaluation: popularity, CF-only, style-only and hybrid models compared on one train/test split.

The hybrid's alpha (and popularity weight) are chosen on validation splits carved from the training data the
same way as the test split (two folds), never on the test set. Every model answers every test user: shoppers a model
cannot personalise for (unknown to CF, no style profile) get the popularity ranking.
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

from recsys import metrics
from recsys.cf import CFConfig, CollaborativeFilter
from recsys.hybrid import HybridConfig, HybridRanker, Popularity, StyleSpace
from recsys.splits import validation_split

log = logging.getLogger(__name__)

MODELS = ("popularity", "cf", "style", "hybrid")
ALPHAS = tuple(round(float(a), 2) for a in np.linspace(0, 1, 11))
POPULARITY_WEIGHTS = (0.0, 0.5, 1.0, 2.0)


@dataclass
class EvalData:
    """A split with what the models need: the catalog's categories and its style vectors (optional)."""

    train: pd.DataFrame
    test: pd.DataFrame
    style: StyleSpace | None = None
    catalog_items: Sequence[str] = ()
    split: str = "random"
    seed: int = 42

    @property
    def universe(self) -> set[str]:
        """Every item a model may recommend: the catalog plus everything bought in training."""
        return set(self.catalog_items) | set(self.train["item_id"])


@dataclass
class EvalResult:
    k: int
    models: dict[str, dict[str, float | None]]
    curves: dict[str, dict[int, dict[str, float]]]  # model -> K -> metrics
    alpha_curve: dict[float, dict[str, float]]  # test metrics by alpha (for the plot; alpha chosen on validation)
    validation: dict[str, float]  # "alpha/popularity_weight" -> validation ndcg@K
    chosen: dict[str, float]
    cold_warm: dict[str, dict[str, float | None]]
    data: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "k": self.k,
            "models": self.models,
            "hybrid": {"chosen_on_validation": self.chosen, "validation_ndcg": self.validation},
            "data": self.data,
            "skipped": self.skipped,
        }


def _histories(train: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {user: frame for user, frame in train.groupby("user_id", sort=False)}


def _relevant(test: pd.DataFrame) -> dict[str, set[str]]:
    return {user: set(items) for user, items in test.groupby("user_id")["item_id"]}


class _Models:
    """The fitted models of one training set, each able to rank for a user."""

    def __init__(self, train: pd.DataFrame, style: StyleSpace | None, cf_config: CFConfig, hybrid: HybridConfig):
        self.train = train
        self.histories = _histories(train)
        self.popularity = Popularity(train, hybrid.popularity_half_life_days)
        self.cf = CollaborativeFilter(cf_config).fit(train)
        self.hybrid_config = hybrid
        self.hybrid = HybridRanker(self.cf, style, self.popularity, config=hybrid)
        self.style_ranker = HybridRanker(None, style, self.popularity, config=hybrid) if style is not None else None

    def history(self, user: str) -> pd.DataFrame | None:
        return self.histories.get(user)

    def popular(self, user: str, k: int) -> list[str]:
        seen = set(self.history(user)["item_id"]) if user in self.histories else set()
        ranked = (i for i in self.popularity.ranked if i not in seen)
        return [i for _, i in zip(range(k), ranked, strict=False)]

    def cf_top(self, user: str, k: int) -> list[str]:
        if not self.cf.has_user(user):
            return self.popular(user, k)
        return [i for i, _ in self.cf.recommend(user, k)]

    def style_top(self, user: str, k: int) -> list[str]:
        return [r.item_id for r in self.style_ranker.rank(user, k, history=self.history(user))]

    def hybrid_lists(self, user: str, k: int, grid: Sequence[tuple[float, float]]) -> dict[tuple, list[str]]:
        """Top-k for each (alpha, popularity weight) from one candidate set."""
        history = self.history(user)
        exclude = set(history["item_id"]) if history is not None and self.hybrid_config.filter_seen else set()
        cand = self.hybrid.candidates(user, history, exclude=exclude)
        out = {}
        for alpha, beta in grid:
            if not cand.items:
                out[(alpha, beta)] = self.popular(user, k)
                continue
            scores = self.hybrid.blend(cand, alpha, beta)
            out[(alpha, beta)] = [cand.items[n] for n in np.argsort(-scores, kind="stable")[:k]]
        return out


def evaluate(
    data: EvalData,
    k: int = 10,
    models: Sequence[str] = MODELS,
    cf_config: CFConfig | None = None,
    hybrid_config: HybridConfig | None = None,
    test_duration: float | None = None,
    progress: bool = False,
) -> EvalResult:
    """Fit each model on `data.train`, rank for every test user, and measure at `k` (and other K for curves)."""
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)} (choose from {', '.join(MODELS)})")
    if len(data.train) == 0 or len(data.test) == 0:
        raise ValueError(f"the split left {len(data.train)} training and {len(data.test)} test interactions")
    cf_config = cf_config or CFConfig()
    hybrid_config = hybrid_config or HybridConfig()
    skipped: dict[str, str] = {}
    if data.style is None:
        for model in ("style",):
            if model in models:
                skipped[model] = "no style vectors: pass --catalog with product images"
        models = [m for m in models if m not in skipped]

    max_k = max(k, 20)
    grid = [(a, b) for a in ALPHAS for b in POPULARITY_WEIGHTS]
    validation, chosen = {}, {"alpha": 1.0, "popularity_weight": 0.0}
    if "hybrid" in models:
        validation, chosen = _choose_alpha(data, k, cf_config, hybrid_config, grid, test_duration, progress)

    fitted = _Models(data.train, data.style, cf_config, hybrid_config)
    relevant = _relevant(data.test)
    lists: dict[str, dict[str, list[str]]] = {m: {} for m in models}
    alpha_lists: dict[float, dict[str, list[str]]] = {a: {} for a in ALPHAS}
    for user in tqdm(relevant, desc="ranking test users", disable=not progress):
        if "popularity" in lists:
            lists["popularity"][user] = fitted.popular(user, max_k)
        if "cf" in lists:
            lists["cf"][user] = fitted.cf_top(user, max_k)
        if "style" in lists:
            lists["style"][user] = fitted.style_top(user, max_k)
        if "hybrid" in lists:
            sweep = [(a, chosen["popularity_weight"]) for a in ALPHAS]
            if (chosen["alpha"], chosen["popularity_weight"]) not in sweep:
                sweep.append((chosen["alpha"], chosen["popularity_weight"]))
            by_setting = fitted.hybrid_lists(user, max_k, sweep)
            lists["hybrid"][user] = by_setting[(chosen["alpha"], chosen["popularity_weight"])]
            for a in ALPHAS:
                alpha_lists[a][user] = by_setting[(a, chosen["popularity_weight"])]

    universe = data.universe
    cold_items = set(data.test["item_id"]) - set(data.train["item_id"])
    warm_relevant = {u: items - cold_items for u, items in relevant.items()}
    vectors = {i: data.style.vector(i) for i in data.style.ids} if data.style is not None else {}
    results, curves, cold_warm = {}, {}, {}
    for model, recs in lists.items():
        row: dict[str, float | None] = dict(metrics.ranking_metrics(recs, relevant, k))
        row["coverage"] = metrics.coverage(recs, len(universe), k)
        row[f"cold_recall@{k}"] = metrics.cold_recall(recs, relevant, cold_items, k)
        row["popularity_bias"] = metrics.popularity_bias(recs, fitted.popularity.scores, k)
        row["intra_list_similarity"] = metrics.intra_list_similarity(recs, vectors, k) if vectors else None
        results[model] = {name: (None if v is None else round(float(v), 6)) for name, v in row.items()}
        curves[model] = {kk: metrics.ranking_metrics(recs, relevant, kk) for kk in sorted({1, 5, 10, k, 20})}
        cold_warm[model] = {
            "cold": row[f"cold_recall@{k}"],
            "warm": metrics.ranking_metrics(recs, warm_relevant, k)[f"recall@{k}"],
        }
    alpha_curve = {a: metrics.ranking_metrics(recs, relevant, k) for a, recs in alpha_lists.items() if recs}
    data_summary = {
        "train_interactions": len(data.train),
        "test_interactions": len(data.test),
        "train_users": int(data.train["user_id"].nunique()),
        "test_users": len(relevant),
        "test_users_unknown_in_train": len(set(relevant) - set(data.train["user_id"])),
        "items": len(universe),
        "items_with_style_vectors": len(vectors),
        "cold_test_items": len(cold_items),
    }
    return EvalResult(k, results, curves, alpha_curve, validation, chosen, cold_warm, data_summary, skipped)


def _choose_alpha(data, k, cf_config, hybrid_config, grid, test_duration, progress, folds: int = 2):
    """Sweep (alpha, popularity weight) on validation splits carved from train (the last period, then the one
    before it; or `folds` random splits); best mean NDCG@k. Several folds because one small validation set is
    noisy: on sparse data a handful of hits decides the sweep."""
    totals: dict[tuple, list[float]] = {setting: [] for setting in grid}
    remaining = data.train
    for fold in range(folds):
        source = remaining if data.split in ("temporal", "leave-last-k") else data.train
        fit_part, held_out = validation_split(source, data.split, test_duration, data.seed + fold)
        if len(fit_part) == 0 or len(held_out) == 0 or fit_part["user_id"].nunique() < 2:
            break
        remaining = fit_part
        fitted = _Models(fit_part, data.style, cf_config, hybrid_config)
        relevant = _relevant(held_out)
        lists: dict[tuple, dict[str, list[str]]] = {setting: {} for setting in grid}
        for user in tqdm(relevant, desc=f"validation fold {fold + 1} (alpha sweep)", disable=not progress):
            for setting, items in fitted.hybrid_lists(user, k, grid).items():
                lists[setting][user] = items
        for setting, recs in lists.items():
            totals[setting].append(metrics.ranking_metrics(recs, relevant, k)[f"ndcg@{k}"])
    if not next(iter(totals.values())):
        log.warning("no validation split could be carved from train; hybrid uses alpha=%s", hybrid_config.alpha)
        return {}, {"alpha": hybrid_config.alpha, "popularity_weight": hybrid_config.popularity_weight}
    scores = {setting: float(np.mean(values)) for setting, values in totals.items()}
    best = max(grid, key=lambda s: (round(scores[s], 6), s[0]))  # ties: the more CF-heavy setting
    validation = {f"{a}/{b}": round(v, 6) for (a, b), v in scores.items()}
    return validation, {"alpha": best[0], "popularity_weight": best[1]}


# -- report -------------------------------------------------------------------------------------------------
def write_report(result: EvalResult, folder: str | Path, title: str, command: str = "") -> Path:
    """A markdown report with PNG plots (metric vs K, metric vs alpha, cold vs warm) and results.json."""
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
    if result.alpha_curve:
        fig, ax = plt.subplots(figsize=(5, 4))
        alphas = sorted(result.alpha_curve)
        for name in ("ndcg", "recall", "map"):
            ax.plot(alphas, [result.alpha_curve[a][f"{name}@{k}"] for a in alphas], marker="o", label=f"{name}@{k}")
        ax.axvline(result.chosen["alpha"], color="grey", linestyle="--", label="chosen on validation")
        ax.set(xlabel="alpha (0 = style only, 1 = CF only)", title="hybrid on test vs alpha")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "metric_vs_alpha.png", dpi=100)
        plt.close(fig)
        plots.append("metric_vs_alpha.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(result.cold_warm)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [result.cold_warm[m]["warm"] or 0 for m in names], 0.4, label="warm items")
    ax.bar(x + 0.2, [result.cold_warm[m]["cold"] or 0 for m in names], 0.4, label="cold items (never bought)")
    ax.set(xticks=x, xticklabels=names, ylabel=f"recall@{k}", title="cold vs warm test items")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "cold_vs_warm.png", dpi=100)
    plt.close(fig)
    plots.append("cold_vs_warm.png")

    columns = list(next(iter(result.models.values())).keys()) if result.models else []
    lines = [f"# {title}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += ["## Data", ""] + [f"- {name.replace('_', ' ')}: {value:,}" for name, value in result.data.items()]
    lines += ["", f"## Models at K={k}", "", "| model | " + " | ".join(columns) + " |"]
    lines += ["|---|" + "---|" * len(columns)]
    for model, row in result.models.items():
        lines.append(f"| {model} | " + " | ".join("n/a" if row[c] is None else f"{row[c]:.4g}" for c in columns) + " |")
    lines += ["", f"Hybrid: alpha {result.chosen['alpha']}, popularity weight {result.chosen['popularity_weight']}"]
    lines += ["(chosen by mean NDCG over validation splits carved from the training data, never on the test set)."]
    for model, reason in result.skipped.items():
        lines += ["", f"- {model} skipped: {reason}"]
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    (folder / "report.md").write_text("\n".join(lines))
    return folder / "report.md"
