"""A private, throwaway PostgreSQL cluster on this machine, for the tests and the benchmarks.

`LocalPostgres` runs Debian's PostgreSQL binaries (`apt-get install postgresql`; `initdb` is looked up on PATH
and in /usr/lib/postgresql/*/bin) in a folder of its own, on a free port of 127.0.0.1, trusting local
connections; `stop` ends it and removes the folder. As root it runs the server as the `postgres` user
(`initdb` refuses root). `python -m recsys.store.pg_local FOLDER` starts one and prints its URL (stopped on Ctrl-C).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from common.errors import StylerecError


class NoPostgres(StylerecError, RuntimeError):
    """No PostgreSQL server can be started here (its message says why): 503."""

    http_status = 503


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise NoPostgres(f"no PostgreSQL {name} here (apt-get install postgresql)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """One private cluster: `start()`, `url(database)`, `create_database(name)`, `stop()`."""

    def __init__(self, folder: str | os.PathLike | None = None, fsync: bool = True) -> None:
        self.folder = Path(folder or tempfile.mkdtemp(prefix="stylerec-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.fsync = fsync
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise NoPostgres(f"{' '.join(command[:2])} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> LocalPostgres:
        """initdb and start the server; `NoPostgres` when that cannot be done here."""
        initdb = _binary("initdb")
        if self._as and shutil.which("runuser") is None:
            raise NoPostgres("running as root without runuser: cannot start PostgreSQL as another user")
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-instructions")
        self.restart()
        return self

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            f"-c fsync={'on' if self.fsync else 'off'} -c shared_buffers=64MB"
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def kill(self) -> None:
        """Stop the server at once (`pg_ctl stop -m immediate`: like a crash, recovery on the next start)."""
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def restart(self) -> None:
        """Start the (initialised) server again, on the same port."""
        log = str(self.folder / "server.log")
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-l", log, "-o", self._options(), "-w", "start")

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        with contextlib.suppress(NoPostgres):  # never started, or already gone
            self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def main() -> None:
    import sys

    cluster = LocalPostgres(sys.argv[1] if len(sys.argv) > 1 else None).start()
    print(cluster.url(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
