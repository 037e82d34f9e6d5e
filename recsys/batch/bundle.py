"""The served side of the batch step: a web worker's snapshot and popularity from a `stylerec train` tables
version, without reading the events table.

A tables version (<models>/tables/vNNNNNN, written by `recsys.batch.train`) holds the item table (popularity
windows, first and last sale, repeat rate, the blend's decayed popularity), the co-purchase lists and, when the
shop has style vectors, each item's style-neighbour popularity and its nearest items in style (the style
source's lists, `StyleSpace.neighbours`: memory-mapped, and used only by a worker whose index is the persisted
version they were searched in, over exactly the same style ids). The co-purchase lists are memory-mapped arrays
(`recsys.batch.served`), shared by every worker of a host; the item tables are bounded by the catalog and read
into plain dicts at open. It is used when it was built over exactly the events the served CF version was
trained on (`tables_for`), so every model a worker serves is of one batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.batch.tables import item_facts, table_to_lists

log = logging.getLogger(__name__)

TABLES_DIR = "tables"
TABLES_FORMAT = 1  # bumped when the files' columns change: a worker ignores tables of another format
ITEMS_FILE, CO_PURCHASES_FILE, STYLE_FILE, MANIFEST_FILE = (
    "items.parquet",
    "co_purchases.parquet",
    "style.parquet",
    "manifest.json",
)
STYLE_IDS_FILE, STYLE_NEIGHBOURS_FILE = "style_ids.npy", "style_neighbours.npy"


def tables_for(models: str | Path, last_event_id: int) -> Path | None:
    """The current tables version under `models` when it was built over the events up to `last_event_id` (those
    the served CF was trained on), else None (the worker then counts from the events, as before)."""
    from index.persistence import current_version

    folder = Path(models) / TABLES_DIR
    version = current_version(folder)
    if version is None:
        return None
    try:
        manifest = json.loads((folder / version / MANIFEST_FILE).read_text())
    except (OSError, ValueError) as exc:
        log.warning("not using the tables in %s: %s", folder / version, exc)
        return None
    if manifest.get("format") != TABLES_FORMAT:
        log.warning(
            "not using the tables in %s: format %s, not %s", folder / version, manifest.get("format"), TABLES_FORMAT
        )
        return None
    return folder / version if manifest.get("last_event_id") == last_event_id else None


@lru_cache(maxsize=2)
def _read_tables(folder: Path) -> dict:
    """The parsed tables of one version folder, kept for the next reload (version folders never change, so a
    reload that finds the same tables version reads no file); the current and the previous version are kept."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    table = pd.read_parquet(folder / ITEMS_FILE)

    style_file = folder / STYLE_FILE
    style_stats = None
    if style_file.exists():
        stats = pd.read_parquet(style_file)
        style_stats = dict(zip(stats["item_id"], stats["style_neighbour_popularity"].astype(float), strict=True))
    return {
        **item_facts(table),
        "now": float(manifest["now"]),
        "style_index": manifest.get("style_index"),
        "decayed": dict(zip(table["item_id"], table["pop_decayed"].astype(float), strict=True)),
        "co_bought": _co_bought(folder),
        "style_stats": style_stats,
    }


def read_popularity(folder: Path):
    """The blend's time-decayed popularity (`recsys.models.hybrid.Popularity`, 30-day half-life) from a tables
    version."""
    from recsys.models.hybrid import Popularity

    return Popularity.from_scores(_read_tables(Path(folder))["decayed"])  # from_scores copies it


def read_snapshot(folder: Path, items, style, cf, allowed: Iterable[str]):
    """The feed's `Snapshot` of the shop from a tables version (no shopper histories: a worker reads a shopper's
    history from the store per request)."""
    from recsys.candidates.base import Snapshot, _style_neighbour_popularity

    tables = _read_tables(Path(folder))
    popularity = tables["popularity"]
    snapshot = Snapshot(
        now=tables["now"],
        items=items,
        style=style,
        cf=cf,
        allowed=set(),
        histories={},
        popularity=popularity,
        first_sale=tables["first_sale"],
        last_sale=tables["last_sale"],
        repeat_rate=tables["repeat_rate"],
        trending=[],
        trending_by_kind={},
        group_members={},
        co_bought=tables["co_bought"],
    )
    fingerprint = style.index.fingerprint if style is not None else None
    if style is not None and style.neighbours is None and fingerprint and fingerprint == tables["style_index"]:
        style.neighbours = read_style_neighbours(Path(folder), style.ids)  # searched in this very index
    if style is not None and tables["style_stats"] is not None:
        snapshot.style_neighbour_popularity = tables["style_stats"]
    else:
        snapshot.style_neighbour_popularity = _style_neighbour_popularity(style, popularity["30d"])
    return snapshot.with_catalog(items, allowed)


def write_style_neighbours(folder: Path, ids: list[str], rows: np.ndarray) -> None:
    """Write each style item's nearest items (`StyleSpace.neighbours`) with the ids they index."""
    np.save(folder / STYLE_IDS_FILE, np.array([i.encode() for i in ids], dtype=bytes))
    np.save(folder / STYLE_NEIGHBOURS_FILE, np.ascontiguousarray(rows, np.int32))


def read_style_neighbours(folder: Path, ids: list[str]) -> np.ndarray | None:
    """The batch's nearest-item lists, memory-mapped, when they were searched over exactly these style `ids` (in
    this order); None otherwise (items embedded since: the style source searches the index)."""
    if not (folder / STYLE_IDS_FILE).is_file() or not (folder / STYLE_NEIGHBOURS_FILE).is_file():
        return None
    try:
        saved = np.load(folder / STYLE_IDS_FILE, mmap_mode="r", allow_pickle=False)
        rows = np.asarray(np.load(folder / STYLE_NEIGHBOURS_FILE, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError) as exc:  # a damaged file costs the lists, not the worker
        log.warning("not using the style lists in %s: %s", folder, exc)
        return None
    if len(saved) != len(ids) or rows.ndim != 2 or rows.shape[0] != len(ids) or rows.dtype != np.int32:
        return None
    if not np.array_equal(np.asarray(saved), np.array([i.encode() for i in ids], dtype=bytes)):
        return None
    if len(rows) and (rows.min() < -1 or rows.max() >= len(ids)):
        log.warning("not using the style lists in %s: rows out of range", folder)
        return None
    return rows  # a plain array over the map: no per-slice memmap overhead


def _co_bought(folder: Path):
    """The co-purchase lists: the memory-mapped arrays (`recsys.batch.served.CoBought`), or the Parquet table
    read into a dict for a tables version written before them."""
    from recsys.batch.served import CoBought, has_co_purchases

    if has_co_purchases(folder):
        return CoBought(folder)
    return table_to_lists(pd.read_parquet(folder / CO_PURCHASES_FILE))
