"""Reading interactions and catalogs from the formats shops and researchers have.

Interactions become one table with the columns of `INTERACTION_COLUMNS`: `user_id` and `item_id` as strings,
`timestamp` as float seconds since the epoch, `weight` (float, > 0) and `event` (view, click, like, purchase...).
Formats: the H&M Kaggle `transactions*.csv`, MovieLens (RecBole atomic `.inter`, classic `u.data`), and a generic
`user_id,item_id[,timestamp][,weight][,event]` CSV or Parquet. A bad row is reported with its file and line.

Catalogs become one table of `CATALOG_COLUMNS` (+ an `attributes` dict per item): the H&M layout
(`articles.csv` + `images/<first 3>/<id>.jpg`) and the project's own `items.csv` (demo catalog or any shop's).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from common.errors import NoSuchFile, StylerecError

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "weight", "event")
CATALOG_COLUMNS = ("item_id", "title", "category", "image", "attributes")
INTERACTION_FORMATS = ("hm", "recbole", "movielens", "generic")
EVENT_WEIGHTS = {"view": 0.25, "click": 0.5, "like": 1.0, "add_to_cart": 1.0, "purchase": 1.0}


class DataError(StylerecError, ValueError):
    """Input data that cannot be used as it is; the message names the file, the line and the problem (422)."""

    http_status = 422


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


CHUNK_ROWS = 250_000  # rows per chunk when a file is read in chunks (a few tens of MB of Python objects)


def read_interactions(path: str | os.PathLike, fmt: str | None = None) -> pd.DataFrame:
    """Read one interaction file into the standard table (see module docstring); `DataError` when invalid."""
    chunks = list(iter_interactions(path, fmt))
    if not chunks:
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("timestamp", "weight") else object)
                             for c in INTERACTION_COLUMNS})  # fmt: skip
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def iter_interactions(
    path: str | os.PathLike, fmt: str | None = None, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Read one interaction file as a stream of standard tables of about `chunk_rows` rows each (pyarrow's
    streaming CSV reader, Parquet record batches): memory is bounded by a chunk, not by the file. A bad row
    raises `DataError` with the file and its line when its chunk is reached (earlier chunks have been yielded:
    consume them inside one transaction, as `Store.import_interactions` does)."""
    path = Path(path)
    if not path.is_file():
        raise NoSuchFile(f"no interaction file at {path}")
    fmt = fmt or detect_format(path)
    if fmt not in INTERACTION_FORMATS:
        raise DataError(f"unknown interaction format {fmt!r} (one of {', '.join(INTERACTION_FORMATS)})")
    # each chunk's index is its rows' line numbers in the file - 2 (what `_line` and `_standard` expect)
    row = -1 if fmt == "movielens" else 0  # u.data has no header: its first row is line 1
    for raw in _raw_chunks(path, fmt, chunk_rows):
        raw.index = pd.RangeIndex(row, row + len(raw))
        row += len(raw)
        yield _convert(raw, fmt, path).reset_index(drop=True)


def _raw_chunks(path: Path, fmt: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows as string columns, chunk by chunk (Parquet: its own column types)."""
    if fmt == "generic" and path.suffix == ".parquet":
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: cannot be read as a table: {exc}") from None
        return
    sep = "\t" if fmt in ("recbole", "movielens") else ","
    if fmt == "movielens":
        names = ["user_id", "item_id", "rating", "timestamp"]
    else:
        names = next(csv.reader([_first_line(path)], delimiter=sep), [])
    read = pacsv.ReadOptions(
        column_names=names, skip_rows=0 if fmt == "movielens" else 1, block_size=max(1 << 20, chunk_rows * 64)
    )
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=True, null_values=[""]
    )
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=pacsv.ParseOptions(delimiter=sep),
                                convert_options=convert)  # fmt: skip
        for batch in reader:
            for start in range(0, batch.num_rows, chunk_rows):
                frame = batch.slice(start, chunk_rows).to_pandas()
                if fmt == "recbole":
                    frame.columns = [c.split(":")[0] for c in frame.columns]
                yield frame
    except (pa.ArrowException, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as a table: {exc}") from None


def _convert(raw: pd.DataFrame, fmt: str, path: Path) -> pd.DataFrame:
    """One chunk of a file's rows -> the standard table, validated."""
    if fmt == "hm":
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
            frame["price"] = _numbers_or_nan(raw["price"])
        return frame
    if fmt in ("recbole", "generic"):
        _require(raw, ("user_id", "item_id"), path)
        if fmt == "generic":
            raw = raw.astype({c: str for c in ("user_id", "item_id")})
        return _standard(raw, path, default_event="rating" if fmt == "recbole" else "purchase")
    return _standard(raw, path, default_event="rating")  # movielens


def file_digest(path: str | os.PathLike, fmt: str | None = None) -> str:
    """sha256 of a file's bytes and the format it is read as: what an import of it is known by (streamed)."""
    if not Path(path).is_file():
        raise NoSuchFile(f"no interaction file at {path}")
    h = hashlib.sha256(f"{fmt or detect_format(path)}\n".encode())
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _standard(raw: pd.DataFrame, path: Path, default_event: str) -> pd.DataFrame:
    """user_id, item_id [, timestamp] [, weight | rating] [, event] -> the standard table, validated."""
    for column in ("user_id", "item_id"):
        values = raw[column].astype(str).str.strip()
        bad = raw[column].isna() | (values == "") | (values.str.lower() == "nan")
        if bad.any():
            raise DataError(f"{path}, line {_line(raw, bad)}: {column} is empty")
        raw[column] = values
    timestamp = (  # no timestamps: the row order (row numbers run on across the chunks of a file)
        _parse_time(raw["timestamp"], path) if "timestamp" in raw else pd.Series(raw.index.to_numpy(float), raw.index)
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


def _numbers_or_nan(values: pd.Series) -> pd.Series:
    """Numbers from strings, NaN where a value is not one (a fast cast first: the usual case is all numbers)."""
    try:
        return values.astype(float)
    except (TypeError, ValueError, pa.ArrowException):
        return pd.to_numeric(values, errors="coerce")


def _parse_time(values: pd.Series, path: Path) -> pd.Series:
    """Epoch seconds from numbers or date strings; `DataError` naming the first value that is neither."""
    if len(values) and pd.notna(pd.to_numeric(values.iloc[:1], errors="coerce").iloc[0]):  # else: not all numbers
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
    """1-based line number in the file (header = line 1) of the first flagged row (the frame's index counts
    rows from the first after the header)."""
    return int(frame.index[np.flatnonzero(bad.to_numpy())[0]]) + 2


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
        raise NoSuchFile(f"{folder}: no catalog here (expected items.csv or the H&M layout's articles.csv)")
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
