"""Synthetic shoppers for the demo catalog: purchases that follow hidden style preferences plus popularity.

Each shopper likes one or two patterns and one colourway (written to `shoppers.csv`, the ground truth). Most
purchases are items in a liked pattern (often in the liked colourway); the rest follow item popularity (Zipf).
A share of the items arrive during the period (at random times) and sell best in their first `new_days` days,
so every temporal split has cold-start items that only style can reach. Deterministic for a seed.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from recsys.shop.demo import CATALOG_FILE, read_catalog

INTERACTIONS_FILE = "interactions.csv"
SHOPPERS_FILE = "shoppers.csv"
START = 1_767_225_600.0  # 2026-01-01 UTC
DAY = 86400.0


def make_demo_shoppers(
    catalog_dir: str | os.PathLike,
    n_shoppers: int = 300,
    days: int = 120,
    new_days: int = 20,
    new_share: float = 0.25,
    style_share: float = 0.8,
    seed: int = 11,
) -> Path:
    """Write `interactions.csv` (user_id,item_id,timestamp,weight,event) and `shoppers.csv` beside the demo
    catalog's items.csv; returns the interactions path."""
    folder = Path(catalog_dir)
    catalog = read_catalog(folder / CATALOG_FILE)
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(catalog))
    patterns = np.array([catalog[i]["pattern"] for i in ids])
    colours = np.array([catalog[i]["colour"] for i in ids])
    popularity = 1.0 / np.arange(1, len(ids) + 1) ** 0.8
    popularity = popularity[rng.permutation(len(ids))]
    # most items are there from the start; the others arrive one by one, so any later period has new items
    is_new = rng.random(len(ids)) < new_share
    release = np.where(is_new, START + rng.uniform(0, days * DAY, len(ids)), START)

    rows, truth = [], []
    for n in range(n_shoppers):
        user = f"U{n:04d}"
        liked_patterns = rng.choice(np.unique(patterns), size=rng.integers(1, 3), replace=False)
        liked_colour = rng.choice(np.unique(colours))
        truth.append((user, "|".join(sorted(liked_patterns)), liked_colour))
        affinity = np.isin(patterns, liked_patterns) * np.where(colours == liked_colour, 4.0, 1.0)
        times = np.sort(START + rng.uniform(0, days * DAY, size=rng.integers(6, 25)))
        for t in times:
            available = release <= t
            fresh = available & (t - release < new_days * DAY)  # shoppers like what just arrived
            if rng.random() < style_share:
                weights = affinity * available * np.where(fresh, 3.0, 1.0)
            else:
                weights = popularity * available
            item = ids[rng.choice(len(ids), p=weights / weights.sum())]
            rows.append((user, item, round(float(t), 1), 1.0, "purchase"))

    interactions = folder / INTERACTIONS_FILE
    with open(interactions, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "item_id", "timestamp", "weight", "event"])
        writer.writerows(rows)
    with open(folder / SHOPPERS_FILE, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "liked_patterns", "liked_colour"])
        writer.writerows(truth)
    return interactions
