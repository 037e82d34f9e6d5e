"""Embedding the demo catalog's 288 images (96 px, 64-d, as the suite's session shop) beside N CPU-bound
neighbours, under each OpenMP setting: two threads that spin while they wait (the libraries' default), one thread,
and two threads that sleep while they wait (`OMP_WAIT_POLICY=PASSIVE`, what the suite and admin jobs use).

    python benchmarks/omp_wait.py [--neighbours 0,1] [--settings default,one-thread,passive]

Each run is a fresh process (the settings are read when the libraries load); prints one JSON line per run with
its wall time. Compare the settings within one neighbour count (a shared machine's speed drifts between runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from suite_busy import busy_neighbours

SETTINGS = {
    "default": {},
    "one-thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
}
EMBED = """
import sys, time
from pathlib import Path
from transfer.embed import embed_folder
from transfer.encoder import EncoderConfig
start = time.perf_counter()
embed_folder(Path(sys.argv[1]), Path(sys.argv[2]), EncoderConfig(image_size=96, dim=64), progress=False)
print(time.perf_counter() - start)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neighbours", default="0,1", help="neighbour counts to run, comma-separated")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"some of {', '.join(SETTINGS)}")
    args = parser.parse_args()
    from recsys.shop.demo import make_demo_catalog

    with tempfile.TemporaryDirectory() as work:
        catalog = Path(work) / "demo"
        make_demo_catalog(catalog)
        base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", *SETTINGS["one-thread"])}
        for count in (int(n) for n in args.neighbours.split(",")):
            with busy_neighbours(count):
                for name in args.settings.split(","):
                    out = Path(work) / f"store-{count}-{name}"
                    started = time.perf_counter()
                    done = subprocess.run(
                        [sys.executable, "-c", EMBED, str(catalog / "images"), str(out)],
                        env={**base, **SETTINGS[name]},
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    print(json.dumps({
                        "neighbours": count, "setting": name, "embed_s": round(float(done.stdout.split()[-1]), 1),
                        "process_s": round(time.perf_counter() - started, 1), "load_average": os.getloadavg(),
                    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
