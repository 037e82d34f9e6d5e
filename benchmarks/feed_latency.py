"""Latency of one shopper's feed on the H&M sample: candidates from every source, features, LightGBM, top 12.

    python benchmarks/feed_latency.py [--embeddings DIR] [--events 100] [--repeats 300]

The shopper is the one with the longest history in the sample, cut to its latest `--events` purchases (their
older ones are left out of the shop, so the shop knows them with exactly those events, as the service does: it
folds each new event into CF when it is recorded). Their feed is computed `--repeats` times after a warm-up;
p50/p95/p99 wall clock and this process's CPU time, in ms. A second figure, `fresh_*`, ranks the same history
for a shopper the shop has never seen (CF folds them in on every request: the cost of an event not yet folded in).
The ranker is trained on three short windows (its accuracy does not matter here, its size does: same rounds and
leaves as the default). Compute runs on one thread (OMP/MKL/OpenBLAS, unless the environment says otherwise), as
in `stylerec serve`'s web workers: on two shared cores a threaded FAISS or BLAS call of a few queries waits on
busy cores (p99 several times the single-thread one). Run under the bench lock, at normal priority:
`flock /tmp/stylerec-bench.lock python benchmarks/feed_latency.py` and record `uptime` beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from serving import one_compute_thread

one_compute_thread()  # before numpy and FAISS load

import numpy as np  # noqa: E402

from recsys.candidates import ItemInfo, Snapshot  # noqa: E402
from recsys.models.ranker import Feed, LearnedRanker, RankerConfig  # noqa: E402
from recsys.store.data_io import read_catalog, read_interactions  # noqa: E402

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
        from recsys.shop.catalog import catalog_style_space

        style = catalog_style_space(DATA, args.embeddings, catalog)
    user = interactions["user_id"].value_counts().index[0]
    theirs = interactions[interactions["user_id"] == user].sort_values("timestamp")
    interactions = interactions.drop(theirs.index[: max(0, len(theirs) - args.events)])
    history = interactions[interactions["user_id"] == user].sort_values("timestamp")
    items = ItemInfo.from_data(catalog, interactions)
    allowed = set(catalog["item_id"]) | set(interactions["item_id"])
    config = RankerConfig(windows=3, use_style=style is not None)
    ranker = LearnedRanker(config).fit(interactions, items, style, allowed=allowed)
    snapshot = Snapshot.build(interactions, items, style, allowed=allowed)
    feed = Feed(snapshot, ranker)

    def timed(shopper: str) -> tuple[list[float], list[float]]:
        for _ in range(10):
            feed.recommend(shopper, 12, history=history)
        wall, cpu = [], []  # wall clock, and this process's CPU time (what a busy shared machine does not stretch)
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            feed.recommend(shopper, 12, history=history)
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        return wall, cpu

    load_before = os.getloadavg()
    times, cpu = timed(user)
    fresh, fresh_cpu = timed("a-shopper-never-seen")
    pool = feed.pool(user, history)[1]
    sources = {name: sum(name in found for found in pool.found.values()) for name in feed.ranker.config.sources}
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
        "fresh_p50_ms": round(float(np.percentile(fresh, 50)), 2),
        "fresh_p99_ms": round(float(np.percentile(fresh, 99)), 2),
        "fresh_cpu_p99_ms": round(float(np.percentile(fresh_cpu, 99)), 2),
        "candidates_by_source": sources,
        "threads": os.environ["OMP_NUM_THREADS"],
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
