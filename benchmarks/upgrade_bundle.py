"""Republish a models folder's served CF and tables in the memory-mapped layout, without retraining.

    python benchmarks/upgrade_bundle.py --models MODELS

For a folder `stylerec train` wrote before the served arrays (CF as `model.npz` + JSON user ids; tables without
the co-purchase arrays): the current CF version is loaded and saved again as `.npy` arrays (`recsys.models.cf_arrays`),
the current tables version is copied with the co-purchase arrays added (`recsys.batch.served`), each as a new
version (the old ones stay until pruned). The same models, so a worker's open, memory and latency can be compared
before and after on one shop. Running workers pick them up at their next reload.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pandas as pd


def upgrade(models: Path) -> dict:
    """New CF and tables versions of the current ones in the mapped layout; returns their names and seconds."""
    from index.persistence import current_version, save_version
    from recsys.batch.bundle import CO_PURCHASES_FILE, TABLES_DIR
    from recsys.batch.served import write_co_purchases
    from recsys.models.cf import CollaborativeFilter
    from recsys.shop.catalog import CF_DIR, MODEL_VERSIONS_KEPT, TRAINED_FILE

    out: dict = {}
    started = time.perf_counter()
    cf_dir = models / CF_DIR
    source = cf_dir / current_version(cf_dir)
    cf = CollaborativeFilter.load(source)

    def write_cf(folder: Path) -> None:
        cf.save(folder)
        shutil.copy(source / TRAINED_FILE, folder / TRAINED_FILE)

    out["cf"] = save_version(cf_dir, write_cf, keep=MODEL_VERSIONS_KEPT)
    out["cf_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    tables_dir = models / TABLES_DIR
    tables = tables_dir / current_version(tables_dir)

    def write_tables(folder: Path) -> None:
        for path in tables.iterdir():
            shutil.copy(path, folder / path.name)
        write_co_purchases(folder, pd.read_parquet(tables / CO_PURCHASES_FILE))

    out["tables"] = save_version(tables_dir, write_tables, keep=MODEL_VERSIONS_KEPT)
    out["tables_s"] = round(time.perf_counter() - started, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=Path)
    args = parser.parse_args()
    print(json.dumps(upgrade(args.models)))


if __name__ == "__main__":
    main()
