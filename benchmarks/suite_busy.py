"""The test suite on a busy machine: `pytest -q` with N CPU-bound neighbours (`python -c "while 1: pass"`, at
normal priority) running beside it; its wall time, its result line, the slowest tests and the load average.

    python benchmarks/suite_busy.py --neighbours 1 --durations 40 [-- PYTEST ARGS]

`--neighbours 0` measures the suite alone (on a shared machine the load average says how quiet it was).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def busy_neighbours(count: int) -> Iterator[None]:
    """`count` CPU-bound processes (`python -c "while 1: pass"`, normal priority) for the duration of the block."""
    neighbours = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for neighbour in neighbours:
            neighbour.kill()
            neighbour.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the suite beside `--neighbours` busy loops; print the figures; pytest's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neighbours", type=int, default=1, help="CPU-bound processes beside the suite")
    parser.add_argument("--durations", type=int, default=40, help="the slowest tests to list")
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest (after --)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    start = time.monotonic()
    with busy_neighbours(args.neighbours):
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--durations={args.durations}"]
        done = subprocess.run([*command, *args.pytest_args], cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    load_after = os.getloadavg()
    print(done.stdout[-20_000:], done.stderr[-2_000:], sep="\n")
    print(f"neighbours: {args.neighbours}; pytest exit status {done.returncode}; wall {wall / 60:.1f} min")
    print(f"load average (1/5/15 min): before {load_before}, after {load_after}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
