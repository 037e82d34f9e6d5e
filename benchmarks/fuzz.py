"""Fuzz the whole OpenAPI schema with schemathesis against a running service: no request may get a 5xx.

    stylerec demo --no-serve          # once: the demo catalog, store and vectors in var/
    python benchmarks/fuzz.py [--max-examples 30] [--port 8766] [--checks conformance] [--engine postgresql]

Runs on a copy of the demo store, index and models (admin routes included, with a generated API key, so fuzzing
may add and delete items there), renders made tiny (64 px, 2 steps) so queued jobs do not swamp the machine. Exit
status is schemathesis's: 0 when every check passed. `--engine postgresql`: the store copied into a private
PostgreSQL cluster (`recsys.store.pg_local`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from recsys.store.copy_store import copy_store
from recsys.store.pg_local import LocalPostgres

sys.path.insert(0, os.path.dirname(__file__))
from serving import copy_shop, running_service

CONFORMANCE = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument(
        "--checks",
        default="not_a_server_error",
        help="schemathesis checks; 'conformance' = no 5xx and every status, content type, header and body as the "
        "schema says",
    )
    parser.add_argument("--workers", default="1", help="schemathesis's concurrent workers")
    parser.add_argument("--max-time", type=int, help="seconds: fuzzing and stateful tests repeat until spent")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--db", default="var/stylerec.db")
    parser.add_argument("--store", default="var/store")
    parser.add_argument("--index", default="var/index")
    parser.add_argument("--models", default="var/models")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stylerec-fuzz-"))
    env = copy_shop(args.db, args.store, args.index, args.models, work) | {
        "STYLEREC_API_KEY": "fuzz-key",
        "STYLEREC_UPLOADS_DIR": str(work / "uploads"),
        "STYLEREC_STYLES_DIR": str(work / "styles"),
        "STYLEREC_RENDER_SIZE": "64",
        "STYLEREC_RENDER_STEPS": "2",
    }
    cluster = LocalPostgres().start() if args.engine == "postgresql" else None
    if cluster is not None:
        env["STYLEREC_DB"] = cluster.create_database("shop")
        copy_store(work / "shop.db", env["STYLEREC_DB"])
    try:
        with running_service(args.port, env=env) as base:
            command = [
                str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/openapi.json",
                "--checks", CONFORMANCE if args.checks == "conformance" else args.checks,
                "--max-examples", str(args.max_examples), "--workers", args.workers,
                "--header", "X-API-Key: fuzz-key", "--seed", "1",
                *(["--max-time", str(args.max_time)] if args.max_time else []),
            ]  # fmt: skip
            return subprocess.run(command, check=False).returncode
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
