"""A web worker's start and reload on a shop: the time and memory of opening its catalog as `stylerec serve`'s
workers do (`open_catalog(build_missing=False)`), then of one reload, and ten feeds' latency.

    python benchmarks/worker_open.py --db shop.db --models models [--embeddings STORE] [--index DIR]

Prints JSON: seconds to open and to reload, whether the feed's tables came from a `stylerec train` version
(`tables`), peak RSS (ru_maxrss), USS (psutil) and anonymous RSS (/proc: the memory no other process can share;
USS also counts the pages of mapped files while only this process maps them) after opening and after the reload,
the feed model served, and the in-process feed latency of `--feeds` random shoppers (seeded) and of the 20 with
the most events.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import psutil
from serving import add_shop_flags, shop_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shop_flags(parser)
    parser.add_argument("--feeds", type=int, default=200, help="random shoppers whose feed is timed")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    from recsys.shop.catalog import open_catalog

    paths = shop_paths(args)
    started = time.perf_counter()
    catalog = open_catalog(paths, build_missing=False)
    opened = time.perf_counter() - started
    after_open = _memory()
    started = time.perf_counter()
    catalog.reload()
    reloaded = time.perf_counter() - started
    after_reload = _memory()
    random_users, heavy_users = _shoppers(Path(args.db), args.feeds, args.seed)
    out = {
        "open_s": round(opened, 2),
        "reload_s": round(reloaded, 2),
        "tables": str(catalog.recommender.tables) if catalog.recommender.tables else None,
        "feed_model": catalog.recommender.feed_model,
        "after_open_mb": after_open,
        "after_reload_mb": after_reload,
        "feed_random": _latency(catalog, random_users),
        "feed_heavy": _latency(catalog, heavy_users),
        "after_feeds_mb": _memory(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    catalog.close()
    print(json.dumps(out))


def _memory() -> dict[str, float]:
    """USS, PSS and anonymous RSS of this process, in MB."""
    info = psutil.Process().memory_full_info()
    status = Path("/proc/self/status").read_text().splitlines()
    anon = next(int(line.split()[1]) for line in status if line.startswith("RssAnon:"))
    return {"uss": round(info.uss / 2**20), "pss": round(info.pss / 2**20), "anon": round(anon / 1024)}


def _shoppers(db: Path, n_random: int, seed: int) -> tuple[list[str], list[str]]:
    """(n random shoppers, the 20 with the most events), read with sqlite3 (not through the catalog)."""
    import random
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        counts = con.execute("SELECT user_id, count(*) FROM interactions GROUP BY user_id").fetchall()
    finally:
        con.close()
    heavy = [u for u, _ in sorted(counts, key=lambda c: (-c[1], c[0]))[:20]]
    users = sorted(u for u, _ in counts)
    return random.Random(seed).sample(users, min(n_random, len(users))), heavy


def _latency(catalog, users: list[str]) -> dict[str, float | None]:
    """p50/p99 (ms) of `catalog.feed(user, k=12)` over `users`, one at a time."""
    times = []
    for user in users:
        started = time.perf_counter()
        catalog.feed(user, k=12)
        times.append((time.perf_counter() - started) * 1000)
    if not times:
        return {"n": 0}
    times.sort()
    pick = lambda q: round(times[min(len(times) - 1, int(q * len(times)))], 1)  # noqa: E731
    return {"n": len(times), "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


if __name__ == "__main__":
    main()
