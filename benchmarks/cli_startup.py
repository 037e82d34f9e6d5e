"""How long `stylerec` takes to start: `python -m recsys.cli --help` (the parser assembled from the command groups,
the settings object imported), repeated, for one or more checkouts.

    python benchmarks/cli_startup.py                        # this checkout, 20 runs
    python benchmarks/cli_startup.py --runs 30 . /tmp/base  # this checkout beside another (e.g. `git archive` of
                                                            # the commit before), the runs interleaved

Every run is a fresh interpreter (the cost a shell user pays on each command); prints min / median / p90 in ms per
checkout, and the machine's load average (the figures move with it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def startup_ms(checkout: Path) -> float:
    """Milliseconds of one `python -m recsys.cli --help` in `checkout`."""
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "recsys.cli", "--help"], env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="*", default=["."], type=Path)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    times: dict[Path, list[float]] = {c: [] for c in args.checkouts}
    for checkout in args.checkouts:
        startup_ms(checkout)  # warm the file cache
    for _ in range(args.runs):
        for checkout in args.checkouts:  # interleaved: a change in the machine's load hits every checkout alike
            times[checkout].append(startup_ms(checkout))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {args.runs} runs each")
    for checkout, ms in times.items():
        ms.sort()
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        print(f"{checkout}: min {ms[0]:.0f} ms, median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms")


if __name__ == "__main__":
    main()
