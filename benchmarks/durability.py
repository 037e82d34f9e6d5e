"""kill -9 durability check: acknowledged events survive the service being killed mid-load, and retries of them
after the restart are stored once.

    stylerec demo --no-serve          # once: the demo shop in var/
    python benchmarks/durability.py [--clients 8] [--seconds 6] [--kills 2] [--engine postgresql]

On a copy of the demo store: starts `stylerec serve` (web workers + render worker), posts events with client
event ids from several clients, kills the whole process group with SIGKILL mid-load, starts it again; `--kills`
times. Then every acknowledged event must be in the store exactly once, and re-posting acknowledged events (the
client retrying) must answer with the same event ids and store nothing new. Prints one JSON object.
`--engine postgresql`: the copy goes into a private PostgreSQL cluster (`recsys.store.pg_local`, fsync on) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from recsys.store.copy_store import copy_store
from recsys.store.opener import open_store
from recsys.store.pg_local import LocalPostgres

sys.path.insert(0, os.path.dirname(__file__))
from serving import copy_shop, start_service


def start(port: int, env: dict) -> subprocess.Popen:
    """Two web workers in a session of their own (the benchmark kills the whole group), output discarded."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    return start_service(port, ["--workers", "2"], env, ceiling_s=120, start_new_session=True, **quiet)


def post_events(base: str, client: int, stop: float, items: list[str], acked: dict, lock: threading.Lock) -> None:
    n = 0
    with httpx.Client(base_url=base, timeout=10) as http:
        while time.perf_counter() < stop:
            n += 1
            event_id = f"dur-{client}-{n}-{time.time_ns()}"
            body = {"user_id": f"dur-{client}", "item_id": items[n % len(items)], "event_id": event_id}
            try:
                response = http.post("/events", json=body)
            except httpx.TransportError:  # the service was killed: unacknowledged, may or may not be stored
                time.sleep(0.1)
                continue
            if response.status_code == 201:
                with lock:
                    acked[event_id] = (response.json()["id"], body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--db", default="var/stylerec.db")
    parser.add_argument("--store", default="var/store")
    parser.add_argument("--index", default="var/index")
    parser.add_argument("--models", default="var/models")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stylerec-durability-"))
    env = copy_shop(args.db, args.store, args.index, args.models, work)
    cluster = LocalPostgres().start() if args.engine == "postgresql" else None
    if cluster is not None:
        env["STYLEREC_DB"] = cluster.create_database("shop")
        copy_store(work / "shop.db", env["STYLEREC_DB"])
    store = open_store(env["STYLEREC_DB"])
    items = store.item_ids()[:50]
    store.close()
    base = f"http://127.0.0.1:{args.port}"
    acked: dict[str, tuple[int, dict]] = {}
    lock = threading.Lock()
    try:
        for _ in range(args.kills):
            server = start(args.port, env)
            stop = time.perf_counter() + args.seconds
            clients = [threading.Thread(target=post_events, args=(base, c, stop, items, acked, lock))
                       for c in range(args.clients)]  # fmt: skip
            for thread in clients:
                thread.start()
            time.sleep(args.seconds / 2)
            os.killpg(server.pid, signal.SIGKILL)  # serve, its web workers and the render worker, mid-load
            server.wait()
            for thread in clients:
                thread.join()
        server = start(args.port, env)
        retried = list(acked.items())[:: max(1, len(acked) // 200)]
        with httpx.Client(base_url=base, timeout=10) as http:
            same = sum(http.post("/events", json=body).json()["id"] == event_id for _, (event_id, body) in retried)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        store = open_store(env["STYLEREC_DB"])
        stored = dict(store._query("SELECT client_event_id, COUNT(*) FROM interactions WHERE user_id LIKE 'dur-%' "
                                   "GROUP BY client_event_id"))  # fmt: skip
        store.close()
        result = {
            "engine": args.engine,
            "kills": args.kills,
            "events_acknowledged": len(acked),
            "acknowledged_missing": sum(event_id not in stored for event_id in acked),
            "stored_more_than_once": sum(count > 1 for count in stored.values()),
            "retries_after_restart": len(retried),
            "retries_answered_with_the_first_id": same,
        }
        print(json.dumps(result, indent=2))
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
