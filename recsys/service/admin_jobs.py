"""Admin jobs: rebuilding the style index and retraining CF or the feed's ranker, as background jobs.

A retrain takes about a minute of CPU at H&M size. Run inside a request it held the answer that long and, in a web
worker, competed for the interpreter lock with every read. So `AdminJobs.start` answers at once: it queues a job
(kind `admin`) in the store's job queue, the one render jobs use, and starts a process of its own for it (`python
-m recsys.service.admin_jobs DB JOB`, at lower CPU priority, ending when the web worker that started it ends). That
process claims the job like any runner (`JobRunner`: `Store.claim_job`, `FOR UPDATE SKIP LOCKED` on PostgreSQL;
the process is recorded as the job's owner and says it is alive while it runs), opens the catalog, does the work,
writes the new persisted version (`index.persistence.save_version`) and bumps the catalog's generation, so every
web worker of every host swaps the new version in on its next request (`Catalog.catch_up`); then it records the
job's result (or the error) in the store, where any worker of any host answers `GET /admin/jobs/{id}`.

One admin job is in flight at a time across all the web workers and hosts that share the store: the queue is
bounded to one admin job queued or running (`Store.enqueue_job`, ordered across hosts on PostgreSQL), so a second
start is refused (`JobRunning`, answered 409 with the running job's id). A job whose process ends without a result
is failed, never run again (a retrain run twice is a waste, and a half-done one leaves the models as they were:
versions are written whole or not at all):
- the web worker that started it sees its process end (a crash, a kill) and fails it at once;
- the service stopping stops its jobs and fails them (`AdminJobs.close`);
- a job whose owner stopped saying it is alive for `HOST_TIMEOUT` s (its host died, or its web worker and the
  process with it) is failed by whichever worker next starts a job or asks for its status
  (`Store.fail_dead_jobs`), and so is a job still queued `UNCLAIMED_AFTER` s after it was queued (its process
  never started).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from common.errors import NothingToTrain, StylerecError
from recsys.service.job_runner import JobRunner
from recsys.service.server import with_parent_pid
from recsys.store import sqlite as store_module
from recsys.store.opener import open_store
from recsys.store.sqlite import NotFound, QueueFull, Store

log = logging.getLogger("stylerec.admin_jobs")
KIND = "admin"
TASKS = {
    "index": "rebuild the style index",
    "cf": "retrain collaborative filtering, then the feed's ranker",
    "ranker": "retrain the feed's ranker",
}
PENDING = ("queued", "running")
HOST_GONE = "its host or web worker stopped while it ran (no sign of life for {:.0f} s); not run again"
NEVER_STARTED = "its job process never started (queued {:.0f} s ago and not claimed)"
STOPPED = "stopped: the service stopped while it ran"
UNCLAIMED_AFTER = 120.0  # seconds a queued admin job waits for its process to claim it before it is failed


class JobRunning(StylerecError):
    """An admin job is already in flight (answered 409 with its id in `job_id`)."""

    http_status = 409

    def __init__(self, job_id: str | None) -> None:
        where = f" (job {job_id}: see /admin/jobs/{job_id})" if job_id else ""
        super().__init__(f"an admin job is already running{where}; one runs at a time, try again when it is done")
        self.job_id = job_id

    def body(self) -> dict:
        return {**super().body(), "job_id": self.job_id}


class AdminJobs:
    """The web side: start a job (one at a time, across processes and hosts) and report on it."""

    def __init__(self, store: Store, paths: dict[str, str | None]) -> None:
        """`paths`: the catalog's db, embeddings, index, models and device, as the job process will open it."""
        self.store, self.paths = store, paths
        self._processes: dict[str, subprocess.Popen] = {}  # jobs this process started, while they run
        self._stopping = False  # `close` ends the jobs: their reason is the service's stop, not their exit status

    def start(self, task: str) -> dict:
        """Queue a job and start its process; its status at once. `JobRunning` while another job is in flight."""
        if task not in TASKS:
            raise ValueError(f"unknown admin task {task!r}")
        self._fail_dead()  # a dead host's job no longer blocks the next one
        job_id = uuid.uuid4().hex[:16]
        try:
            self.store.enqueue_job(job_id, KIND, {"task": task, **self.paths}, KIND, max_pending=1, max_per_client=1)
        except QueueFull:
            raise JobRunning(self._pending_id()) from None
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "recsys.service.admin_jobs", str(self.paths["db"]), job_id],
                env=with_parent_pid({**os.environ, **_job_threads()}),
            )
        except OSError as exc:
            self.store.finish_job(job_id, "failed", {"error": f"could not start the job process: {exc}"})
            raise
        # Reaps the process (no zombie) and records a death that left no result (a crash, a kill).
        self._processes[job_id] = process
        threading.Thread(target=self._reap, args=(process, job_id), daemon=True, name=f"admin-job-{job_id}").start()
        log.info("admin job started", extra={"job_id": job_id, "task": task, "pid": process.pid})
        return self.status(job_id)

    def status(self, job_id: str) -> dict:
        """A job's state and, once done, its result (or its error). `NotFound` for an unknown id."""
        job = self.store.job(job_id)
        if job["kind"] != KIND:
            raise NotFound(f"unknown admin job {job_id!r}")
        if job["status"] in PENDING and self._fail_dead():
            job = self.store.job(job_id)
        return _job_out(job)

    def _pending_id(self) -> str | None:
        rows = self.store.jobs_with_status(KIND, PENDING)
        return rows[0] if rows else None

    def _fail_dead(self) -> int:
        """Fail the admin jobs whose owner is dead, or that no process claimed in `UNCLAIMED_AFTER` s."""
        failed = self.store.fail_dead_jobs(KIND, HOST_GONE.format(store_module.HOST_TIMEOUT))
        for job_id in self.store.jobs_with_status(KIND, ("queued",)):
            waited = time.time() - self.store.job(job_id)["created"]
            if waited > UNCLAIMED_AFTER:
                self.store.finish_job(job_id, "failed", {"error": NEVER_STARTED.format(waited)})
                failed += 1
        return failed

    def _reap(self, process: subprocess.Popen, job_id: str) -> None:
        code = process.wait()
        self._processes.pop(job_id, None)
        with contextlib.suppress(Exception):  # the store may be closed when the service stops
            if self.store.job(job_id)["status"] in PENDING:
                reason = STOPPED if self._stopping else f"the job process exited with status {code}"
                self.store.finish_job(job_id, "failed", {"error": reason})

    def close(self, wait: float = 10.0) -> None:
        """Stop the jobs this process started (the service is stopping): they are reported failed, and the models
        stay as they were (a new version is written whole or not at all)."""
        self._stopping = True
        processes = list(self._processes.items())
        for _, process in processes:
            process.terminate()
        for job_id, process in processes:
            try:
                process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(Exception):
                if self.store.job(job_id)["status"] in PENDING:
                    self.store.finish_job(job_id, "failed", {"error": STOPPED})


def _job_threads() -> dict[str, str]:
    """Every core for the job's numeric libraries (web workers run with one): it runs at a lower priority."""
    cpus = str(os.cpu_count() or 1)
    # It shares the cores with the web workers: OpenMP threads that spin while they wait for one another would
    # crawl (and take CPU from the workers) whenever a worker holds a core; sleeping ones do not.
    return {
        "OMP_WAIT_POLICY": "PASSIVE",
        **{v: cpus for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


def _job_out(job: dict) -> dict:
    result = job["result"] or {}
    done = job["status"] == "done"
    return {
        "id": job["id"],
        "task": job["payload"].get("task"),
        "status": job["status"],
        "result": result if done else None,
        "error": None if done else result.get("error"),
        "created": job["created"],
        "updated": job["updated"],
        "status_url": f"/admin/jobs/{job['id']}",
    }


def run_task(task: str, paths: dict) -> dict:
    """Do an admin task on the catalog at `paths` (what the job process runs); returns its result."""
    from recsys.shop.catalog import CatalogPaths, open_catalog

    if task == "cf":  # the batch step of `stylerec train`: no catalog opened, the workers swap the versions in
        return _train(paths)
    catalog = open_catalog(
        CatalogPaths(
            paths["db"], Path(paths["embeddings"]), Path(paths["index"]), Path(paths["models"]), paths["device"]
        ),
        build_missing=False,
    )
    try:
        if task == "index":
            return catalog.rebuild_index()
        if task == "ranker":
            return catalog.retrain_ranker()
        raise ValueError(f"unknown admin task {task!r}")
    finally:
        catalog.close()


def _train(paths: dict) -> dict:
    """Retrain CF, the item tables and the feed's ranker as `stylerec train` does; the answer names the versions."""
    from recsys.batch.train import TrainOptions, train_shop

    try:
        built = train_shop(
            paths["db"], paths["models"], paths["embeddings"], paths["index"], TrainOptions(progress=False)
        )
    except StylerecError:  # no events (`NothingToTrain`), bad data...
        raise
    except ValueError as exc:  # too little to train on
        raise NothingToTrain(str(exc)) from exc
    return {"users": built["shoppers"], "items": built["cf_items"], "version": built["cf"], **built}


def _work(job: dict) -> dict:
    """An admin job's work, as the runner calls it: the task's result and how long it took."""
    start = time.perf_counter()
    result = run_task(job["payload"]["task"], job["payload"])
    log.info("admin job done", extra={"job_id": job["id"], "task": job["payload"]["task"]})
    return {**result, "seconds": round(time.perf_counter() - start, 1)}


def _error_text(exc: Exception) -> str:
    """A job's error: what was missing (no events, no ratings) as it is, anything else with its type."""
    return str(exc) if isinstance(exc, StylerecError) else f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of a job process: `python -m recsys.service.admin_jobs DB JOB_ID`. It claims the queued admin
    job (one is queued at a time: JOB_ID, named on the command line for `ps`) and runs it; 1 when it failed."""
    from recsys.service import logs
    from recsys.service.server import die_with_parent

    die_with_parent()  # the web worker that started it killed: end too (the job is then reported failed)
    db, job_id = argv if argv is not None else sys.argv[1:]
    os.nice(10)  # the web workers' requests go first
    logs.configure()
    store = open_store(db)
    try:
        job = JobRunner(store, KIND, _work, error_text=_error_text).run_once()
        if job is None:
            log.warning("admin job %s: nothing to claim (failed or run meanwhile)", job_id)
            return 1
        if job["id"] != job_id:
            log.warning("admin job process for %s ran job %s (queued first)", job_id, job["id"])
        return 0 if store.job(job["id"])["status"] == "done" else 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
