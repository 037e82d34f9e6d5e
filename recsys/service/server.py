"""How the service's processes are run: uvicorn's options (whose addresses to believe) and the lifeline that ends a
child process with its parent.

`stylerec serve` is a tree: the supervisor, its web workers (uvicorn), its render worker, and each web worker's
photo-embedding process. Each child watches its parent (`die_with_parent`): when the parent is gone, whatever
killed it (SIGKILL included), the child ends too, so no web worker keeps answering on the port and no embedding
process is left holding its memory. A watchdog on the parent's pid is used rather than `PR_SET_PDEATHSIG`: that
signal fires when the *thread* that started the child ends, and the embedding pool may be started from a
short-lived thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recsys.settings import Settings

log = logging.getLogger("stylerec.service")
WATCH_EVERY = 0.25  # seconds between looks at the parent
PARENT_PID = "STYLEREC_PARENT_PID"  # set by a parent in the environment of a child it starts (see `parent_pid`)


def uvicorn_options(settings: Settings) -> dict:
    """uvicorn's proxy options from the settings: X-Forwarded-* believed only from `trusted_proxies` (none by
    default: uvicorn would otherwise believe any header sent from 127.0.0.1, so one local client could pose as
    many and fill the render queue)."""
    trusted = settings.trusted_proxies.strip()
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def parent_pid() -> int:
    """The pid of the process that started this one, as it was at the start: `STYLEREC_PARENT_PID` when the
    parent set it (taken out of the environment, so this process's own children do not inherit it), else the
    multiprocessing parent, else the current parent. A child that looked only at `os.getppid()` late in its start
    (after slow imports) would take init for its parent when the real one had died meanwhile."""
    given = os.environ.pop(PARENT_PID, "")
    if given.isdigit():
        return int(given)
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getppid()


def with_parent_pid(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child process that will call `die_with_parent`: this process's pid in it."""
    return {**env, PARENT_PID: str(os.getpid())}


def die_with_parent(
    parent: int | None = None, on_death: Callable[[], None] | None = None, grace: float = 5.0
) -> threading.Thread:
    """Watch the parent process (`parent`, default `parent_pid()`) from a daemon thread; once it is gone, call
    `on_death` (default: nothing), then end this process (`os._exit`) after at most `grace` seconds."""
    parent = parent_pid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_EVERY)
        log.warning("parent process %d is gone: stopping", parent)
        if on_death is not None:
            timer = threading.Timer(grace, os._exit, (1,))
            timer.daemon = True
            timer.start()
            try:
                on_death()
                return
            except Exception:  # the exit below still happens
                log.exception("stopping after the parent's death failed")
        os._exit(1)

    thread = threading.Thread(target=watch, name="lifeline", daemon=True)
    thread.start()
    return thread


def stop_self() -> None:
    """Ask this process to stop as on SIGTERM (a uvicorn worker then shuts down gracefully, closing its pools)."""
    os.kill(os.getpid(), signal.SIGTERM)


def supervisor(config, sockets: list, companions: list, grace: float = 5.0):
    """uvicorn's worker supervisor with a bounded stop: on SIGTERM/SIGINT the web workers and the `companions`
    (subprocesses such as the render worker) are told to stop together, and whatever has not ended `grace`
    seconds later is killed (uvicorn alone stops them one after the other and waits for each without a bound)."""
    import subprocess

    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def terminate_all(self) -> None:
            for companion in companions:
                if companion.poll() is None:
                    companion.terminate()
            super().terminate_all()

        def join_all(self) -> None:
            deadline = time.monotonic() + grace
            for process in self.processes:
                process.process.join(max(0.0, deadline - time.monotonic()))
                if process.process.is_alive():
                    log.warning("web worker %s did not stop in %.0f s: killed", process.pid, grace)
                    process.process.kill()
                    process.process.join()
            for companion in companions:
                try:
                    companion.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    companion.kill()  # a render it was running is queued again when the next worker starts
                    companion.wait()

    return Supervisor(config, sockets=sockets)


def end_resource_tracker() -> None:
    """End this process's multiprocessing resource tracker (started for the spawned web workers), once they are
    stopped: it would otherwise wait for every process that inherited its pipe (an embedding process still
    starting up, say) and outlive `stylerec serve`. It ignores SIGTERM, so SIGKILL."""
    from multiprocessing import resource_tracker

    pid = getattr(resource_tracker._resource_tracker, "_pid", None)  # no public accessor
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
