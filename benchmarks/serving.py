"""Shared by the service benchmarks: `stylerec serve` in a subprocess, ready when /health answers."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def one_compute_thread() -> None:
    """One BLAS/OpenMP thread, as `stylerec serve` runs its web workers (a value set outside wins): call it before
    numpy and FAISS load, so an in-process measurement pays what a worker pays."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def start_service(
    port: int, args: list[str] | None = None, env: dict | None = None, ceiling_s: float = 120.0, **popen
) -> subprocess.Popen:
    """`stylerec serve --port PORT ARGS` in a subprocess (environment `env` over this one's, `popen` passed to
    `Popen`), returned once /health answers 200; RuntimeError when it has not within `ceiling_s` seconds."""
    command = [sys.executable, "-m", "recsys.cli", "serve", "--port", str(port), *(args or [])]
    server = subprocess.Popen(command, env={**os.environ, **(env or {})}, **popen)
    deadline = time.monotonic() + ceiling_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"the service on port {port} did not answer /health within {ceiling_s:.0f} s")


@contextmanager
def running_service(port: int, args: list[str] | None = None, env: dict | None = None) -> Iterator[str]:
    """Start the service on `port` (extra CLI `args`, environment `env`), yield its base URL, stop it after."""
    server = start_service(port, args, {"PYTHONUNBUFFERED": "1", **(env or {})})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def copy_shop(db: str, store: str, index: str, models: str, work: Path) -> dict[str, str]:
    """Copy a shop's database (a consistent SQLite backup, WAL included), index and models into `work`, so a run
    that writes (events, rebuilds, retrains) leaves the original alone; returns the environment that serves the copy
    (the embedding store is read-only and shared)."""
    source, copy = sqlite3.connect(db), sqlite3.connect(work / "shop.db")
    source.backup(copy)
    source.close()
    copy.close()
    for folder in (index, models):
        if Path(folder).exists():
            shutil.copytree(folder, work / Path(folder).name)
    return {
        "STYLEREC_DB": str(work / "shop.db"),
        "STYLEREC_EMBEDDINGS": store,
        "STYLEREC_INDEX": str(work / Path(index).name),
        "STYLEREC_MODELS": str(work / Path(models).name),
        "STYLEREC_RENDERS_DIR": str(work / "renders"),
    }


def add_shop_flags(parser) -> None:
    """--db, --models (required), --embeddings, --index: the shop a benchmark opens in process."""
    parser.add_argument("--db", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--embeddings", default="/nonexistent")
    parser.add_argument("--index", default="/nonexistent")


def shop_paths(args):
    """The `CatalogPaths` of `add_shop_flags`' flags (imported here, after the caller set its thread variables)."""
    from recsys.shop.catalog import CatalogPaths

    return CatalogPaths(
        db=Path(args.db), embeddings=Path(args.embeddings), index=Path(args.index), models=Path(args.models)
    )
