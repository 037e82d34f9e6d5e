"""Reading interactions and catalogs from the formats shops and researchers have.

Interactions become one table with the columns of `INTERACTION_COLUMNS`: `user_id` and `item_id` as strings,
`timestamp` as float seconds since the epoch, `weight` (float, > 0) and `event` (view, click, like, purchase...).
Formats: the H&M Kaggle `transactions*.csv`, MovieLens (RecBole atomic `.inter`, classic `u.data`), and a generic
`user_id,item_id[,timestamp][,weight][,event]` CSV or Parquet. A bad row is reported with its file and line.

Catalogs become one table of `CATALOG_COLUMNS` (+ an `attributes` dict per item): the H&M layout
(`articles.csv` + `images/<first 3>/<id>.jpg`) and the project's own `items.csv` (demo catalog or any shop's).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "weight", "event")
CATALOG_COLUMNS = ("item_id", "title", "category", "image", "attributes")
INTERACTION_FORMATS = ("hm", "recbole", "movielens", "generic")
EVENT_WEIGHTS = {"view": 0.25, "click": 0.5, "like": 1.0, "add_to_cart": 1.0, "purchase": 1.0}


class DataError(ValueError):
    """Input data that cannot be used as it is; the message names the file, the line and the problem."""


# -- interactions -------------------------------------------------------------------------------------------
def detect_format(path: str | os.PathLike) -> str:
    """The interaction format of a file, from its name and header."""
    path = Path(path)
    if path.suffix == ".inter":
        return "recbole"
    if path.name == "u.data" or path.suffix == ".data":
        return "movielens"
    if path.suffix == ".parquet":
        return "generic"
    header = _first_line(path)
    if {"t_dat", "customer_id", "article_id"} <= set(header.split(",")):
        return "hm"
    if ":token" in header or ":float" in header:
        return "recbole"
    return "generic"


def read_interactions(path: str | os.PathLike, fmt: str | None = None) -> pd.DataFrame:
    """Read one interaction file into the standard table (see module docstring); `DataError` when invalid."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no interaction file at {path}")
    fmt = fmt or detect_format(path)
    if fmt == "hm":
        raw = _read_csv(path, dtype={"customer_id": str, "article_id": str, "t_dat": str})
        _require(raw, ("t_dat", "customer_id", "article_id"), path)
        frame = pd.DataFrame(
            {
                "user_id": raw["customer_id"],
                "item_id": raw["article_id"],
                "timestamp": _parse_time(raw["t_dat"], path),
                "weight": 1.0,
                "event": "purchase",
            }
        )
        if "price" in raw:  # what was paid: the feed's ranker compares it with a shopper's usual price
            frame["price"] = pd.to_numeric(raw["price"], errors="coerce")
    elif fmt == "recbole":
        raw = _read_csv(path, sep="\t", dtype=str)
        raw.columns = [c.split(":")[0] for c in raw.columns]
        _require(raw, ("user_id", "item_id"), path)
        frame = _standard(raw, path, default_event="rating")
    elif fmt == "movielens":
        raw = _read_csv(path, sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"], dtype=str)
        frame = _standard(raw, path, default_event="rating")
    elif fmt == "generic":
        raw = pd.read_parquet(path) if path.suffix == ".parquet" else _read_csv(path, dtype=str)
        _require(raw, ("user_id", "item_id"), path)
        frame = _standard(raw.astype({c: str for c in ("user_id", "item_id")}), path, default_event="purchase")
    else:
        raise DataError(f"unknown interaction format {fmt!r} (one of {', '.join(INTERACTION_FORMATS)})")
    return frame.reset_index(drop=True)


def _standard(raw: pd.DataFrame, path: Path, default_event: str) -> pd.DataFrame:
    """user_id, item_id [, timestamp] [, weight | rating] [, event] -> the standard table, validated."""
    for column in ("user_id", "item_id"):
        values = raw[column].astype(str).str.strip()
        bad = raw[column].isna() | (values == "") | (values.str.lower() == "nan")
        if bad.any():
            raise DataError(f"{path}, line {_line(raw, bad)}: {column} is empty")
        raw[column] = values
    timestamp = (
        _parse_time(raw["timestamp"], path) if "timestamp" in raw else pd.Series(np.arange(len(raw), dtype=float))
    )
    weight_column = "weight" if "weight" in raw else "rating" if "rating" in raw else None
    if weight_column:
        weight = pd.to_numeric(raw[weight_column], errors="coerce")
        bad = weight.isna() | ~np.isfinite(weight) | (weight <= 0)
        if bad.any():
            value = raw[weight_column][bad].iloc[0]
            raise DataError(f"{path}, line {_line(raw, bad)}: {weight_column} must be a number > 0, got {value!r}")
    else:
        weight = pd.Series(1.0, index=raw.index)
    event = raw["event"].astype(str) if "event" in raw else default_event
    return pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "item_id": raw["item_id"],
            "timestamp": timestamp.to_numpy(float),
            "weight": weight.to_numpy(float),
            "event": event,
        }
    )


def _parse_time(values: pd.Series, path: Path) -> pd.Series:
    """Epoch seconds from numbers or date strings; `DataError` naming the first value that is neither."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        return numbers.astype(float)
    dates = pd.to_datetime(values, errors="coerce", utc=True)
    bad = dates.isna()
    if bad.any():
        frame = values.to_frame()
        raise DataError(f"{path}, line {_line(frame, bad)}: not a timestamp or date: {values[bad].iloc[0]!r}")
    return (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""], **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as a table: {exc}") from None


def _require(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}")


def _line(frame: pd.DataFrame, bad: pd.Series) -> int:
    """1-based line number in the file (header = line 1) of the first flagged row."""
    return int(np.flatnonzero(bad.to_numpy())[0]) + 2


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().strip()


# -- catalogs -----------------------------------------------------------------------------------------------
def is_hm_layout(folder: str | os.PathLike) -> bool:
    """True for a folder in the H&M Kaggle layout (articles.csv beside images/)."""
    return (Path(folder) / "articles.csv").is_file()


def read_catalog(folder: str | os.PathLike) -> pd.DataFrame:
    """Items of a catalog folder (H&M layout or the project's `items.csv`), with absolute image paths or None."""
    folder = Path(folder)
    if is_hm_layout(folder):
        return _read_hm_articles(folder)
    items_csv = folder / "items.csv"
    if not items_csv.is_file():
        raise FileNotFoundError(f"{folder}: no catalog here (expected items.csv or the H&M layout's articles.csv)")
    raw = _read_csv(items_csv, dtype=str)
    _require(raw, ("item_id",), items_csv)
    raw = raw.fillna("")
    if (raw["item_id"].str.strip() == "").any():
        raise DataError(f"{items_csv}, line {_line(raw, raw['item_id'].str.strip() == '')}: item_id is empty")
    duplicated = raw["item_id"].duplicated()
    if duplicated.any():
        raise DataError(
            f"{items_csv}, line {_line(raw, duplicated)}: item_id {raw['item_id'][duplicated].iloc[0]!r} repeats"
        )
    known = {"item_id", "title", "category", "image"}
    images = [str((folder / p).resolve()) if p else None for p in raw.get("image", pd.Series("", index=raw.index))]
    return pd.DataFrame(
        {
            "item_id": raw["item_id"].str.strip(),
            "title": raw.get("title", raw["item_id"]),
            "category": raw.get("category", pd.Series("", index=raw.index)),
            "image": images,
            "attributes": [
                {k: v for k, v in row.items() if k not in known and v != ""} for row in raw.to_dict(orient="records")
            ],
        }
    )


def _read_hm_articles(folder: Path) -> pd.DataFrame:
    path = folder / "articles.csv"
    raw = _read_csv(path, dtype=str).fillna("")
    _require(raw, ("article_id", "prod_name", "product_group_name"), path)
    images = []
    for article_id in raw["article_id"]:
        image = folder / "images" / article_id[:3] / f"{article_id}.jpg"
        images.append(str(image.resolve()) if image.is_file() else None)
    attribute_columns = [c for c in raw.columns if c not in ("article_id", "prod_name", "has_image")]
    return pd.DataFrame(
        {
            "item_id": raw["article_id"],
            "title": raw["prod_name"],
            "category": raw["product_group_name"],
            "image": images,
            "attributes": raw[attribute_columns].to_dict(orient="records"),
        }
    )


def attributes_json(attributes: dict) -> str:
    """Item attributes as stored: compact JSON with sorted keys."""
    return json.dumps(attributes, sort_keys=True, separators=(",", ":"))
