"""The one job queue on both engines: several runner processes ("hosts") share it; admin starts race; a dead owner.

    python benchmarks/job_queue.py [--jobs 400] [--hosts 4] [--starts 8]

For an SQLite file and a private PostgreSQL cluster (`recsys.store.pg_local`) each:
- `--jobs` no-op jobs queued, then `--hosts` processes run `JobRunner.run_once` until the queue is empty, all at
  once: jobs/s, and whether every job ran exactly once (done, one attempt, counted once across the runners);
- `--starts` processes enqueue an admin job at the same moment (the admin bound: one queued or running): how many
  were accepted (must be 1);
- a process claims an admin job and is killed (SIGKILL): seconds until another store's `fail_dead_jobs` fails it
  (the owner's last sign of life + `HOST_TIMEOUT`).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import tempfile
import time
import uuid
from pathlib import Path

from recsys.service.job_runner import JobRunner
from recsys.store import sqlite as store_module
from recsys.store.opener import open_store
from recsys.store.pg_local import LocalPostgres
from recsys.store.sqlite import QueueFull


def _run_jobs(url: str, ready, go, counts) -> None:
    store = open_store(url)
    runner = JobRunner(store, "bench", lambda job: {"ran": os.getpid()})
    ready.wait()
    go.wait()
    ran = 0
    while runner.run_once() is not None:
        ran += 1
    counts.put(ran)
    store.close()


def _start_admin(url: str, ready, go, answers) -> None:
    store = open_store(url)
    ready.wait()
    go.wait()
    try:
        answers.put(store.enqueue_job(uuid.uuid4().hex, "admin", {"task": "cf"}, "admin", 1, 1))
    except QueueFull:
        answers.put(False)
    store.close()


def _claim_and_hang(url: str, claimed) -> None:
    store = open_store(url)
    claimed.put(store.claim_job("admin")["id"])
    time.sleep(3600)


def _together(target, url: str, n: int, *args) -> float:
    """Start `n` processes of `target`, release them at once; seconds from the release until all ended."""
    ctx = mp.get_context("spawn")
    ready, go = ctx.Barrier(n + 1), ctx.Event()
    processes = [ctx.Process(target=target, args=(url, ready, go, *args)) for _ in range(n)]
    for process in processes:
        process.start()
    ready.wait()
    start = time.perf_counter()
    go.set()
    for process in processes:
        process.join()
    return time.perf_counter() - start


def measure(url: str, jobs: int, hosts: int, starts: int) -> dict:
    ctx = mp.get_context("spawn")
    store = open_store(url)
    for n in range(jobs):
        store.enqueue_job(f"bench-{n}", "bench", {"n": n}, f"c{n}", jobs, jobs)
    counts = ctx.Queue()
    seconds = _together(_run_jobs, url, hosts, counts)
    per_host = [counts.get() for _ in range(hosts)]
    rows = store._query("SELECT status, attempts, COUNT(*) FROM jobs WHERE kind = 'bench' GROUP BY status, attempts")
    out: dict = {
        "jobs": jobs,
        "hosts": hosts,
        "jobs_per_s": round(jobs / seconds, 1),
        "per_host": per_host,
        "each_ran_once": sum(per_host) == jobs and [tuple(r) for r in rows] == [("done", 1, jobs)],
    }
    answers = ctx.Queue()
    _together(_start_admin, url, starts, answers)
    accepted = sum(answers.get() for _ in range(starts))
    out["admin_starts"] = {"at_once": starts, "accepted": accepted}

    claimed = ctx.Queue()
    owner = ctx.Process(target=_claim_and_hang, args=(url, claimed))
    owner.start()
    job_id = claimed.get(timeout=120)
    os.kill(owner.pid, signal.SIGKILL)
    owner.join()
    killed = time.perf_counter()
    while store.fail_dead_jobs("admin", "owner gone") == 0:
        time.sleep(0.5)
    out["dead_owner"] = {
        "failed_after_s": round(time.perf_counter() - killed, 1),
        "host_timeout_s": store_module.HOST_TIMEOUT,
        "status": store.job(job_id)["status"],
    }
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--starts", type=int, default=8)
    args = parser.parse_args()
    result = {"load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="job-queue-") as folder:
        result["sqlite"] = measure(str(Path(folder) / "jobs.db"), args.jobs, args.hosts, args.starts)
    cluster = LocalPostgres().start()
    try:
        result["postgresql"] = measure(cluster.create_database("jobs"), args.jobs, args.hosts, args.starts)
    finally:
        cluster.stop()
    result["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
