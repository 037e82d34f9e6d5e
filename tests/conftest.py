"""Shared fixtures: the dataset folder (tests that need it skip cleanly without it) and a small demo catalog; and
the suite's one way to wait (`wait_until`: on the event, with a generous ceiling, never a deadline a busy machine
misses) with the admin-job helpers built on it (`admin_job_end`, `job_process`, `cancel_admin_jobs`)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parents[1]

# The suite shares its machine (CI runners, other jobs). OpenMP threads (torch, FAISS, LightGBM) that spin while
# they wait for one another crawl when another process holds a core: the demo's 288 images took 109 s to embed
# beside one CPU-bound job, 73 s with threads that sleep while they wait (39 s either way on a quiet machine,
# BENCHMARKS.md, issue 25). Set before any of those libraries loads; inherited by the services and jobs the tests
# start; a value set outside wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def datasets_dir() -> Path:
    return Path(os.environ.get("STYLEREC_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    root = datasets_dir()
    if not root.is_dir():
        pytest.skip(f"real datasets not found at {root} (set STYLEREC_DATASETS)")
    return root


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory) -> Path:
    """The full generated demo catalog (288 items), made once per test session."""
    from recsys.shop.demo import make_demo_catalog

    out = tmp_path_factory.mktemp("demo")
    make_demo_catalog(out)
    return out


@pytest.fixture(scope="session")
def demo_shop(demo_catalog, tmp_path_factory):
    """The demo catalog with its synthetic shoppers and small, fast style vectors (96 px, 64-d)."""
    from recsys.shop.catalog import catalog_style_space
    from recsys.shop.shoppers import make_demo_shoppers
    from transfer.embed import embed_folder
    from transfer.encoder import EncoderConfig

    make_demo_shoppers(demo_catalog)
    embeddings = tmp_path_factory.mktemp("demo-embeddings")
    embed_folder(demo_catalog / "images", embeddings, EncoderConfig(image_size=96, dim=64), progress=False)
    return demo_catalog, embeddings, catalog_style_space(demo_catalog, embeddings)


@pytest.fixture(scope="session")
def service_settings(demo_shop, tmp_path_factory):
    """Service settings over the demo shop in a temporary SQLite store (admin key `secret`, tiny renders)."""
    from recsys.settings import Settings
    from recsys.store.data_io import read_catalog, read_interactions
    from recsys.store.sqlite import Store

    catalog_dir, embeddings, style = demo_shop
    root = tmp_path_factory.mktemp("service")
    store = Store(root / "shop.db")
    store.import_items(read_catalog(catalog_dir), "demo")
    store.import_interactions(read_interactions(catalog_dir / "interactions.csv"), "interactions.csv")
    for name, item in (("stripes", "D0010"), ("dots", "D0026")):  # red/cream stripes, red/cream dots
        store.put_style(name, str(catalog_dir / "images" / f"{item}.jpg"), style.vector(item), style.model_id)
    store.close()
    return Settings(
        db=root / "shop.db",
        embeddings=embeddings,
        index=root / "index",
        models=root / "models",
        styles_dir=root / "styles",
        renders_dir=root / "renders",
        uploads_dir=root / "uploads",
        api_key="secret",
        render_size=64,
        render_steps=4,
        max_upload_bytes=2_000_000,
        max_pixels=4_000_000,
    )


# -- PostgreSQL: one private cluster per test session (Debian's `postgresql` package), a fresh database per test ---
@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster (`recsys.store.pg_local`), or a skip naming why none can be started here."""
    from recsys.store.pg_local import LocalPostgres, NoPostgres

    cluster = LocalPostgres(fsync=False)  # throwaway data: no disk syncs in tests
    try:
        cluster.start()
    except NoPostgres as exc:
        cluster.stop()
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A new, empty store of each engine: an SQLite file path, or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "shop.db")
    cluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")


# -- waiting: for the event, with a ceiling (not a deadline) ---------------------------------------------------------
T = TypeVar("T")
# Generous on purpose: admin jobs run at nice 10 and, beside a CPU-bound neighbour on 2 cores, take minutes. A test
# that passes waits for its event, never for the ceiling; the ceiling only ends a test that would otherwise hang.
CEILING_S = 1800.0


def wait_until(
    predicate: Callable[[], T], what: str | Callable[[], str], ceiling: float = CEILING_S, every: float = 0.05
) -> T:
    """Poll `predicate` until it returns something truthy, and return that. Past `ceiling` seconds the test fails
    saying what it waited for (`what`, or `what()` for a message that reports the last state seen)."""
    start = time.monotonic()
    while not (value := predicate()):
        waited = time.monotonic() - start
        if waited > ceiling:
            pytest.fail(f"gave up after {waited:.0f} s (the ceiling) waiting for {what() if callable(what) else what}")
        time.sleep(every)
    return value


# -- admin jobs (a process each): waited for by the test that starts one, cancelled in teardown if one is left -----
ADMIN_KEY = {"X-API-Key": "secret"}
PENDING = ("queued", "running")


def admin_job_end(client, status_url: str) -> dict:
    """Wait for the admin job at `status_url` (asked of `client`, any host) to leave queued/running; its last
    status (done or failed)."""
    last: dict = {}

    def ended() -> dict | None:
        last.clear()
        last.update(client.get(status_url, headers=ADMIN_KEY).json())
        return dict(last) if last.get("status") not in PENDING else None

    return wait_until(ended, lambda: f"admin job {status_url} to end (last seen: {last})", every=0.2)


def job_pids(job_id: str) -> list[int]:
    """The processes whose command line names the job (an admin job's process: `... admin_jobs DB JOB`)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if job_id in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0"):
                    pids.append(int(proc.name))
    return pids


def job_process(job_id: str) -> int:
    """The pid of the process running the admin job `job_id`, waited for until it has started."""
    return wait_until(lambda: job_pids(job_id), f"the process of admin job {job_id} to start", every=0.02)[0]


def cancel_admin_jobs(db: str | Path) -> list[str]:
    """End every admin job still queued or running in the store at `db` (a test's teardown: one test's job must
    not make the next one's start a 409): its process is killed and the job marked failed. The ids cancelled."""
    from recsys.store.opener import open_store

    store = open_store(str(db))
    try:
        left = store.jobs_with_status("admin", PENDING)
        for job_id in left:
            for pid in job_pids(job_id):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            wait_until(lambda job_id=job_id: not job_pids(job_id), f"admin job {job_id}'s killed process to end")
            if store.job(job_id)["status"] in PENDING:  # (the web worker that started it may have marked it already)
                store.finish_job(job_id, "failed", {"error": "cancelled by the teardown of the test that left it"})
    finally:
        store.close()
    return left


def private_service(settings, root: Path):
    """`settings` over a private copy of its SQLite store, index and models under `root` (renders, uploads and
    styles in empty folders of its own): for a module or test that writes (events, items, retrains, rebuilds), so
    nothing it does reaches the session's shared demo service or the tests that run after it."""
    import shutil
    import sqlite3

    root.mkdir(parents=True, exist_ok=True)
    source, copy = sqlite3.connect(settings.db), sqlite3.connect(root / "shop.db")
    source.backup(copy)
    source.close()
    copy.close()
    for name in ("index", "models"):
        if Path(getattr(settings, name)).is_dir():
            shutil.copytree(getattr(settings, name), root / name)
    return settings.model_copy(
        update={
            "db": root / "shop.db",
            "index": root / "index",
            "models": root / "models",
            "renders_dir": root / "renders",
            "uploads_dir": root / "uploads",
            "styles_dir": root / "styles",
        }
    )
