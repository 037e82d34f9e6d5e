"""Admin jobs: rebuilding the style index and retraining CF or the feed's ranker, as background jobs.

A retrain takes about a minute of CPU at H&M size. Run inside a request it held the answer that long and, in a web
worker, competed for the interpreter lock with every read. So `AdminJobs.start` answers at once: it records a job
in the store (kind `admin`) and starts it in a process of its own (`python -m recsys.service.admin_jobs DB JOB`,
at lower CPU priority). That process opens the catalog, does the work, writes the new persisted version
(`index.persistence.save_version`) and bumps the catalog's generation, so every web worker swaps the new version
in on its next request (`Catalog.catch_up`); then it records the job's result (or the error) in the store, where
any worker can answer `GET /admin/jobs/{id}`.

One admin job runs at a time, whichever worker process started it: the job process holds an exclusive `flock` on
<db>.admin-job.lock for as long as it lives (the starter takes the lock, then hands it to the process it starts).
A second start while the lock is held is refused (`JobRunning`, answered 409). The kernel drops the lock when the
process ends in any way, kill -9 included, so a job still marked pending while nobody holds the lock has lost its
process: it is marked failed when next looked at.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from recsys.service.server import with_parent_pid
from recsys.store import NotFound, Store
from recsys.stores import is_postgres, open_store

log = logging.getLogger("stylerec.admin_jobs")
KIND = "admin"
TASKS = {
    "index": "rebuild the style index",
    "cf": "retrain collaborative filtering, then the feed's ranker",
    "ranker": "retrain the feed's ranker",
}
PENDING = ("queued", "running")
ORPHANED = "the job process ended without a result (killed, or the service was stopped)"


class JobRunning(Exception):
    """An admin job is already in flight (answered 409 with its id)."""

    def __init__(self, job_id: str | None) -> None:
        where = f" (job {job_id}: see /admin/jobs/{job_id})" if job_id else ""
        super().__init__(f"an admin job is already running{where}; one runs at a time, try again when it is done")
        self.job_id = job_id


class AdminJobs:
    """The web side: start a job (one at a time, across processes) and report on it."""

    def __init__(self, store: Store, paths: dict[str, str | None]) -> None:
        """`paths`: the catalog's db, embeddings, index, models and device, as the job process will open it."""
        self.store, self.paths = store, paths
        self.lock_path = f"{paths['db']}.admin-job.lock"
        if is_postgres(str(paths["db"])):  # several hosts: the lock lives in the models folder they all share
            Path(str(paths["models"])).mkdir(parents=True, exist_ok=True)
            self.lock_path = str(Path(str(paths["models"])) / "admin-job.lock")
        self._processes: dict[str, subprocess.Popen] = {}  # jobs this process started, while they run

    def start(self, task: str) -> dict:
        """Record a job and start its process; its status at once. `JobRunning` while another job runs."""
        if task not in TASKS:
            raise ValueError(f"unknown admin task {task!r}")
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._lock(fd)  # JobRunning while another job runs
            self._fail_orphans()  # we hold the lock: no job process is alive
            job_id = uuid.uuid4().hex[:16]
            self.store.put_job(job_id, KIND, "queued", {"task": task, **self.paths})
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "recsys.service.admin_jobs", str(self.paths["db"]), job_id, str(fd)],
                    pass_fds=(fd,),  # the job process keeps the lock (same open file) until it ends
                    env=with_parent_pid({**os.environ, **_job_threads()}),
                )
            except OSError as exc:
                self.store.finish_job(job_id, "failed", {"error": f"could not start the job process: {exc}"})
                raise
        finally:
            os.close(fd)
        # Reaps the process (no zombie) and records a death that left no result (a crash, a kill).
        self._processes[job_id] = process
        threading.Thread(target=self._reap, args=(process, job_id), daemon=True, name=f"admin-job-{job_id}").start()
        log.info("admin job started", extra={"job_id": job_id, "task": task, "pid": process.pid})
        return self.status(job_id)

    def _lock(self, fd: int) -> None:
        """Take the admin-job lock, or `JobRunning`. A job process marks its job done, then lets the lock go:
        the lock held with no job pending is that moment, so it is tried again for a little while."""
        for _ in range(50):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pending = self._pending_id()
                if pending is not None:
                    raise JobRunning(pending) from None
                time.sleep(0.02)
        raise JobRunning(None)

    def status(self, job_id: str) -> dict:
        """A job's state and, once done, its result (or its error). `NotFound` for an unknown id."""
        job = self.store.job(job_id)
        if job["kind"] != KIND:
            raise NotFound(f"unknown admin job {job_id!r}")
        if job["status"] in PENDING and not self._running():  # its process is gone
            self.store.finish_job(job_id, "failed", {"error": ORPHANED})
            job = self.store.job(job_id)
        return _job_out(job)

    def _running(self) -> bool:
        """Whether a job process holds the lock (probed with a shared lock, which the holder's excludes)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock taken here

    def _pending_id(self) -> str | None:
        rows = self.store.jobs_with_status(KIND, PENDING)
        return rows[0] if rows else None

    def _fail_orphans(self) -> None:
        for job_id in self.store.jobs_with_status(KIND, PENDING):
            self.store.finish_job(job_id, "failed", {"error": ORPHANED})

    def _reap(self, process: subprocess.Popen, job_id: str) -> None:
        code = process.wait()
        self._processes.pop(job_id, None)
        with contextlib.suppress(Exception):  # the store may be closed when the service stops
            if self.store.job(job_id)["status"] in PENDING:
                self.store.finish_job(job_id, "failed", {"error": f"the job process exited with status {code}"})

    def close(self, wait: float = 10.0) -> None:
        """Stop the jobs this process started (the service is stopping): they are reported failed, and the models
        stay as they were (a new version is written whole or not at all)."""
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
                    self.store.finish_job(job_id, "failed", {"error": "stopped: the service stopped while it ran"})


def _job_threads() -> dict[str, str]:
    """Every core for the job's numeric libraries (web workers run with one): it runs at a lower priority."""
    cpus = str(os.cpu_count() or 1)
    return {v: cpus for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


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
    from recsys.catalog import CatalogPaths, open_catalog

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
    except ValueError as exc:  # no events
        raise NotFound(str(exc)) from exc
    return {"users": built["shoppers"], "items": built["cf_items"], "version": built["cf"], **built}


def main(argv: list[str] | None = None) -> int:
    """Entry point of a job process: `python -m recsys.service.admin_jobs DB JOB_ID LOCK_FD` (LOCK_FD: the
    admin-job lock, held by this process from its start; let go once the job's outcome is recorded)."""
    from recsys.service import logs
    from recsys.service.server import die_with_parent

    die_with_parent()  # the web worker that started it killed: end too (the job is then reported failed)
    db, job_id, lock_fd = argv if argv is not None else sys.argv[1:]
    os.nice(10)  # the web workers' requests go first
    logs.configure()
    store = open_store(db)
    try:
        job = store.job(job_id)
        store.finish_job(job_id, "running")
        start = time.perf_counter()
        try:
            result = run_task(job["payload"]["task"], job["payload"])
        except NotFound as exc:
            store.finish_job(job_id, "failed", {"error": str(exc)})
            return 1
        except Exception as exc:  # reported through the job's status
            log.exception("admin job %s failed", job_id)
            store.finish_job(job_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            return 1
        store.finish_job(job_id, "done", {**result, "seconds": round(time.perf_counter() - start, 1)})
        log.info("admin job done", extra={"job_id": job_id, "task": job["payload"]["task"]})
        return 0
    finally:
        store.close()
        fcntl.flock(int(lock_fd), fcntl.LOCK_UN)  # now: not when the interpreter is done shutting down


if __name__ == "__main__":
    sys.exit(main())
