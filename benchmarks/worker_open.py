"""A web worker's start and reload on a shop: the time and memory of opening its catalog as `stylerec serve`'s
workers do (`open_catalog(build_missing=False)`), then of one reload, and ten feeds' latency.

    python benchmarks/worker_open.py --db shop.db --models models [--embeddings STORE] [--index DIR]

Prints JSON: seconds to open and to reload, whether the feed's tables came from a `stylerec train` version
(`tables`), peak RSS (ru_maxrss) and USS (private memory, psutil) after opening, the feed model served.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import psutil


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--embeddings", default="/nonexistent")
    parser.add_argument("--index", default="/nonexistent")
    args = parser.parse_args()
    from recsys.catalog import CatalogPaths, open_catalog

    paths = CatalogPaths(
        db=Path(args.db), embeddings=Path(args.embeddings), index=Path(args.index), models=Path(args.models)
    )
    started = time.perf_counter()
    catalog = open_catalog(paths, build_missing=False)
    opened = time.perf_counter() - started
    uss = psutil.Process().memory_full_info().uss
    started = time.perf_counter()
    catalog.reload()
    reloaded = time.perf_counter() - started
    shoppers = catalog.shoppers(limit=10)
    latencies = []
    for user in shoppers:
        started = time.perf_counter()
        catalog.feed(user, k=12)
        latencies.append((time.perf_counter() - started) * 1000)
    out = {
        "open_s": round(opened, 2),
        "reload_s": round(reloaded, 2),
        "tables": str(catalog.recommender.tables) if catalog.recommender.tables else None,
        "feed_model": catalog.recommender.feed_model,
        "uss_mb_after_open": round(uss / 2**20),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "feed_ms_median_of_10": round(sorted(latencies)[len(latencies) // 2], 1) if latencies else None,
    }
    catalog.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
