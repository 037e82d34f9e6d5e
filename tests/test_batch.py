"""The batch step's tables: each equals a small hand-computed answer and the plain in-memory count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import wait_until

from recsys.batch.tables import co_purchases
from recsys.models.hybrid import DAY


def plain_co_purchases(past: pd.DataFrame, days: float, keep: int = 30, max_per_shopper: int = 500) -> dict:
    """The in-memory self-join the batch count replaced: the reference answer."""
    events = past[["user_id", "item_id", "timestamp"]].drop_duplicates()
    events = events.sort_values("timestamp", ascending=False, kind="stable")
    events = events[events.groupby("user_id").cumcount() < max_per_shopper]
    pairs = events.merge(events, on="user_id", suffixes=("", "_other"))
    close = (pairs["item_id"] != pairs["item_id_other"]) & (
        (pairs["timestamp"] - pairs["timestamp_other"]).abs() <= days * DAY
    )
    pairs = pairs.loc[close, ["user_id", "item_id", "item_id_other"]].drop_duplicates()
    counts = pairs.groupby(["item_id", "item_id_other"]).size().rename("n").reset_index()
    counts = counts.sort_values(["item_id", "n", "item_id_other"], ascending=[True, False, True], kind="stable")
    counts = counts[counts.groupby("item_id").cumcount() < keep]
    out: dict = {}
    for item, other, n in zip(counts["item_id"], counts["item_id_other"], counts["n"], strict=True):
        out.setdefault(item, []).append((other, float(n)))
    return out


def test_co_purchases_on_a_hand_computed_shop():
    rows = [
        ("u1", "tee", 0), ("u1", "jeans", 2), ("u1", "belt", 20),  # belt is two weeks later: no pair with it
        ("u2", "tee", 5), ("u2", "jeans", 5), ("u2", "jeans", 6),  # a repeat counts u2 once per pair
        ("u3", "jeans", 1), ("u3", "belt", 7), ("u3", "hat", 9),  # jeans-belt within 7 days, jeans-hat 8 days apart
    ]  # fmt: skip
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    events = events.assign(timestamp=events["day"] * DAY)
    got = co_purchases(events, days=7)
    assert got == {
        "tee": [("jeans", 2.0)],
        "jeans": [("tee", 2.0), ("belt", 1.0)],  # most often first, then by id
        "belt": [("hat", 1.0), ("jeans", 1.0)],
        "hat": [("belt", 1.0)],
    }
    assert got == plain_co_purchases(events, days=7)
    assert co_purchases(events, days=7, keep=1)["jeans"] == [("tee", 2.0)]
    assert co_purchases(events.iloc[:0], days=7) == {}


def test_co_purchases_equal_the_plain_count_with_ties_and_a_cap():
    """Random shop with equal timestamps at the per-shopper cap: the same answer, tie-breaks included."""
    rng = np.random.default_rng(3)
    n = 4000
    events = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 150, n)],
            "item_id": [f"i{i:03d}" for i in (rng.zipf(1.6, n) % 300)],
            "timestamp": rng.integers(0, 60, n) * DAY / 2,  # many equal timestamps
        }
    )
    for days, keep, cap in [(7, 30, 500), (3, 5, 12), (1e9, 30, 4)]:
        plain = plain_co_purchases(events, days, keep, cap)
        assert co_purchases(events, days, keep, cap) == plain
        # in chunks of shoppers and of anchor items (7 chunks here), as a big shop is counted: the same answer
        assert co_purchases(events, days, keep, cap, events_per_chunk=600) == plain


def test_co_purchases_equal_the_plain_count_on_the_hm_sample(datasets):
    path = datasets / "hm" / "transactions.csv"
    if not path.is_file():
        pytest.skip("the H&M sample is not in the datasets folder")
    from recsys.store.data_io import read_interactions

    events = read_interactions(path)
    plain = plain_co_purchases(events, 7)
    assert co_purchases(events, 7) == plain
    assert co_purchases(events, 7, events_per_chunk=5000) == plain


def test_mapped_co_purchase_lists_equal_the_table(tmp_path):
    """The co-purchase arrays a worker maps answer every item as the table's dict does, in the table's order
    (most often first, ties by id), including ids of other lengths and not ASCII; items without a list are not
    there; an empty table maps to an empty mapping."""
    from recsys.batch.served import CoBought, write_co_purchases
    from recsys.batch.tables import table_to_lists

    table = pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "bb", "bb", "ç-long-id", "zz"],
            "other": ["bb", "zz", "ç-long-id", "zz", "a", "a", "bb"],
            "n": [5, 2, 2, 7, 1, 3, 1],
        }
    )
    write_co_purchases(tmp_path, table)
    mapped = CoBought(tmp_path)
    assert dict(mapped) == table_to_lists(table) and mapped == table_to_lists(table)
    assert mapped["a"] == [("bb", 5.0), ("zz", 2.0), ("ç-long-id", 2.0)] and len(mapped) == 4
    assert mapped.get("nope", ()) == () and mapped.get("a" * 50, ()) == () and "bb" in mapped
    empty = tmp_path / "empty"
    empty.mkdir()
    write_co_purchases(empty, table.iloc[:0])
    assert dict(CoBought(empty)) == {}


def test_top_k_is_the_head_of_a_stable_sort():
    from recsys.models.hybrid import top_k

    scores = np.random.default_rng(0).integers(0, 20, 500).astype(float)
    full = np.argsort(-scores, kind="stable")
    for k in (1, 7, 200, 500, 900):
        assert top_k(scores, k).tolist() == full[:k].tolist()
    assert top_k(scores, 0).tolist() == [] and top_k(np.zeros(0), 3).tolist() == []


def _shop_events() -> pd.DataFrame:
    rows = [
        ("u1", "tee", 0), ("u1", "jeans", 2), ("u1", "tee", 25),  # u1 bought the tee twice
        ("u2", "tee", 28), ("u2", "jeans", 29),
        ("u3", "hat", 1),
    ]  # fmt: skip
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    return events.assign(timestamp=events["day"] * DAY, weight=1.0).drop(columns="day")


def test_item_table_on_a_hand_computed_shop():
    from recsys.batch.engine import connect
    from recsys.batch.tables import item_table

    con = connect()
    con.register("ev", _shop_events())
    table = item_table(con, "SELECT * FROM ev", now=30 * DAY).set_index("item_id")
    assert table.index.tolist() == ["hat", "jeans", "tee"]
    assert table["pop_7d"].to_dict() == {"hat": 0, "jeans": 1, "tee": 2}  # days 23..30: tee 25, 28; jeans 29
    assert table["pop_30d"].to_dict() == {"hat": 1, "jeans": 2, "tee": 3}  # day 0 is exactly 30 days back
    assert table["pop_all"].to_dict() == {"hat": 1, "jeans": 2, "tee": 3}
    assert table["first_sale"].to_dict() == {"hat": 1 * DAY, "jeans": 2 * DAY, "tee": 0.0}
    assert table["last_sale"].to_dict() == {"hat": 1 * DAY, "jeans": 29 * DAY, "tee": 28 * DAY}
    assert table["repeat_rate"].to_dict() == {"hat": 0.0, "jeans": 0.0, "tee": 0.5}  # u1 of {u1, u2}
    early = item_table(con, "SELECT * FROM ev", now=2 * DAY).set_index("item_id")  # only what sold before
    assert early.index.tolist() == ["hat", "tee"] and early["pop_all"].tolist() == [1, 1]


def test_train_publishes_every_model_as_a_version_the_catalog_opens(demo_catalog, tmp_path, capsys):
    """`stylerec train` on the demo shop: tables equal the in-memory snapshot's, CF and the ranker are new
    versions, the store's generation moves (running workers reload), and a catalog opens what it wrote."""
    import json

    from index.persistence import current_version
    from recsys.candidates import ItemInfo, Snapshot
    from recsys.cli import main
    from recsys.shop.catalog import GENERATION, CatalogPaths, open_catalog
    from recsys.shop.shoppers import make_demo_shoppers
    from recsys.store.data_io import read_catalog, read_interactions
    from recsys.store.sqlite import Store

    if not (demo_catalog / "interactions.csv").exists():
        make_demo_shoppers(demo_catalog)
    db, models = tmp_path / "shop.db", tmp_path / "models"
    store = Store(db)
    store.import_items(read_catalog(demo_catalog), "demo")
    store.import_interactions(read_interactions(demo_catalog / "interactions.csv"), "interactions.csv")
    before = store.meta(GENERATION)
    events = store.interactions()
    store.close()
    args = ["train", "--db", str(db), "--models", str(models), "--embeddings", str(tmp_path / "none")]
    assert main([*args, "--windows", "2", "--sample-shoppers", "150"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["events"] == len(events) and built["last_event_id"] == int(events["id"].max())
    assert current_version(models / "cf") == built["cf"] and current_version(models / "tables") == built["tables"]
    assert built["ranker"]["learned"] and current_version(models / "ranker") == built["ranker"]["version"]
    assert built["ranker"]["training"]["folds"] == 2
    store = Store(db)
    assert store.meta(GENERATION) != before
    store.close()

    snapshot = Snapshot.build(events, ItemInfo(None), cf=object())  # the live shop's tables, in memory
    folder = models / "tables" / built["tables"]
    items = pd.read_parquet(folder / "items.parquet").set_index("item_id")
    assert items["pop_7d"][items["pop_7d"] > 0].to_dict() == snapshot.popularity["7d"]
    assert items["pop_all"].to_dict() == snapshot.popularity["all"]
    assert items["first_sale"].to_dict() == snapshot.first_sale
    assert items["repeat_rate"].to_dict() == pytest.approx(snapshot.repeat_rate)
    pairs = pd.read_parquet(folder / "co_purchases.parquet")
    from recsys.batch.tables import table_to_lists

    assert table_to_lists(pairs) == snapshot.co_bought

    from recsys.batch.served import CoBought
    from recsys.models.cf_arrays import is_mapped

    catalog = open_catalog(
        CatalogPaths(db=db, embeddings=tmp_path / "none", index=tmp_path / "index", models=models),
        build_missing=False,
    )
    try:
        assert catalog.versions.cf == built["cf"] and catalog.versions.ranker == built["ranker"]["version"]
        assert catalog.recommender.feed_model == "learned"
        served = catalog.recommender.snapshot  # from the tables version: no events read, no histories kept
        assert catalog.recommender.tables == folder and served.histories == {}
        assert served.popularity == snapshot.popularity and list(served.popularity["7d"]) == sorted(
            snapshot.popularity["7d"], key=lambda i: (-snapshot.popularity["7d"][i], i)
        )
        assert served.first_sale == snapshot.first_sale and served.last_sale == snapshot.last_sale
        assert isinstance(served.co_bought, CoBought)  # memory-mapped arrays, not a dict
        assert served.co_bought == snapshot.co_bought and served.now == snapshot.now
        assert is_mapped(catalog.recommender.cf.user_factors)
        assert served.repeat_rate == pytest.approx(snapshot.repeat_rate)
        from recsys.models.hybrid import Popularity

        counted = Popularity(events)
        assert catalog.recommender.popularity.scores == pytest.approx(counted.scores)
        shopper = events["user_id"].iloc[0]
        assert len(catalog.feed(shopper, k=5)) == 5
    finally:
        catalog.close()


def test_a_feed_during_a_swap_comes_from_one_version_or_the_other(tmp_path):
    """Readers keep asking for feeds while a writer swaps two memory-mapped model versions in and out: every
    answer is the answer of version A or of version B, never one mixed from both."""
    import threading

    from recsys.models.cf import CFConfig, CollaborativeFilter
    from recsys.models.cf_arrays import is_mapped
    from recsys.shop.recommender import Recommender
    from recsys.store.sqlite import Store

    rng = np.random.default_rng(0)
    items = pd.DataFrame(
        {
            "item_id": [f"i{n:02d}" for n in range(40)],
            "title": "",
            "category": "c",
            "attributes": [{}] * 40,
            "image": None,
        }
    )
    events = pd.DataFrame(
        {
            "user_id": [f"u{u:02d}" for u in rng.integers(0, 30, 600)],
            "item_id": [f"i{i:02d}" for i in rng.zipf(1.5, 600) % 40],
            "timestamp": np.sort(rng.uniform(0, 60 * DAY, 600)),
        }
    )
    store = Store(tmp_path / "shop.db")
    store.import_items(items, "items")
    store.import_interactions(events, "events")
    interactions = store.interactions()
    halves = (interactions[interactions["timestamp"] < 30 * DAY], interactions[interactions["timestamp"] >= 30 * DAY])
    versions = []
    for n, half in enumerate(halves):  # two retrains, unlike; served as workers serve them: mapped from disk
        CollaborativeFilter(CFConfig(factors=8)).fit(half).save(tmp_path / f"cf{n}")
        versions.append(CollaborativeFilter.load(tmp_path / f"cf{n}"))
    assert all(is_mapped(cf.user_factors) for cf in versions)
    recommender = Recommender(store, None, versions[0])
    users = [f"u{u:02d}" for u in range(30)]
    expected = []
    for cf in versions:
        recommender.use_models(None, cf, ranker=None)
        expected.append({u: [r.item_id for r in recommender.feed(u, k=8)] for u in users})
    assert expected[0] != expected[1]  # the versions answer differently

    stop, mixed, answered = threading.Event(), [], [0]

    def read() -> None:
        while not stop.is_set():
            for u in users:
                got = [r.item_id for r in recommender.feed(u, k=8)]
                if got not in (expected[0][u], expected[1][u]):
                    mixed.append((u, got))
                answered[0] += 1

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    swaps = [0]

    def swap() -> bool:  # swap on while the readers read: on a busy machine they start late, read slowly
        recommender.use_models(None, versions[swaps[0] % 2], ranker=None)
        swaps[0] += 1
        return swaps[0] >= 40 and answered[0] >= 4

    try:
        wait_until(swap, lambda: f"the readers to answer while the models swap ({answered[0]} rounds)", every=0.001)
    finally:
        stop.set()
        for t in readers:
            t.join()
    store.close()
    assert answered[0] > 0 and not mixed


_WORKER = """
import json, sys
from pathlib import Path
import psutil
from recsys.shop.catalog import CatalogPaths, open_catalog
root = Path(sys.argv[1])
paths = CatalogPaths(db=root / "shop.db", embeddings=root / "none", index=root / "index", models=root / "models")
catalog = open_catalog(paths, build_missing=False)
assert catalog.recommender.tables is not None and catalog.recommender.feed_model == "blend"
for user in ("u00001", "u00002", "u00003"):
    catalog.feed(user, k=10)
anon = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssAnon:"))
print(json.dumps({"anon": anon * 1024, "uss": psutil.Process().memory_full_info().uss}))
"""


def _trained_shop(root, shoppers: int, events_per_shopper: int) -> None:
    from recsys.batch.train import TrainOptions, train_shop
    from recsys.store.sqlite import Store

    rng = np.random.default_rng(7)
    n = shoppers * events_per_shopper
    items = pd.DataFrame(
        {"item_id": [f"i{i:04d}" for i in range(800)], "title": "", "category": "c", "attributes": [{}] * 800}
    ).assign(image=None)
    events = pd.DataFrame(
        {
            "user_id": [f"u{u:05d}" for u in np.repeat(np.arange(shoppers), events_per_shopper)],
            "item_id": [f"i{i:04d}" for i in rng.zipf(1.3, n) % 800],
            "timestamp": rng.uniform(0, 300 * DAY, n),
        }
    )
    root.mkdir()
    store = Store(root / "shop.db")
    store.import_items(items, "items")
    store.import_interactions(events, "events")
    store.close()
    train_shop(root / "shop.db", root / "models", options=TrainOptions(ranker=False, progress=False))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssAnon from Linux's /proc")
def test_a_workers_private_memory_does_not_grow_with_the_events_or_the_shoppers(tmp_path):
    """The same catalog with 10x the events, once as 10x the events per shopper and once as 10x the shoppers: a
    fresh worker's private anonymous memory after opening the shop (CF, tables) and answering feeds stays within
    a few MB. CF's factors, user ids and counts and the co-purchase lists are memory-mapped files, whose pages
    the kernel shares between the workers of a host (and USS, which counts a mapped page as private while one
    process maps it, is reported beside)."""
    import json
    import subprocess
    import sys

    pytest.importorskip("psutil")
    sizes = {"base": (5000, 4), "events": (5000, 40), "shoppers": (50000, 4)}  # 20k, 200k, 200k events
    memory = {}
    for name, (shoppers, per_shopper) in sizes.items():
        root = tmp_path / name
        _trained_shop(root, shoppers, per_shopper)
        done = subprocess.run(
            [sys.executable, "-c", _WORKER, str(root)], capture_output=True, text=True, timeout=600, check=True
        )
        memory[name] = json.loads(done.stdout.strip().splitlines()[-1])
    report = {name: {k: round(v / 2**20, 1) for k, v in m.items()} for name, m in memory.items()}
    for name in ("events", "shoppers"):
        # measured: +2.0 / +0.0 MB; with CF held in memory (the older format): +3.0 / +15.4 MB
        assert memory[name]["anon"] - memory["base"]["anon"] < 6 * 2**20, report


def test_the_export_reads_either_engine_as_the_same_columnar_table(store_url, tmp_path):
    """`stylerec train` starts from the same Parquet file whichever store holds the events."""
    import pyarrow.parquet as pq

    from recsys.batch.export import export_events
    from recsys.store.opener import open_store

    store = open_store(store_url)
    try:
        store.import_items(
            pd.DataFrame(
                {"item_id": ["a", "b"], "title": ["A", "B"], "category": "x", "attributes": None, "image": None}
            ),
            "c",
        )
        events = pd.DataFrame(
            {"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"], "timestamp": [1.0, 2.0, 3.0]}
        ).assign(weight=1.0, event="purchase")
        assert store.import_interactions(events, "events.csv") == 3
    finally:
        store.close()
    path, last_id = export_events(store_url, tmp_path / "events.parquet", chunk_rows=2)
    table = pq.read_table(path).to_pandas()
    assert last_id == table["id"].max() and len(table) == 3
    assert (
        table[["user_id", "item_id", "timestamp"]].values.tolist()
        == events[["user_id", "item_id", "timestamp"]].values.tolist()
    )


def test_workers_read_the_style_lists_of_the_index_they_serve(demo_shop, tmp_path):
    """`stylerec train` searches every item's nearest in the served index once; a worker whose index is that
    version reads the lists (the same feeds as searching), and a worker whose index changed searches."""
    from recsys.batch.train import TrainOptions, train_shop
    from recsys.shop.catalog import CatalogPaths, build_index_from_embeddings, open_catalog
    from recsys.store.data_io import read_catalog, read_interactions
    from recsys.store.sqlite import Store

    catalog_dir, embeddings, _ = demo_shop
    db, models, index = tmp_path / "shop.db", tmp_path / "models", tmp_path / "index"
    store = Store(db)
    store.import_items(read_catalog(catalog_dir), "demo")
    store.import_interactions(read_interactions(catalog_dir / "interactions.csv"), "interactions.csv")
    shoppers = store.shoppers()[:40]
    store.close()
    build_index_from_embeddings(embeddings, index)
    train_shop(db, models, embeddings, index, TrainOptions(windows=2, sample_shoppers=150, progress=False))
    paths = CatalogPaths(db=db, embeddings=embeddings, index=index, models=models)

    catalog = open_catalog(paths, build_missing=False)
    try:
        style = catalog.recommender.style
        assert style.neighbours is not None and style.index.fingerprint is not None
        assert np.array_equal(style.neighbours, style.nearest_rows(style.neighbours.shape[1]))
        listed = {u: [(r.item_id, r.score, r.reason) for r in catalog.feed(u, 12)] for u in shoppers}
        items = style.ids[::7]
        alike = {i: [(r.item_id, r.style) for r in catalog.similar(i, 10)] for i in items}
        assert all(catalog.recommender._listed({i}, 10, style.weigh(style.vector(i))) for i in items)  # read
        lists = style.neighbours
        style.neighbours = None  # the same feeds and same-style lists when every query is searched in the index
        catalog.feeds.clear()
        assert {u: [(r.item_id, r.score, r.reason) for r in catalog.feed(u, 12)] for u in shoppers} == listed
        for item in items:
            searched = [(r.item_id, r.style) for r in catalog.similar(item, 10)]
            assert [i for i, _ in searched] == [i for i, _ in alike[item]]
            assert [s for _, s in searched] == pytest.approx([s for _, s in alike[item]], abs=1e-6)
        style.neighbours = lists
        assert any(r[2].startswith("same style as") for feed in listed.values() for r in feed)
    finally:
        catalog.close()

    build_index_from_embeddings(embeddings, index, spec="IVF4,Flat")  # another index: the lists do not answer for it
    catalog = open_catalog(paths, build_missing=False)
    try:
        assert catalog.recommender.style.neighbours is None and catalog.feed(shoppers[0], 12)
    finally:
        catalog.close()
