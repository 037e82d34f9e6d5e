"""Ranking metrics at K for top-K recommendation lists, and catalog-level measures.

Per user: `recommended` is the ranked list, `relevant` the set of held-out items.
- precision@K = hits / K; recall@K = hits / |relevant|; hitrate@K = 1 if any hit.
- ndcg@K = DCG / IDCG with binary gains and log2(rank + 1) discounts; IDCG over min(K, |relevant|) hits.
- map@K = sum over hit ranks r of precision@r, divided by min(K, |relevant|) (the Kaggle H&M MAP@12).
Means are over users with at least one relevant item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def user_metrics(recommended: Sequence[str], relevant: set[str], k: int) -> dict[str, float]:
    """precision, recall, ndcg, map and hitrate at k for one user (relevant must not be empty)."""
    if not relevant:
        raise ValueError("a user without relevant items has no metrics")
    top = list(recommended)[:k]
    hit_ranks = [rank for rank, item in enumerate(top, 1) if item in relevant]
    hits = len(hit_ranks)
    ideal = min(k, len(relevant))
    dcg = sum(1.0 / np.log2(rank + 1) for rank in hit_ranks)
    idcg = sum(1.0 / np.log2(rank + 1) for rank in range(1, ideal + 1))
    average_precision = sum((i + 1) / rank for i, rank in enumerate(hit_ranks)) / ideal
    return {
        "precision": hits / k,
        "recall": hits / len(relevant),
        "ndcg": dcg / idcg,
        "map": average_precision,
        "hitrate": float(hits > 0),
    }


def ranking_metrics(
    recommendations: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], k: int
) -> dict[str, float]:
    """Mean per-user metrics at k, keyed `precision@k` etc.; users without relevant items are left out.

    A user with relevant items but no recommendation list counts as all misses.
    """
    rows = [user_metrics(recommendations.get(user, []), items, k) for user, items in relevant.items() if items]
    names = ("precision", "recall", "ndcg", "map", "hitrate")
    if not rows:
        return {f"{name}@{k}": 0.0 for name in names}
    return {f"{name}@{k}": float(np.mean([row[name] for row in rows])) for name in names}


def cold_recall(
    recommendations: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], cold_items: set[str], k: int
) -> float | None:
    """Recall@k restricted to held-out items never seen in training; None when the test set has none."""
    rows = []
    for user, items in relevant.items():
        cold = items & cold_items
        if cold:
            hits = len(cold.intersection(list(recommendations.get(user, []))[:k]))
            rows.append(hits / len(cold))
    return float(np.mean(rows)) if rows else None


def coverage(recommendations: Mapping[str, Sequence[str]], catalog_size: int, k: int) -> float:
    """Share of the catalog that appears in at least one top-k list."""
    if catalog_size <= 0:
        return 0.0
    shown = {item for items in recommendations.values() for item in list(items)[:k]}
    return len(shown) / catalog_size


def popularity_bias(recommendations: Mapping[str, Sequence[str]], popularity: Mapping[str, float], k: int) -> float:
    """Mean popularity percentile (0 = never bought in training, 1 = the most bought item) of recommended items."""
    counts = np.array(sorted(popularity.values()), float)
    if counts.size == 0:
        return 0.0
    percentiles = []
    for items in recommendations.values():
        for item in list(items)[:k]:
            count = popularity.get(item, 0.0)
            percentiles.append(np.searchsorted(counts, count, side="right") / counts.size if count > 0 else 0.0)
    return float(np.mean(percentiles)) if percentiles else 0.0


def intra_list_similarity(
    recommendations: Mapping[str, Sequence[str]], vectors: Mapping[str, np.ndarray], k: int
) -> float | None:
    """Mean pairwise cosine between the style vectors of each list's items (unit vectors); None without vectors."""
    means = []
    for items in recommendations.values():
        stack = [vectors[i] for i in list(items)[:k] if i in vectors]
        if len(stack) >= 2:
            matrix = np.stack(stack)
            similarity = matrix @ matrix.T
            n = len(stack)
            means.append((similarity.sum() - np.trace(similarity)) / (n * (n - 1)))
    return float(np.mean(means)) if means else None


def per_user(
    recommendations: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], k: int
) -> dict[str, np.ndarray]:
    """Each metric at k for every user with relevant items (in `relevant`'s order), keyed `ndcg@k` etc."""
    rows = [user_metrics(recommendations.get(user, []), items, k) for user, items in relevant.items() if items]
    names = ("precision", "recall", "ndcg", "map", "hitrate")
    return {f"{name}@{k}": np.array([row[name] for row in rows], float) for name in names}


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, samples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-user `values` (users resampled with replacement)."""
    values = np.asarray(values, float)
    if values.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (samples, values.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, confidence: float = 0.95, samples: int = 2000, seed: int = 0
) -> dict[str, float | list[float]]:
    """Mean of a - b over the same users, its bootstrap interval, and the share of resamples where a <= b
    (a one-sided bootstrap p-value for "a beats b")."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError("paired values must cover the same users")
    if a.size == 0:
        return {"difference": 0.0, "ci": [0.0, 0.0], "p_not_better": 1.0}
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, (samples, diff.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return {
        "difference": float(diff.mean()),
        "ci": [float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))],
        "p_not_better": float((means <= 0).mean()),
    }
