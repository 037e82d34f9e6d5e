"""Importers (H&M, MovieLens, generic), validation errors, and the SQLite store."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from recsys.store.data_io import DataError, detect_format, read_catalog, read_interactions
from recsys.store.opener import open_store


def test_hm_transactions_and_articles(datasets):
    hm = datasets / "hm"
    assert detect_format(hm / "transactions.csv") == "hm"
    frame = read_interactions(hm / "transactions.csv")
    assert list(frame.columns) == ["user_id", "item_id", "timestamp", "weight", "event", "price"]
    assert len(frame) == 29_595 and frame["item_id"].str.len().eq(10).all()  # zero-padded ids kept as strings
    assert frame["item_id"].iloc[0] == "0493995001"
    catalog = read_catalog(hm)
    assert len(catalog) == 11_800 and catalog["image"].notna().sum() == 5_116
    row = catalog[catalog["item_id"] == "0111565001"].iloc[0]
    assert row["category"] == "Socks & Tights" and row["attributes"]["graphical_appearance_name"] == "Solid"


def test_movielens_recbole_and_classic(datasets, tmp_path):
    inter = datasets / "ml-100k" / "ml-100k.inter"
    frame = read_interactions(inter)
    assert len(frame) == 100_000 and frame["user_id"].nunique() == 943 and frame["item_id"].nunique() == 1682
    assert frame["weight"].between(1, 5).all()
    classic = tmp_path / "u.data"
    classic.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    assert detect_format(classic) == "movielens"
    assert read_interactions(classic)["item_id"].tolist() == ["242", "302"]


def test_generic_csv_parquet_and_errors(tmp_path):
    good = tmp_path / "events.csv"
    good.write_text("user_id,item_id,timestamp,weight\nu1,007,2024-01-02,2\nu2,008,2024-01-03,1\n")
    frame = read_interactions(good)
    assert frame["item_id"].tolist() == ["007", "008"] and frame["weight"].tolist() == [2.0, 1.0]
    frame.to_parquet(tmp_path / "events.parquet")
    assert read_interactions(tmp_path / "events.parquet")["item_id"].tolist() == ["007", "008"]

    cases = {
        "user_id,item_id\nu1,\n": "line 2: item_id is empty",
        "user_id,item_id,weight\nu1,a,1\nu2,b,-3\n": "line 3: weight must be a number > 0",
        "user_id,item_id,timestamp\nu1,a,yesterday-ish\n": "line 2: not a timestamp or date",
        "user,item\nu1,a\n": "missing column(s) user_id, item_id",
    }
    for n, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{n}.csv"
        path.write_text(text)
        with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_interactions(path)
    with pytest.raises(FileNotFoundError):
        read_interactions(tmp_path / "missing.csv")


def test_store_imports_are_idempotent_and_atomic(store_url, demo_catalog):
    store = open_store(store_url)
    catalog = read_catalog(demo_catalog)
    assert store.import_items(catalog, "demo") == 288
    assert store.import_items(catalog, "demo") == 0  # same content: nothing to do
    assert store.count_items() == 288 and store.item("D0001")["attributes"]["pattern"] == "solid"

    events = pd.DataFrame(
        {"user_id": ["u1", "u1", "u2"], "item_id": ["D0001", "D0002", "D0001"], "timestamp": [1.0, 2.0, 3.0]}
    )
    assert store.import_interactions(events, "events.csv") == 3
    assert store.import_interactions(events, "events.csv") == 0
    assert len(store.interactions()) == 3
    changed = pd.concat([events, events.iloc[:1].assign(timestamp=9.0)])
    assert store.import_interactions(changed, "events.csv") == 4  # replaces that source's rows
    assert len(store.interactions()) == 4

    broken = catalog.copy()
    broken.loc[5, "item_id"] = " "
    with pytest.raises(DataError, match="row 6: item_id is empty"):
        store.import_items(broken, "broken")
    assert store.count_items() == 288

    with pytest.raises(KeyError, match="unknown item id 'NOPE'"):
        store.add_event("u1", "NOPE")
    with pytest.raises(DataError, match="unknown event"):
        store.add_event("u1", "D0001", "stare")
    store.close()


def test_items_by_id_and_counts_match_the_listing(store_url, demo_catalog):
    store = open_store(store_url)
    store.import_items(read_catalog(demo_catalog), "demo")
    ids = [f"D{n:04d}" for n in range(1, 289)]
    found = store.items_by_id([*ids, "NOPE", "D0001"])  # more than one chunk, an unknown id, a repeat
    assert sorted(found) == ids and found["D0007"] == store.item("D0007")
    assert store.items_by_id([]) == {}
    some = store.items("mug", search="stripes")
    assert some and all(i["category"] == "mug" and "stripes" in i["title"].lower() for i in some)
    assert store.count_items("mug", "stripes") == len(some) == 8 and store.count_items(search="100%") == 0
    store.close()


def test_events_survive_a_reopen_and_concurrent_writers(store_url, demo_catalog):
    store = open_store(store_url)
    store.import_items(read_catalog(demo_catalog), "demo")

    def post(user: str) -> None:
        for n in range(25):
            store.add_event(user, f"D{n + 1:04d}", "click")

    threads = [threading.Thread(target=post, args=(f"u{t}",)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    reopened = open_store(store_url)
    events = reopened.interactions()
    assert len(events) == 100 and set(events["weight"]) == {0.5}
    assert reopened.users() == ["u0", "u1", "u2", "u3"]
    reopened.put_style("stripes", "x.jpg", np.ones(4, np.float32), "m1")
    assert reopened.styles()[0]["vector"].tolist() == [1.0] * 4


def test_big_files_stream_in_chunks_all_or_nothing(tmp_path, store_url):
    """A file read in chunks gives the table read whole; its import is one transaction: the same file again
    writes nothing, a bad row in a later chunk names its line and leaves the store as it was."""
    from recsys.store.data_io import file_digest, iter_interactions

    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,weight\n" + "".join(f"u{n % 4},i{n % 9},{1 + n % 3}\n" for n in range(10)))
    chunks = list(iter_interactions(path, chunk_rows=3))
    assert len(chunks) > 1 and max(len(c) for c in chunks) <= 4
    whole = read_interactions(path)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    assert whole["timestamp"].tolist() == list(range(10))  # no timestamps: the row order, across chunks

    store = open_store(store_url)
    source = str(path)
    assert store.import_interactions(iter_interactions(path, chunk_rows=3), source, file_digest(path)) == 10
    assert store.import_interactions(iter_interactions(path, chunk_rows=3), source, file_digest(path)) == 0
    with pytest.raises(ValueError, match="content_digest"):
        store.import_interactions(iter_interactions(path), source)

    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text() + "u9,i1,-1\n")  # line 12, in the last chunk
    with pytest.raises(DataError, match=r"bad\.csv, line 12: weight must be a number > 0"):
        store.import_interactions(iter_interactions(bad, chunk_rows=3), str(bad), file_digest(bad), bulk=True)
    broken = tmp_path / "broken.csv"
    broken.write_text(path.read_text() + "u9,i1,1,surplus\n")
    with pytest.raises(DataError, match=r"broken\.csv: cannot be read as a table"):
        store.import_interactions(iter_interactions(broken, chunk_rows=3), str(broken), file_digest(broken))
    assert len(store.interactions()) == 10  # nothing of either half-imported

    indexes = (
        "SELECT indexname FROM pg_indexes WHERE tablename = 'interactions' ORDER BY indexname"
        if store_url.startswith("postgresql://")
        else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'interactions' ORDER BY name"
    )
    before = store._query(indexes)
    assert ("interactions_user",) in before  # a failed bulk import leaves its dropped indexes in place

    path.write_text(path.read_text() + "u9,i1,2\n")  # changed: replaces that file's rows (bulk: indexes rebuilt)
    digest = file_digest(path)
    assert store.import_interactions(iter_interactions(path, chunk_rows=3), source, digest, bulk=True) == 11
    assert len(store.interactions()) == 11 and store._query(indexes) == before
    assert len(store.interactions("u9")) == 1
    store.close()
