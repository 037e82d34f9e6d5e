"""Load test of the service on the demo catalog: feed and similar-items at N concurrent clients, with events
posted during the load and checked afterwards.

    stylerec demo --no-serve          # once: the demo catalog, store and vectors in var/
    python benchmarks/load.py [--clients 50] [--seconds 30] [--port 8765]

Starts `stylerec serve` in a subprocess (one uvicorn worker), then runs the clients (httpx, asyncio) in this
process: each loops over GET /users/{id}/feed?k=10 and GET /items/{id}/similar?k=10 (alternating), and every
tenth request of a client is a POST /events. Reports p50/p99 latency and requests/s per route, the error count,
and whether every acknowledged event is in the store afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time

import httpx
import numpy as np

from recsys.store import Store

sys.path.insert(0, os.path.dirname(__file__))
from serving import running_service


async def client_loop(base: str, users: list[str], items: list[str], stop: float, seed: int, log: dict) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        n = 0
        while time.perf_counter() < stop:
            n += 1
            if n % 10 == 0:
                route, start = "events", time.perf_counter()
                body = {"user_id": f"load-{seed}", "item_id": rng.choice(items), "event": "click"}
                response = await http.post("/events", json=body)
                if response.status_code == 201:
                    log["event_ids"].append(response.json()["id"])
            elif n % 2:
                route, start = "feed", time.perf_counter()
                response = await http.get(f"/users/{rng.choice(users)}/feed", params={"k": 10})
            else:
                route, start = "similar", time.perf_counter()
                response = await http.get(f"/items/{rng.choice(items)}/similar", params={"k": 10})
            log["latency"].setdefault(route, []).append(time.perf_counter() - start)
            if response.status_code >= 400:
                log["errors"].append((route, response.status_code))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", default="var/stylerec.db")
    parser.add_argument("--store", default="var/store")
    args = parser.parse_args()

    store = Store(args.db)
    users, items = store.users(), [i["item_id"] for i in store.items()]
    before = store.count_events()
    store.close()
    with running_service(args.port, ["--db", args.db, "--store", args.store]) as base:
        log: dict = {"latency": {}, "errors": [], "event_ids": []}
        stop = time.perf_counter() + args.seconds
        started = time.perf_counter()
        tasks = [client_loop(base, users, items, stop, seed, log) for seed in range(args.clients)]

        async def run_all() -> None:
            await asyncio.gather(*tasks)

        asyncio.run(run_all())
        elapsed = time.perf_counter() - started

    store = Store(args.db)
    stored = set(store.interactions(since_id=0)["id"])
    after = store.count_events()
    store.close()
    result = {"clients": args.clients, "seconds": round(elapsed, 1), "errors": len(log["errors"])}
    total = 0
    for route, latencies in sorted(log["latency"].items()):
        ms = np.array(latencies) * 1000
        total += len(ms)
        result[route] = {"requests": len(ms), "rps": round(len(ms) / elapsed, 1),
                         "p50_ms": round(float(np.percentile(ms, 50)), 1),
                         "p99_ms": round(float(np.percentile(ms, 99)), 1)}  # fmt: skip
    result["total_rps"] = round(total / elapsed, 1)
    result["events_acknowledged"] = len(log["event_ids"])
    result["events_missing_after"] = len(set(log["event_ids"]) - stored)
    result["events_in_store_added"] = after - before
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
