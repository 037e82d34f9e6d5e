"""CPU per request of the two requests `benchmarks/load.py` sends most (a shopper's feed, an item's same-style list),
in process, on a shop opened as a web worker opens it, with one BLAS/OpenMP thread as `stylerec serve` runs them;
optionally a cProfile breakdown of each (where the CPU goes).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
    python benchmarks/request_cost.py --db shop.db --models models --embeddings STORE --index DIR \\
        [--requests 300] [--profile 40]

Prints JSON: CPU ms per request (process time, robust to other jobs' load, not to what they do to the caches)
for feeds of random shoppers, same-style lists of random items and feeds of the `--heavy` shoppers with the most
events (with each kind's p50 / p90 / p99 / max), after as many warm-up requests; the response
bodies are built as the service builds them. With --profile N, the N functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import time

from serving import add_shop_flags, one_compute_thread, shop_paths

one_compute_thread()  # before numpy and FAISS load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shop_flags(parser)
    parser.add_argument("--requests", type=int, default=300, help="timed requests of each kind (as many warm-ups)")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions of a profiled pass")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--heavy", type=int, default=20, help="also time the feeds of the N (<= 20) shoppers with the most events"
    )
    args = parser.parse_args()
    import numpy as np  # after the thread settings above
    from worker_open import _shoppers  # the 20 shoppers with the most events (an SQLite store's)

    from recsys.service.deps import recommendations_out
    from recsys.service.schemas import Recommendations
    from recsys.shop.catalog import open_catalog

    paths = shop_paths(args)
    catalog = open_catalog(paths, build_missing=False)
    rng = random.Random(args.seed)
    n = args.requests
    shoppers = rng.sample(catalog.store.shoppers(), 3 * n)
    styled = [i for i in catalog.store.item_ids() if catalog.style is not None and i in catalog.style]
    items = rng.sample(styled, 3 * n) if styled else []

    def feed(user: str) -> str:
        found = catalog.feed(user, 10)
        return Recommendations.model_validate(recommendations_out(catalog, found, user)).model_dump_json()

    def similar(item: str) -> str:
        found = catalog.similar(item, 10)
        return Recommendations.model_validate(recommendations_out(catalog, found, None)).model_dump_json()

    heavy_shoppers = _shoppers(paths.db, 0, args.seed)[1][: args.heavy] if args.heavy else []
    kinds = {"feed": (feed, shoppers), "similar": (similar, items), "heavy_feed": (feed, heavy_shoppers * 3)}
    out: dict = {"feed_model": catalog.recommender.feed_model, "requests": n, "load_average": os.getloadavg()}
    for name, (call, keys) in kinds.items():
        for key in keys[:n]:  # warm-up: pages, caches
            call(key)
        timed = keys[n : 2 * n] if name != "heavy_feed" else keys[len(keys) // 3 : 2 * len(keys) // 3]
        started, wall, each = time.process_time(), time.perf_counter(), []
        for key in timed:
            before = time.process_time()
            call(key)
            each.append((time.process_time() - before) * 1000)
        out[f"{name}_cpu_ms"] = round((time.process_time() - started) / max(1, len(timed)) * 1000, 2)
        out[f"{name}_wall_ms"] = round((time.perf_counter() - wall) / max(1, len(timed)) * 1000, 2)
        if each:  # the spread: a queue's tail follows its costliest requests
            p50, p90, p99 = (round(float(v), 2) for v in np.percentile(each, [50, 90, 99]))
            out[f"{name}_cpu_ms_p50_p90_p99_max"] = [p50, p90, p99, round(max(each), 2)]
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for key in keys[2 * n :]:
                call(key)
            profile.disable()
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(args.profile)
            print(f"== {name}\n{text.getvalue()}")
    catalog.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
