"""Latency of one shopper's feed on the H&M sample: candidates from every source, features, LightGBM, top 12.

    python benchmarks/feed_latency.py [--embeddings DIR] [--events 100] [--repeats 300]

A shopper with `--events` purchases (the longest history in the sample, cut to its latest events) is ranked
`--repeats` times after a warm-up; p50/p95/p99 in ms. The ranker is trained on three short windows (its accuracy
does not matter here, its size does: same rounds and leaves as the default). Run under the bench lock:
`flock /tmp/stylerec-bench.lock python benchmarks/feed_latency.py` and record `uptime` beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from recsys.candidates import ItemInfo, Snapshot
from recsys.data_io import read_catalog, read_interactions
from recsys.ranker import Feed, LearnedRanker, RankerConfig

DATA = Path(os.environ.get("STYLEREC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")) / "hm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", help="embedding store of the H&M photos (style source and features)")
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()

    interactions = read_interactions(DATA / "transactions.csv")
    catalog = read_catalog(DATA)
    style = None
    if args.embeddings:
        from recsys.catalog import catalog_style_space

        style = catalog_style_space(DATA, args.embeddings, catalog)
    items = ItemInfo.from_data(catalog, interactions)
    allowed = set(catalog["item_id"]) | set(interactions["item_id"])
    config = RankerConfig(windows=3, use_style=style is not None)
    ranker = LearnedRanker(config).fit(interactions, items, style, allowed=allowed)
    snapshot = Snapshot.build(interactions, items, style, allowed=allowed)
    feed = Feed(snapshot, ranker)

    user = interactions["user_id"].value_counts().index[0]
    history = interactions[interactions["user_id"] == user].sort_values("timestamp").tail(args.events)
    for _ in range(10):
        feed.recommend(user, 12, history=history)
    times, cpu = [], []  # wall clock, and this process's CPU time (what a busy shared machine does not stretch)
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        feed.recommend(user, 12, history=history)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    pool = feed.pool(user, history)[1]
    result = {
        "events": len(history),
        "candidates": len(pool.items),
        "style": style is not None,
        "repeats": args.repeats,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 2),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
