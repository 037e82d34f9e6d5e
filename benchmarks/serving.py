"""Shared by the service benchmarks: `stylerec serve` in a subprocess, ready when /health answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def running_service(port: int, args: list[str] | None = None, env: dict | None = None) -> Iterator[str]:
    """Start the service on `port` (extra CLI `args`, environment `env`), yield its base URL, stop it after."""
    command = [sys.executable, "-m", "recsys.cli", "serve", "--port", str(port), *(args or [])]
    server = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(1)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
