"""`stylerec train`: every model of a shop, built from its events out of core and published as new versions.

Stages (a progress bar each): export the events to Parquet in chunks (`recsys.batch.export`); item tables and
co-purchase lists as DuckDB grouped counts over that file (`recsys.batch.tables`); collaborative filtering on the
(shopper, item, summed weight) table DuckDB aggregates; the feed's ranker on training windows built one at a
time over a sample of shoppers (`recsys.batch.windows.iter_folds`). Each model is written as a new immutable
version (a version folder, then one atomic rename of CURRENT: `index.persistence.save_version`) under
<models>/cf, <models>/ranker and <models>/tables, and the store's catalog generation is bumped so that running
web workers swap them in. The service's admin retrain jobs call `train_shop` too.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from common.errors import NothingToTrain
from recsys.batch.bundle import (
    CO_PURCHASES_FILE,
    ITEMS_FILE,
    MANIFEST_FILE,
    STYLE_FILE,
    TABLES_DIR,
    TABLES_FORMAT,
    write_style_neighbours,
)
from recsys.batch.engine import connect
from recsys.batch.export import export_events
from recsys.batch.served import write_co_purchases
from recsys.batch.tables import co_purchase_table, item_table
from recsys.batch.windows import fit_cf
from recsys.candidates.base import _style_neighbour_popularity

log = logging.getLogger(__name__)


# events the ranker's windows read in all, by default: each window's snapshot (item tables, co-purchases, CF) costs
# about its events, so a big shop trains on fewer windows (30 at 1/100 of H&M, 19 at 1/10, 2 at full size)
WINDOW_EVENT_BUDGET = 60_000_000
MIN_WINDOWS = 2


def default_windows(events: int, configured: int) -> int:
    """The ranker's windows when `--windows` is not given: the configured number, fewer for a shop whose windows
    would read more than WINDOW_EVENT_BUDGET events in all (never under MIN_WINDOWS)."""
    return max(min(configured, MIN_WINDOWS), min(configured, WINDOW_EVENT_BUDGET // max(int(events), 1)))


@dataclass
class TrainOptions:
    """What `train_shop` builds: `sample_shoppers` per ranker window (None: the ranker config's), `windows` (None:
    the config's, fewer for a big shop: `default_windows`), `ranker`: False to leave the served ranker as it is."""

    sample_shoppers: int | None = None
    windows: int | None = None
    ranker: bool = True
    together_days: float = 7.0
    progress: bool = True


def train_shop(
    db: str | os.PathLike,
    models: str | os.PathLike,
    embeddings: str | os.PathLike | None = None,
    index: str | os.PathLike | None = None,
    options: TrainOptions | None = None,
) -> dict:
    """Build every model of the shop in the store `db` as new versions under `models`; returns what was built
    (versions, sizes, seconds per stage). `embeddings` (an embedding store) turns the style features on."""
    from index.persistence import save_version
    from recsys.models.cf import CFConfig
    from recsys.models.ranker import RANKER_DIR
    from recsys.shop.catalog import CF_DIR, GENERATION, MODEL_VERSIONS_KEPT, TRAINED_FILE

    o = options or TrainOptions()
    models = Path(models)
    seconds: dict[str, float] = {}
    out: dict = {}
    stages = tqdm(total=5 if o.ranker else 4, desc="stylerec train", unit="stage", disable=not o.progress)

    cpu: dict[str, float] = {}
    peak_rss_gb: dict[str, float] = {}
    cpu_mark = [time.process_time()]

    def done(stage: str, started: float) -> None:
        seconds[stage] = round(time.perf_counter() - started, 2)
        cpu[stage], cpu_mark[0] = round(time.process_time() - cpu_mark[0], 2), time.process_time()
        peak_rss_gb[stage] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20), 2)  # so far
        stages.update(1)
        log.info("train: %s in %.1f s (%.1f s CPU, peak RSS %.2f GB)", stage, seconds[stage], cpu[stage],
                 peak_rss_gb[stage])  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="stylerec-train-") as tmp:
        started = time.perf_counter()
        events_file, last_event_id = export_events(db, Path(tmp) / "events.parquet", progress=o.progress)
        done("export", started)
        con = connect()
        try:
            events = f"SELECT * FROM read_parquet('{events_file}')"
            count, latest = con.execute(f"SELECT count(*), max(timestamp) FROM ({events})").fetchone()
            if not count:
                raise NothingToTrain(f"no events in {db} to train on")
            now = float(latest) + 1.0
            out["events"], out["last_event_id"] = int(count), last_event_id

            started = time.perf_counter()
            style = _open_style(db, embeddings, index)
            items = item_table(con, events, now)
            pairs = f"SELECT user_id, item_id, timestamp, id AS rid FROM ({events})"
            co_bought = co_purchase_table(con, pairs, o.together_days)

            def write_tables(folder: Path) -> None:
                items.to_parquet(folder / ITEMS_FILE, index=False)
                co_bought.to_parquet(folder / CO_PURCHASES_FILE, index=False)
                write_co_purchases(folder, co_bought)  # the arrays workers map (`recsys.batch.served`)
                if style is not None:  # from the style index's k nearest, never all pairs
                    write_style_neighbours(folder, style.ids, style.neighbour_rows())
                    sold = dict(zip(items["item_id"], items["pop_30d"].astype(float), strict=True))
                    stats = _style_neighbour_popularity(style, sold)
                    frame = pd.DataFrame({"item_id": list(stats), "style_neighbour_popularity": list(stats.values())})
                    frame.to_parquet(folder / STYLE_FILE, index=False)
                manifest = {"format": TABLES_FORMAT, "last_event_id": last_event_id, "events": int(count), "now": now}
                if style is not None:  # the index version the style lists were searched in
                    manifest["style_index"] = style.index.fingerprint
                manifest["built"] = time.time()
                (folder / MANIFEST_FILE).write_text(json.dumps(manifest))

            staged = Path(tmp) / "tables"
            staged.mkdir()
            write_tables(staged)
            out["items"], out["co_purchase_pairs"] = len(items), len(co_bought)
            items = co_bought = None  # free them before CF (the closure above is done with them)
            done("tables", started)

            started = time.perf_counter()
            cf_config = _served_cf_config(models / CF_DIR) or CFConfig()
            # fetched as integer codes (a frame of 25M string pairs peaked at 9.9 GB at H&M size)
            cf = fit_cf(con, events, cf_config, progress=o.progress)

            def write_cf(folder: Path) -> None:
                cf.save(folder)
                trained = {"last_event_id": last_event_id, "events": int(count), "trained": time.time()}
                (folder / TRAINED_FILE).write_text(json.dumps(trained))

            staged_cf = Path(tmp) / "cf"
            staged_cf.mkdir()
            write_cf(staged_cf)
            out["shoppers"], out["cf_items"] = cf.user_count, len(cf.item_ids)
            cf = None
            done("cf", started)

            ranker = None
            if o.ranker:
                started = time.perf_counter()
                ranker, out["ranker"] = _train_ranker(con, events, db, models / RANKER_DIR, style, cf_config, o, count)
                done("ranker", started)
        finally:
            con.close()

        # every version published at the end, one after the other, then one generation bump: a worker reloads
        # once and serves tables, CF and ranker of this one run
        started = time.perf_counter()
        out["tables"] = save_version(models / TABLES_DIR, lambda f: _copy(staged, f), keep=MODEL_VERSIONS_KEPT)
        out["cf"] = save_version(models / CF_DIR, lambda f: _copy(staged_cf, f), keep=MODEL_VERSIONS_KEPT)
        if ranker is not None:
            out["ranker"]["version"] = save_version(models / RANKER_DIR, ranker.save, keep=MODEL_VERSIONS_KEPT)
        _bump_generation(db, GENERATION)
        done("publish", started)
    stages.close()
    out["seconds"], out["cpu_seconds"], out["peak_rss_gb"] = seconds, cpu, peak_rss_gb
    return out


def _copy(staged: Path, folder: Path) -> None:
    """Move the files of a staged version into `save_version`'s folder."""
    for path in staged.iterdir():
        shutil.move(str(path), folder / path.name)


def _served_cf_config(folder: Path):
    """The config of the CF version being served (retraining keeps it), or None."""
    from index.persistence import CURRENT
    from recsys.models.cf import CollaborativeFilter

    if not (folder / CURRENT).exists():
        return None
    try:
        return CollaborativeFilter.load(folder / (folder / CURRENT).read_text().strip()).config
    except (OSError, ValueError, KeyError) as exc:
        log.warning("not reusing the served CF's config: %s", exc)
        return None


def _train_ranker(con, events: str, db, folder: Path, style, cf_config, o: TrainOptions, count: int):
    """(the feed's ranker trained on windows one at a time, or None when it could not learn: the served one
    stays; what its training saw)."""
    from index.persistence import CURRENT
    from recsys.batch.windows import iter_folds
    from recsys.candidates import ItemInfo
    from recsys.models.ranker import LearnedRanker, RankerConfig
    from recsys.store.opener import open_store

    config = RankerConfig()
    if (folder / CURRENT).exists():
        config = LearnedRanker.load(folder / (folder / CURRENT).read_text().strip()).config
    windows = o.windows if o.windows is not None else default_windows(count, config.windows)
    update = {"windows": windows, "max_users_per_window": o.sample_shoppers}
    config = config.model_copy(update={k: v for k, v in update.items() if v is not None})
    store = open_store(db)
    try:
        catalog = store.items()
    finally:
        store.close()
    info = ItemInfo(pd.DataFrame(catalog, columns=["item_id", "title", "category", "attributes"]))
    allowed = {item["item_id"] for item in catalog}
    del catalog
    # windows built one at a time by DuckDB over the Parquet export: the events never enter pandas, only each
    # window's item tables, CF codes, and its sampled shoppers' histories and labels
    source = f"SELECT user_id, item_id, timestamp, weight, id AS rid FROM ({events})"
    folds = iter_folds(con, source, info, style, config, cf_config, allowed)
    ranker = LearnedRanker(config).fit(None, info, style, folds=folds, progress=o.progress)
    if not ranker.trained:
        return None, {"learned": False, "training": ranker.training}
    return ranker, {"learned": True, "training": ranker.training}


def _open_style(db, embeddings, index):
    from recsys.store.opener import open_store

    store = open_store(db)
    try:
        return load_style(store, embeddings, index)
    finally:
        store.close()


def load_style(store, embeddings, index=None):
    """The catalog's style vectors (an embedding store's, plus vectors of items added through the API) over the
    persisted index at `index` when it is there (else an index built in memory); None without vectors."""
    if embeddings is None or not (Path(embeddings) / "encoder.json").exists():
        return None
    from index.persistence import CURRENT, IndexFileError
    from index.style_index import StyleIndex
    from recsys.models.hybrid import StyleSpace
    from recsys.shop.catalog import _reconcile
    from transfer.store import EmbeddingStore

    vectors = EmbeddingStore.load(embeddings)
    known = set(store.item_ids())
    by_id = {item: vectors.vectors[r] for r, item in enumerate(vectors.ids) if item in known}
    added = {k: v for k, v in store.item_vectors(vectors.model_id).items() if k in known}
    by_id.update(added)
    if not by_id:
        return None
    ids = sorted(by_id)
    matrix = np.stack([by_id[i] for i in ids])
    built = None
    if index is not None and (Path(index) / CURRENT).exists():
        try:
            built = StyleIndex.load(index, model_id=vectors.model_id)
        except IndexFileError as exc:
            log.warning("not using the index in %s: %s", index, exc)
    if built is None:
        built = StyleIndex.build(matrix, ids, model_id=vectors.model_id, spec="auto")
    _reconcile(built, ids, matrix, added)
    return StyleSpace(ids, matrix, vectors.model_id, index=built)


def _bump_generation(db, key: str) -> None:
    """Tell the running web workers to swap in the new versions (they compare the generation in `sync`)."""
    from recsys.store.opener import open_store

    store = open_store(db)
    try:
        store.set_meta(key, f"{time.time():.6f}-{os.getpid()}-train")
    finally:
        store.close()
