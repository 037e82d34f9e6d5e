"""Load test of the service on the demo shop, started the way `stylerec serve` starts it, driven by `wrk` (a load
client that costs little CPU) with `benchmarks/load.lua`: random demo shoppers' feeds and random items' same-style
lists, alternating, plus one POST /events (with a unique event_id) in every 20 requests.

    stylerec demo --no-serve          # once: the demo shop in var/ (store, vectors, index, CF model)
    apt-get install -y wrk            # Debian's wrk
    python benchmarks/load.py [--clients 50] [--seconds 20] [--workers 2] [--scenarios plain,render,uploads]
                              [--engines sqlite,postgresql]   # the same run on each store, one after the other
    (a scenario named twice runs twice: plain,render,plain,render gives plain, render, plain#2, render#2)

Scenarios, one after the other against the same service (so their ratios come from one run):
- plain: the mixed load alone;
- render: the same while one gatys render runs in the render worker (the job is checked to be running);
- retrain: the same while an admin retrain (POST /admin/cf/retrain: CF, then the feed's ranker, a background job in
  a process of its own) runs; reports how long the POST took to answer and the job's outcome;
- uploads: /health sampled every 20 ms by one sequential client (one keep-alive connection) while 4 clients, in
  another process, keep uploading photos to POST /shop-this-style (4 uploads in flight at once: embedding, or
  waiting on the bounded pool).
Reports requests/s, latency percentiles, errors, the load average before each scenario, and whether every
acknowledged event is in the store afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from recsys.store.copy_store import copy_store
from recsys.store.opener import open_store
from recsys.store.pg_local import LocalPostgres

sys.path.insert(0, os.path.dirname(__file__))
from serving import copy_shop, running_service

HERE = Path(__file__).parent
KEY = "load-bench-key"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def web_cpu_seconds() -> float:
    """CPU time used so far by the service's web worker processes (children of this process; not the render
    worker, not wrk): CPU per request is a figure the other engineers' load does not inflate much."""
    total = 0.0
    for process in psutil.Process().children(recursive=True):
        try:
            command = " ".join(process.cmdline())
            if "multiprocessing" in command or ("recsys.cli" in command and "serve" in command):
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def indexed_items(index: str) -> set[str]:
    """The item ids in the shop's persisted style index (empty when there is none)."""
    from index.persistence import CURRENT
    from index.style_index import StyleIndex

    return set(StyleIndex.load(index).item_ids()) if (Path(index) / CURRENT).exists() else set()


def run_wrk(base: str, clients: int, seconds: float, users: Path, items: Path, events_every: int) -> dict:
    run = f"{time.time():.3f}"
    command = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", str(HERE / "load.lua"),
               base, "--", str(users), str(items), str(events_every), run]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def render_running(http: httpx.Client, item: str, style: str) -> str | None:
    """Queue one uncached gatys render and wait until the worker runs it; its job URL (None if it never ran)."""
    params = {"style": style, "strength": 0.9, "renderer": "gatys"}
    response = http.get(f"/items/{item}/render", params=params, headers={"X-API-Key": KEY})
    if response.status_code != 202:
        print(f"render not queued: {response.status_code} {response.text[:200]}", file=sys.stderr)
        return None
    url = response.json()["url"]
    for _ in range(120):
        if http.get(url).json()["status"] == "running":
            return url
        time.sleep(0.5)
    return None


def retrain_started(http: httpx.Client) -> tuple[str, float]:
    """POST /admin/cf/retrain (a background job: CF, then the feed's ranker); its status URL and the answer's ms."""
    t0 = time.perf_counter()
    response = http.post("/admin/cf/retrain", headers={"X-API-Key": KEY})
    answer_ms = round((time.perf_counter() - t0) * 1000, 1)
    if response.status_code != 202:
        raise RuntimeError(f"retrain not started: {response.status_code} {response.text[:200]}")
    return response.json()["status_url"], answer_ms


def wait_for_job(http: httpx.Client, url: str, timeout: float = 600) -> dict:
    """Poll an admin job until it ends; its status, running time and whether it was still running at the end of
    the measured load."""
    still_running = http.get(url, headers={"X-API-Key": KEY}).json()["status"] in ("queued", "running")
    deadline = time.perf_counter() + timeout
    while (job := http.get(url, headers={"X-API-Key": KEY}).json())["status"] in ("queued", "running"):
        if time.perf_counter() > deadline:
            break
        time.sleep(0.5)
    result = job["result"] or {}
    return {"status": job["status"], "seconds": result.get("seconds"), "running_when_load_ended": still_running,
            "error": job["error"]}  # fmt: skip


def keep_uploading(base: str, photos: list[bytes], seconds: float, uploaders: int, started, outcomes) -> None:
    """`uploaders` clients each keeping one photo upload in flight for `seconds` (in a process of its own: a
    /health prober sharing a Python process with them would wait for its interpreter lock, and measure that)."""
    stop = time.perf_counter() + seconds
    found: list[int] = []

    def upload(n: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            i = n
            while time.perf_counter() < stop:
                photo = photos[i % len(photos)]
                started.set()
                r = http.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"k": "5"})
                found.append(r.status_code)
                if r.status_code == 503:
                    time.sleep(0.2)
                i += uploaders

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(uploaders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes.put(found)


def uploads_and_health(base: str, photos: list[bytes], seconds: float, uploaders: int = 4) -> dict:
    context = multiprocessing.get_context("spawn")
    started, outcomes = context.Event(), context.Queue()
    client = context.Process(target=keep_uploading, args=(base, photos, seconds + 1.0, uploaders, started, outcomes))
    client.start()
    started.wait(60)
    time.sleep(1.0)  # the uploads are in flight
    health_ms: list[float] = []
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)  # one keep-alive connection, like a probe
    stop = time.perf_counter() + seconds - 1.0
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"/health answered {response.status}")
        health_ms.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.02)
    connection.close()
    found = outcomes.get(timeout=300)
    client.join()
    ms = np.array(health_ms)
    return {
        "health_requests": len(ms),
        "health_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "health_p99_ms": round(float(np.percentile(ms, 99)), 1),
        "health_max_ms": round(float(ms.max()), 1),
        "uploads_answered": sum(s == 200 for s in found),
        "uploads_refused_503": sum(s == 503 for s in found),
        "uploads_other": sum(s not in (200, 503) for s in found),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="web worker processes (stylerec serve --workers)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--scenarios", default="plain,render,uploads")
    parser.add_argument("--events-every", type=int, default=20, help="one POST /events in N requests (0: none)")
    parser.add_argument("--engines", default="sqlite", help="stores to run on, one after the other: sqlite,postgresql")
    parser.add_argument("--db", default="var/stylerec.db")
    parser.add_argument("--store", default="var/store")
    parser.add_argument("--index", default="var/index")
    parser.add_argument("--models", default="var/models")
    args = parser.parse_args()
    engines = args.engines.split(",")
    results = {engine: measure(args, engine) for engine in engines}
    print(json.dumps(results[engines[0]] if len(engines) == 1 else results, indent=2))


def measure(args: argparse.Namespace, engine: str) -> dict:
    """Every scenario against one service on a copy of the shop in `engine`'s store (`sqlite`, or `postgresql`:
    a private cluster of `recsys.store.pg_local`, fsync on)."""
    load_users = ("load-1", "load-2")  # the users of load.lua's events (one per wrk thread)
    work = Path(tempfile.mkdtemp(prefix="stylerec-load-"))
    # The service runs on a copy of the shop: the events posted here never pile up in it (every run starts from
    # the same data), and the shop stays the demo's.
    shop = copy_shop(args.db, args.store, args.index, args.models, work)
    cluster = LocalPostgres().start() if engine == "postgresql" else None
    if cluster is not None:
        shop["STYLEREC_DB"] = cluster.create_database("shop")
        copy_store(work / "shop.db", shop["STYLEREC_DB"])
    store = open_store(shop["STYLEREC_DB"])
    events_before = sum(len(store.interactions(u)) for u in load_users)
    shoppers, items = store.shoppers(), store.item_ids()
    # same-style lists are asked of items with a style vector (an item without one is rightly answered 404)
    styled = indexed_items(shop["STYLEREC_INDEX"])
    items = [i for i in items if i in styled] if styled else items
    # the render and uploads scenarios need a palette style and product photos (a generated shop has neither)
    styles = store.styles()
    style = styles[0]["name"] if styles else None
    photos = [Path(i["image"]).read_bytes() for i in store.items(limit=8) if i.get("image")]
    needs = {"render": style is not None, "uploads": bool(photos)}
    missing = [s for s in args.scenarios.split(",") if not needs.get(s, True)]
    if missing:
        raise SystemExit(f"scenarios {missing} need palette styles and product photos, which this shop lacks")
    store.close()
    (work / "users.txt").write_text("\n".join(shoppers))
    (work / "items.txt").write_text("\n".join(items))
    serve_args = ["--workers", str(args.workers)]
    # Renders start uncached; request logs off (a JSON line per request would be most of this script's output).
    env = {**shop, "STYLEREC_API_KEY": KEY, "STYLEREC_LOG_LEVEL": "warning"}
    result: dict = {"engine": engine, "clients": args.clients, "seconds": args.seconds, "workers": args.workers}
    acknowledged = 0
    with running_service(args.port, serve_args, env) as base, httpx.Client(base_url=base, timeout=30) as http:
        result["served"] = {k: v for k, v in http.get("/health").json().items() if "version" in k or "spec" in k}
        wrk = (base, args.clients)
        run_wrk(*wrk, 3, work / "users.txt", work / "items.txt", 0)  # warm-up, not counted
        runs: dict[str, int] = {}
        for scenario in args.scenarios.split(","):
            runs[scenario] = n = runs.get(scenario, 0) + 1
            key = scenario if n == 1 else f"{scenario}#{n}"  # a scenario named twice runs twice
            load, cpu = load_average(), web_cpu_seconds()
            if scenario == "plain":
                result[key] = run_wrk(*wrk, args.seconds, work / "users.txt", work / "items.txt", args.events_every)
            elif scenario == "render":
                job = render_running(http, items[n - 1], style)  # another item each time: not cached
                found = run_wrk(*wrk, args.seconds, work / "users.txt", work / "items.txt", args.events_every)
                found["render_running_throughout"] = job is not None and http.get(job).json()["status"] == "running"
                result[key] = found
            elif scenario == "retrain":
                started, answer_ms = retrain_started(http)
                found = run_wrk(*wrk, args.seconds, work / "users.txt", work / "items.txt", args.events_every)
                found["retrain_post_ms"] = answer_ms
                found["retrain_job"] = wait_for_job(http, started)
                result[key] = found
            elif scenario == "uploads":
                result[key] = uploads_and_health(base, photos, args.seconds)
            else:
                raise SystemExit(f"unknown scenario {scenario!r}")
            result[key]["load_average_before"] = load
            if "requests" in result[key]:
                spent = web_cpu_seconds() - cpu
                result[key]["web_cpu_ms_per_request"] = round(1000 * spent / result[key]["requests"], 2)
                # what the web workers would serve with every core to themselves
                cores = os.cpu_count() or 1
                result[key]["rps_if_cores_were_free"] = round(cores * result[key]["requests"] / spent, 1)
            acknowledged += result[key].get("events_acknowledged", 0)
            suffix = key[len(scenario) :]
            if scenario in ("render", "retrain") and "plain" + suffix in result:
                result[key]["vs_plain_rps"] = round(result[key]["rps"] / result["plain" + suffix]["rps"], 3)
    store = open_store(shop["STYLEREC_DB"])
    stored = sum(len(store.interactions(u)) for u in load_users) - events_before
    store.close()
    if cluster is not None:
        cluster.stop()
    shutil.rmtree(work, ignore_errors=True)
    result["events_acknowledged"] = acknowledged
    result["events_missing_after"] = max(0, acknowledged - stored)
    return result


if __name__ == "__main__":
    main()
