"""The one job runner: claims jobs of one kind from the store's queue, runs them, records the outcome.

Render jobs and admin jobs are rows of one table (`jobs`) in either store, queued with `Store.enqueue_job`
(bounded, deduplicated), claimed with `Store.claim_job` (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so hosts claiming
at once take different jobs; the claimer is recorded as the job's owner and says it is alive while it runs) and
finished with `Store.finish_job`. What differs between the kinds is only the work done for a job, and what happens
to a job whose runner died:

- render jobs are queued again (`recover`: after a restart, and on a shared store every `RECOVER_EVERY` s for the
  jobs of a host that stopped saying it is alive), and failed once interrupted `max_attempts` times;
- admin jobs are failed with the reason (`Store.fail_dead_jobs`): a retrain is not run twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from recsys.store.sqlite import Store

log = logging.getLogger("stylerec.jobs")
RECOVER_EVERY = 10.0  # seconds between looks for a dead host's jobs (PostgreSQL: several hosts share the queue)


class JobRunner:
    """Runs the jobs of one `kind`, one at a time, in the process that calls it. `work(job)` does a job (the row
    as `Store.job` gives it) and returns its result (or None); an exception fails the job with
    `error_text(exc)` as its error, never loses it."""

    def __init__(
        self,
        store: Store,
        kind: str,
        work: Callable[[dict], dict | None],
        max_attempts: int = 1,
        error_text: Callable[[Exception], str] = str,
    ) -> None:
        self.store, self.kind, self.work = store, kind, work
        self.max_attempts, self.error_text = max_attempts, error_text

    def recover(self) -> tuple[int, int]:
        """Jobs left running by a previous runner (a restart) or a dead host: queued again, or failed once they
        have been interrupted `max_attempts` times. Returns (re-queued, failed)."""
        requeued, failed = self.store.recover_jobs(self.kind, self.max_attempts)
        if requeued or failed:
            log.warning("%s jobs left running by a restart: %d queued again, %d failed", self.kind, requeued, failed)
        return requeued, failed

    def run_once(self) -> dict | None:
        """Claim the oldest queued job and run it; the job as claimed, or None when none waited."""
        job = self.store.claim_job(self.kind)
        if job is None:
            return None
        try:
            result = self.work(job)
        except Exception as exc:  # a failed job is reported through its status, never lost
            log.exception("%s job %s failed", self.kind, job["id"])
            self.store.finish_job(job["id"], "failed", {"error": self.error_text(exc)})
        else:
            self.store.finish_job(job["id"], "done", result)
        return job

    def run(self, stop: threading.Event, poll: float = 0.5) -> None:
        """Recover, then run jobs until `stop` is set (polling the store when the queue is empty; on a store
        shared by several hosts, recovering a dead host's jobs every `RECOVER_EVERY` s)."""
        self.recover()
        recovered = time.monotonic()
        while not stop.is_set():
            if getattr(self.store, "shared", False) and time.monotonic() - recovered > RECOVER_EVERY:
                self.recover()
                recovered = time.monotonic()
            if self.run_once() is None:
                stop.wait(poll)
