"""Two service hosts sharing one PostgreSQL store and one models folder: they catch up with each other.

    stylerec demo --no-serve          # once: the demo shop in var/
    python benchmarks/two_hosts.py [--clients 8] [--seconds 6]

Starts a private PostgreSQL cluster (`recsys.store.pg_local`), copies the demo shop's store into it (`copy-store`), and
runs two `stylerec serve` hosts (A and B, each its own process group with its web workers and render worker) on
two ports, with the same STYLEREC_DB URL and the same index and models folders. Then measures:
- a style like posted to A: how long until it moves the shopper's styles on B (`/users/{id}/styles`);
- a purchase posted to A: how long until B's `/health` counts it;
- A killed with SIGKILL during a burst of events with client event ids: every event A acknowledged is stored
  once and known to B (re-posting its id to B answers with A's event id).
- B's models reload after a model version published through A (an admin CF retrain run by A).
Prints one JSON object.
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
from durability import post_events, start
from serving import copy_shop

KEY = "two-hosts-key"


def until(check, ceiling: float = 30.0, every: float = 0.01) -> float:
    """Seconds until `check()` is true (polled every `every` s); `inf` past `ceiling`."""
    start_time = time.perf_counter()
    while time.perf_counter() - start_time < ceiling:
        if check():
            return time.perf_counter() - start_time
        time.sleep(every)
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--ports", default="8771,8772")
    parser.add_argument("--db", default="var/stylerec.db")
    parser.add_argument("--store", default="var/store")
    parser.add_argument("--index", default="var/index")
    parser.add_argument("--models", default="var/models")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stylerec-two-hosts-"))
    cluster = LocalPostgres().start()  # fsync on: as a real server
    port_a, port_b = (int(p) for p in args.ports.split(","))
    a_url, b_url = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    hosts: dict[str, subprocess.Popen] = {}
    try:
        env = copy_shop(args.db, args.store, args.index, args.models, work)
        url = cluster.create_database("shop")
        copy_store(env["STYLEREC_DB"], url)
        env = {**env, "STYLEREC_DB": url, "STYLEREC_API_KEY": KEY, "STYLEREC_LOG_LEVEL": "warning"}
        hosts["A"], hosts["B"] = start(port_a, env), start(port_b, env)
        store = open_store(url)
        items, styles = store.item_ids()[:50], [s["name"] for s in store.styles()]
        store.close()
        result: dict = {"hosts": 2, "store": "postgresql (private cluster, fsync on)"}
        with httpx.Client(timeout=10) as http:
            # 1. A style like posted to A, in B's styles.
            user = "two-hosts-shopper"
            before = {s["name"]: s["score"] for s in http.get(f"{b_url}/users/{user}/styles", params={"k": 50}).json()}
            style = styles[0]
            liked = http.post(f"{a_url}/events", json={"user_id": user, "style": style, "event": "style_like"})
            assert liked.status_code == 201, liked.text

            def style_moved() -> bool:
                now = {s["name"]: s["score"] for s in http.get(f"{b_url}/users/{user}/styles", params={"k": 50}).json()}
                return now.get(style, 0) > before.get(style, 0)

            result["style_like_on_A_seen_by_B_s"] = round(until(style_moved), 4)
            # 2. A purchase posted to A, counted in B's /health.
            bought = http.post(f"{a_url}/events", json={"user_id": user, "item_id": items[0], "event": "purchase"})
            assert bought.status_code == 201, bought.text
            seen = until(lambda: http.get(f"{b_url}/health").json()["events"] >= bought.json()["id"])
            result["purchase_on_A_counted_by_B_s"] = round(seen, 4)
            # 3. A new model version published through A (an admin retrain), loaded by B.
            served = http.get(f"{b_url}/health").json().get("cf_version")
            admin = {"X-API-Key": KEY}
            job = http.post(f"{a_url}/admin/cf/retrain", headers=admin).json()
            status_url = f"{a_url}/admin/jobs/{job['id']}"
            until(lambda: http.get(status_url, headers=admin).json()["status"] not in ("queued", "running"), 600, 0.5)
            finished = http.get(status_url, headers=admin).json()
            result["retrain_on_A"] = finished["status"] if finished["status"] == "done" else finished
            reloaded = until(lambda: http.get(f"{b_url}/health").json().get("cf_version") != served, ceiling=10)
            result["new_cf_version_served_by_B_s"] = round(reloaded, 4)
        # 4. A killed with SIGKILL during a burst of events; B knows every event A acknowledged.
        acked: dict[str, tuple[int, dict]] = {}
        lock = threading.Lock()
        stop = time.perf_counter() + args.seconds
        clients = [threading.Thread(target=post_events, args=(a_url, c, stop, items, acked, lock))
                   for c in range(args.clients)]  # fmt: skip
        for thread in clients:
            thread.start()
        time.sleep(args.seconds / 2)
        os.killpg(hosts["A"].pid, signal.SIGKILL)
        hosts["A"].wait()
        for thread in clients:
            thread.join()
        with httpx.Client(base_url=b_url, timeout=10) as http:
            answers = {key: http.post("/events", json=body).json()["id"] for key, (_, body) in acked.items()}
        store = open_store(url)
        stored = dict(store._query("SELECT client_event_id, COUNT(*) FROM interactions WHERE user_id LIKE 'dur-%' "
                                   "GROUP BY client_event_id"))  # fmt: skip
        store.close()
        result["kill_A_during_burst"] = {
            "events_acknowledged_by_A": len(acked),
            "acknowledged_missing": sum(key not in stored for key in acked),
            "stored_more_than_once": sum(count > 1 for count in stored.values()),
            "reposted_to_B_answered_with_As_id": sum(answers[key] == event_id for key, (event_id, _) in acked.items()),
        }
        print(json.dumps(result, indent=2))
    finally:
        for host in hosts.values():
            if host.poll() is None:
                os.killpg(host.pid, signal.SIGTERM)
                host.wait(timeout=60)
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
