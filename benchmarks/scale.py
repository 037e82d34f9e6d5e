"""stylerec at a shop's size: import -> train -> serve -> feed latency -> a reload; each step's time and memory.

    python benchmarks/scale.py --scale 0.01 --work /tmp/scale001            # a hundredth of H&M
    python benchmarks/scale.py --scale 0.1 --work /tmp/scale01 --skip ranker  # a step too costly today
    python benchmarks/scale.py --compare /tmp/scale001/scale.json /tmp/scale01/scale.json   # growth exponents

The shop is `benchmarks/synthetic_shop.py`'s (generated into WORK/shop once, with style vectors for every
article). Every step runs the project's own command in a subprocess, timed from start to exit, with the peak RSS
of its process tree sampled every 0.2 s (a step is killed past `--memory-cap-gb`, as the kernel would on a
smaller machine, and reported so):

- `import`: `stylerec import --catalog WORK/shop --interactions WORK/shop/transactions.csv` into WORK/shop.db;
- `train`: `stylerec train` when this checkout has it; else today's steps: `open` (`stylerec feed USER`: opens
  the shop, builds the style index and trains and saves CF on the first run) and `ranker` (`stylerec feed USER
  --retrain`: trains the feed's ranker and saves it);
- `serve`: `stylerec serve --workers 2`, until /health answers ready; the PSS (proportional set size, shared
  pages counted once) of all its processes together (psutil `memory_full_info`), at the start and at the end;
- `feed`: GET /users/ID/feed?k=12 over HTTP, one client, one request at a time: 200 random shoppers and the 20
  with the most events (p50/p99 in ms);
- `reload`: an admin change (POST /items) through one worker, then requests on fresh connections until both
  workers have answered: the slowest is the other worker's reload (it reloads on its first request after it).

Prints each step as it ends and writes WORK/scale.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
API_KEY = "scale-benchmark"
GB = 1 << 30


class Sampler(threading.Thread):
    """Peak RSS of a process and its children, sampled every `interval` seconds; kills them past `cap`."""

    def __init__(self, pid: int, cap_bytes: float, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.cap, self.interval = pid, cap_bytes, interval
        self.peak = 0
        self.killed = False
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._halt.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = sum(_rss(p) for p in procs)
            except psutil.NoSuchProcess:
                break
            self.peak = max(self.peak, rss)
            if rss > self.cap:
                self.killed = True
                for p in reversed(procs):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        p.kill()
                break
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def _pss(processes: list[psutil.Process]) -> tuple[int, list[int]]:
    values = []
    for p in processes:
        try:
            values.append(p.memory_full_info().pss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            values.append(0)
    return sum(values), values


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "recsys.cli", *args]


def run_step(name: str, command: list[str], cap_gb: float, timeout: float, log: Path) -> dict:
    """Run a command to its end; its wall time, the peak RSS of its process tree and how it ended."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"\n### {name}: {' '.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(command, stdout=out, stderr=out, cwd=REPO, env=_env())
        sampler = Sampler(process.pid, cap_gb * GB)
        sampler.start()
        try:
            rc = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            rc = process.wait()
            sampler.killed = "timeout"
        sampler.stop()
    result = {"wall_s": round(time.perf_counter() - started, 1), "peak_rss_gb": round(sampler.peak / GB, 2), "rc": rc}
    if sampler.killed:
        result["killed"] = f"over {cap_gb} GB" if sampler.killed is True else f"after {timeout:.0f} s"
    _print(name, result)
    return result


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "STYLEREC_API_KEY": API_KEY}


def _print(name: str, result: dict) -> None:
    print(f"{name:>8}: " + ", ".join(f"{k} {v}" for k, v in result.items()), flush=True)


def has_train_command() -> bool:
    """Whether this checkout has `stylerec train` (the batch step of issue 21)."""
    probe = subprocess.run(cli("train", "--help"), cwd=REPO, env=_env(), capture_output=True)
    return probe.returncode == 0


def shoppers(db: Path, n_random: int, n_heavy: int, seed: int) -> tuple[list[str], list[str]]:
    """`n_random` shoppers drawn at random (seeded) and the `n_heavy` with the most events."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        by_events = "SELECT user_id FROM interactions GROUP BY user_id ORDER BY COUNT(*) DESC, user_id LIMIT ?"
        heavy = [u for (u,) in con.execute(by_events, (n_heavy,))]
        everyone = [u for (u,) in con.execute("SELECT DISTINCT user_id FROM interactions ORDER BY user_id")]
    return random.Random(seed).sample(everyone, min(n_random, len(everyone))), heavy


def latency(client: httpx.Client, base: str, users: list[str]) -> dict:
    """p50/p99 (ms) of one feed request per shopper, one at a time."""
    times, errors = [], 0
    for user in users:
        started = time.perf_counter()
        response = client.get(f"{base}/users/{user}/feed", params={"k": 12})
        times.append((time.perf_counter() - started) * 1000)
        errors += response.status_code != 200
    t = np.array(times)
    p50, p99 = np.percentile(t, [50, 99])
    return {
        "n": len(t),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(t.max(), 1),
        "errors": errors,
    }


def serve(args: argparse.Namespace, paths: dict[str, Path], users: tuple[list[str], list[str]], log: Path) -> dict:
    """Start the service, wait until it is ready, measure PSS, feed latency and a reload; stop it."""
    where = [f"--{k}={paths[k]}" for k in ("db", "store", "index", "models")]
    command = cli("serve", "--workers", "2", "--port", str(args.port), *where)
    base = f"http://127.0.0.1:{args.port}"
    result: dict = {}
    with open(log, "ab") as out:
        out.write(f"\n### serve: {' '.join(command)}\n".encode())
        out.flush()
        started = time.perf_counter()
        server = subprocess.Popen(command, stdout=out, stderr=out, cwd=REPO, env=_env())
        sampler = Sampler(server.pid, args.memory_cap_gb * GB, interval=0.5)
        sampler.start()
        try:
            health = None
            while time.perf_counter() - started < args.serve_timeout and server.poll() is None and not sampler.killed:
                try:
                    response = httpx.get(f"{base}/health", timeout=5)
                    if response.status_code == 200 and response.json().get("ready"):
                        health = response.json()
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            result["healthy_s"] = round(time.perf_counter() - started, 1) if health else None
            result["peak_rss_gb_start"] = round(sampler.peak / GB, 2)
            if health is None:
                running = server.poll() is None
                result["error"] = "killed" if sampler.killed else "not ready in time" if running else "exited"
                _print("serve", result)
                return result
            result["feed_model"], result["ranker_version"] = health.get("feed_model"), health.get("ranker_version")
            workers = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
            # /health answers once one worker has opened the shop: wait until every process is idle (both open)
            result["all_idle_s"] = _wait_idle(workers, started, args.serve_timeout)
            total, each = _pss(workers)
            result["pss_gb_ready"], result["pss_gb_each"] = round(total / GB, 2), [round(v / GB, 2) for v in each]
            _print("serve", result)
            with httpx.Client(timeout=120) as client:
                feed = {"random": latency(client, base, users[0]), "heavy": latency(client, base, users[1])}
            _print("feed", {f"{k} p50/p99 ms": f"{v['p50_ms']}/{v['p99_ms']}" for k, v in feed.items()})
            result["feed"] = feed
            result["reload"] = reload(base, users[0][:1], args.serve_timeout)
            _print("reload", result["reload"])
            total, each = _pss(workers)
            result["pss_gb_end"] = round(total / GB, 2)
            result["peak_rss_gb"] = round(sampler.peak / GB, 2)
        finally:
            sampler.stop()
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    return result


def _wait_idle(processes: list[psutil.Process], started: float, timeout: float) -> float | None:
    """Seconds since `started` when the processes together used under a fifth of a core for a second."""
    while time.perf_counter() - started < timeout:
        before = sum(_cpu(p) for p in processes)
        time.sleep(1.0)
        if sum(_cpu(p) for p in processes) - before < 0.2:
            return round(time.perf_counter() - started, 1)
    return None


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return times.user + times.system
    except psutil.NoSuchProcess:
        return 0.0


def reload(base: str, user: list[str], timeout: float) -> dict:
    """An admin change through one worker (a new item: every process must reload), then 32 requests from 4
    threads on fresh connections, so both workers take some: the slowest is the other worker's reload (done on
    its first request after the change)."""
    headers = {"X-API-Key": API_KEY}
    started = time.perf_counter()
    response = httpx.post(f"{base}/items", data={"item_id": f"scale-{int(time.time())}", "title": "reload probe"},
                          headers=headers, timeout=timeout)  # fmt: skip
    change_ms = (time.perf_counter() - started) * 1000

    def one(_: int) -> float:
        began = time.perf_counter()
        httpx.get(f"{base}/users/{user[0]}/feed", params={"k": 12}, timeout=timeout)
        return (time.perf_counter() - began) * 1000

    with ThreadPoolExecutor(4) as pool:
        times = sorted(pool.map(one, range(32)), reverse=True)
    return {"change_status": response.status_code, "change_ms": round(change_ms, 1),
            "reload_s": round(times[0] / 1000, 2), "slowest_ms": [round(t) for t in times[:4]]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.01, help="fraction of H&M's size")
    parser.add_argument("--work", help="folder for the shop, its store, models and the results")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip", default="", help="steps to skip: import,train,open,ranker,serve (comma-separated)")
    parser.add_argument("--memory-cap-gb", type=float, default=16.0, help="kill a step whose processes pass this")
    parser.add_argument("--step-timeout", type=float, default=3600.0, help="seconds before a step is killed")
    parser.add_argument("--serve-timeout", type=float, default=600.0, help="seconds for the service to be ready")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--train-args", default="", help="extra arguments for `stylerec train` (when it exists)")
    parser.add_argument("--out", default="scale.json", help="results file name in WORK")
    parser.add_argument("--compare", nargs=2, metavar="JSON", help="growth exponents between two runs' results")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if not args.work:
        parser.error("give --work DIR (or --compare A.json B.json)")
    sys.path.insert(0, str(REPO))
    from benchmarks.synthetic_shop import generate

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shop = work / "shop"
    skip = set(filter(None, args.skip.split(",")))
    paths = {"db": work / "shop.db", "store": shop / "style", "index": work / "index", "models": work / "models"}
    log = work / "scale.log"
    results: dict = {"scale": args.scale, "seed": args.seed, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / GB, 1),
                                 "load_before": [round(x, 2) for x in os.getloadavg()]},
                     "steps": {}}  # fmt: skip
    if not (shop / "shop.json").exists():
        started = time.perf_counter()
        summary = generate(shop, args.scale, args.seed)
        print(f"shop generated in {time.perf_counter() - started:.0f} s: {summary}", flush=True)
    results["shop"] = json.loads((shop / "shop.json").read_text())
    steps = results["steps"]

    def step(name: str, command: list[str]) -> None:
        if name in skip:
            steps[name] = {"skipped": True}
            return
        steps[name] = run_step(name, command, args.memory_cap_gb, args.step_timeout, log)
        (work / args.out).write_text(json.dumps(results, indent=2) + "\n")

    db = ["--db", str(paths["db"])]
    step("import", cli("import", *db, "--catalog", str(shop), "--interactions", str(shop / "transactions.csv")))
    users = shoppers(paths["db"], 200, 20, args.seed)
    if not users[0]:
        skip |= {"open", "ranker", "train", "serve"}  # nothing imported: nothing to measure after
    where = [*db, "--store", str(paths["store"]), "--index", str(paths["index"]), "--models", str(paths["models"])]
    if has_train_command():
        train = cli("train", *where)  # the served index too: the style lists are searched in it
        step("train", [*train, *args.train_args.split()])
    else:  # today's steps
        someone = users[0][0] if users[0] else "nobody"
        step("open", cli("feed", someone, *where, "-k", "12"))
        step("ranker", cli("feed", someone, *where, "-k", "12", "--retrain"))
    if "serve" not in skip:
        results["serve"] = serve(args, paths, users, log)
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    (work / args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {work / args.out}")
    return 0


def compare(small: str, big: str) -> int:
    """Print each step's time and memory at two sizes and the growth exponent log(cost ratio) / log(events
    ratio): 1 grows like the events, 2 like their square."""
    a, b = json.loads(Path(small).read_text()), json.loads(Path(big).read_text())
    ratio = b["shop"]["purchases"] / a["shop"]["purchases"]

    def exponent(x: float | None, y: float | None) -> str:
        return f"{math.log(y / x) / math.log(ratio):.2f}" if x and y and x > 0 and y > 0 else "-"

    rows = [(name, a["steps"].get(name, {}), b["steps"].get(name, {})) for name in b["steps"]]
    sa, sb = a.get("serve", {}), b.get("serve", {})
    rows.append(("serve", {"wall_s": sa.get("healthy_s"), "peak_rss_gb": sa.get("pss_gb_ready")},
                 {"wall_s": sb.get("healthy_s"), "peak_rss_gb": sb.get("pss_gb_ready")}))  # fmt: skip
    print(f"events {a['shop']['purchases']:,} -> {b['shop']['purchases']:,} (x{ratio:.1f})")
    print(f"{'step':>8} {'time s':>16} {'exp':>5} {'memory GB':>14} {'exp':>5}")
    for name, x, y in rows:
        t = f"{x.get('wall_s')} -> {y.get('wall_s')}"
        m = f"{x.get('peak_rss_gb')} -> {y.get('peak_rss_gb')}"
        print(f"{name:>8} {t:>16} {exponent(x.get('wall_s'), y.get('wall_s')):>5} {m:>14} "
              f"{exponent(x.get('peak_rss_gb'), y.get('peak_rss_gb')):>5}")  # fmt: skip
    for kind in ("random", "heavy"):
        fa, fb = sa.get("feed", {}).get(kind, {}), sb.get("feed", {}).get(kind, {})
        print(f"feed p99 {kind}: {fa.get('p99_ms')} -> {fb.get('p99_ms')} ms "
              f"(exp {exponent(fa.get('p99_ms'), fb.get('p99_ms'))})")  # fmt: skip
    ra, rb = sa.get("reload", {}), sb.get("reload", {})
    x, y = ra.get("reload_s"), rb.get("reload_s")
    print(f"reload: {x} -> {y} s (exp {exponent(x, y)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
