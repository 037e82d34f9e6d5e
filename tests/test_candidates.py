"""Candidate sources on a tiny hand-made shop whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.candidates import SOURCES, ItemInfo, Pool, Shopper, Snapshot, generate, repurchase_order
from recsys.models.hybrid import DAY, StyleSpace

ITEMS = {  # item_id: (title, kind, group)
    "red-tee": ("Red tee", "T-shirt", "tee"),
    "blue-tee": ("Blue tee", "T-shirt", "tee"),
    "jeans": ("Jeans", "Trousers", "jeans"),
    "belt": ("Belt", "Belt", "belt"),
    "dress1": ("Dress one", "Dress", "dress1"),
    "dress2": ("Dress two", "Dress", "dress2"),
    "hat": ("Hat", "Hat", "hat"),
}
NOW = 20 * DAY


@pytest.fixture()
def snapshot() -> Snapshot:
    catalog = pd.DataFrame(
        [
            {"item_id": i, "title": t, "category": "clothes", "attributes": {"kind": k, "group": g}}
            for i, (t, k, g) in ITEMS.items()
        ]
    )
    rows = [
        ("u1", "red-tee", 1), ("u1", "jeans", 10),  # u1: tee long ago, jeans lately
        ("u2", "jeans", 3), ("u2", "belt", 5),  # jeans and belt bought within a week
        ("u3", "dress1", 14), ("u3", "dress1", 15), ("u4", "dress1", 16), ("u4", "dress2", 17),
        ("u5", "hat", 15), ("u6", "hat", 18),
    ]  # fmt: skip
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    events = events.assign(timestamp=events["day"] * DAY, weight=1.0).drop(columns="day")
    vectors = {"red-tee": [1, 0, 0], "blue-tee": [0.9, 0.1, 0], "jeans": [0, 1, 0], "hat": [0, 0, 1]}
    norm = np.array(list(vectors.values()), np.float32)
    style = StyleSpace(list(vectors), norm / np.linalg.norm(norm, axis=1, keepdims=True))
    return Snapshot.build(events, ItemInfo(catalog), style, now=NOW)


def _run(snapshot, source, user, n=10):
    return [(c.item_id, c.reason) for c in SOURCES[source]().generate(snapshot, Shopper(snapshot, user), n)]


def test_buy_again_puts_recent_purchases_first(snapshot):
    assert _run(snapshot, "buy_again", "u1") == [("jeans", "buy again"), ("red-tee", "buy again")]
    assert _run(snapshot, "buy_again", "stranger") == []


def test_siblings_are_other_colours_of_what_was_bought(snapshot):
    assert _run(snapshot, "siblings", "u1") == [("blue-tee", "another colour of Red tee")]


def test_bought_together_within_a_week(snapshot):
    assert _run(snapshot, "bought_together", "u1") == [("belt", "often bought with Jeans")]
    assert _run(snapshot, "bought_together", "u5") == []  # the hat was never bought with anything


def test_trending_overall_and_in_the_shoppers_product_types(snapshot):
    # last week (days 13-19): dress1 x3, hat x2, dress2 x1
    assert [i for i, _ in _run(snapshot, "trending", "stranger")] == ["dress1", "hat", "dress2"]
    assert _run(snapshot, "trending", "u4", n=4)[:2] == [
        ("dress1", "trending in dress"),
        ("dress2", "trending in dress"),
    ]
    assert snapshot.popularity["7d"] == {"dress1": 3, "hat": 2, "dress2": 1}


def test_style_neighbours_and_cf(snapshot):
    found = _run(snapshot, "style", "u1", n=2)
    assert found[0] == ("blue-tee", "same style as Red tee")
    assert {i for i, _ in found} <= set(snapshot.style.ids)
    cf = _run(snapshot, "cf", "u1", n=len(ITEMS))
    assert cf and all(reason == "shoppers like you bought this" for _, reason in cf)
    assert {"jeans", "red-tee"} & {i for i, _ in cf}  # already-bought items are allowed


def test_pool_merges_sources_and_reasons_follow_source_order(snapshot):
    shopper = Shopper(snapshot, "u1")
    sources = [SOURCES[name]() for name in ("buy_again", "siblings", "bought_together", "style", "trending")]
    pool = generate(snapshot, shopper, sources, 5)
    assert set(pool.found["blue-tee"]) == {"siblings", "style"}
    assert pool.reason("blue-tee") == "another colour of Red tee"  # the more specific source names it
    assert pool.reason("red-tee") == "buy again" and pool.reason("belt") == "often bought with Jeans"
    assert "jeans" not in generate(snapshot, shopper, sources, 5, exclude={"jeans"}).items
    assert isinstance(pool, Pool)


def test_the_repurchase_rule_and_the_facts_the_ranker_learns_from(snapshot):
    from recsys.models.ranker import RankerConfig, feature_names, features

    # u1 bought the red tee, then jeans: their purchases latest first, the tee's other colour, last week's sellers
    u1 = Shopper(snapshot, "u1")
    assert repurchase_order(snapshot, u1, 10) == ["jeans", "red-tee", "blue-tee", "dress1", "hat", "dress2"]
    assert repurchase_order(snapshot, u1, 2) == ["jeans", "red-tee"]
    assert snapshot.repeat_rate["dress1"] == pytest.approx(0.5) and snapshot.repeat_rate["jeans"] == 0
    assert snapshot.last_sale["hat"] == 18 * DAY
    assert snapshot.kind_rank == {"dress1": 1, "dress2": 2, "hat": 1}

    config = RankerConfig(sources=("buy_again", "siblings", "trending"), use_style=False, repurchase_features=True)
    u3 = Shopper(snapshot, "u3")  # bought dress1 on days 14 and 15
    pool = generate(snapshot, u3, config.active_sources(), 10)
    column = dict(zip(feature_names(config), features(snapshot, u3, pool, config).T, strict=True))
    dress, hat = pool.items.index("dress1"), pool.items.index("hat")
    assert column["repurchase_rank"][dress] == 1 and column["repurchase_rank"][hat] == 2  # dress1, then hat, dress2
    assert column["repeat_share"][dress] == 0.5  # one of their two purchases repeats an earlier one
    assert column["item_days_since_sale"][dress] == pytest.approx(4.0)  # u4 bought it on day 16, now is day 20
    assert column["item_since_visit"][dress] == 0 and np.isnan(column["item_since_visit"][hat])
    assert column["kind_rank_7d"][hat] == 1 and column["item_repeat_rate"][hat] == 0
    # the columns every ranker reads, by hand: u3's two dress1 purchases (days 14, 15), now is day 20
    assert column["buy_again_rank"][dress] == 1 and np.isnan(column["buy_again_score"][hat])
    assert column["n_sources"][dress] == 2 and column["n_sources"][hat] == 1  # buy again + trending; trending
    assert column["item_bought"][dress] == 2 and column["item_bought"][hat] == 0
    assert column["item_days_since"][dress] == pytest.approx(5.0) and np.isnan(column["item_days_since"][hat])
    assert column["group_bought"][dress] == 2 and column["group_days_since"][dress] == pytest.approx(5.0)
    assert column["kind_share"][dress] == 1.0 and column["kind_share"][hat] == 0.0
    assert column["pop_7d"][dress] == 3 and column["trend"][dress] == pytest.approx(4 / (3 / 4 + 1))
    assert column["item_age_days"][dress] == pytest.approx(6.0) and np.isnan(column["price_ratio"]).all()
    assert (column["user_events"] == 2).all() and column["user_days_since_last"][hat] == pytest.approx(5.0)


def test_snapshot_ignores_the_future_and_groups_by_id_prefix(snapshot):
    events = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"], "timestamp": [1.0, 5.0], "weight": 1.0})
    early = Snapshot.build(events, ItemInfo(), now=3.0, cf=None)
    assert early.popularity["all"] == {"x": 1} and "a" in early.histories and len(early.histories["a"]) == 1
    hm = pd.DataFrame(
        [{"item_id": "0108775015", "title": "Strap top", "category": "", "attributes": {"product_code": "108775"}}]
    )
    info = ItemInfo(hm)
    assert info.group_of("0108775015") == info.group_of("0108775044") == "0108775"  # a colour missing from the catalog
    assert info.group_of("0999999001") != info.group_of("0108775015")


def test_co_purchases_count_only_each_shoppers_latest_purchases():
    """A bot-like shopper with thousands of events must not make the pairing quadratic in its history."""
    from recsys.candidates.base import _co_purchases

    bot = pd.DataFrame({"user_id": "bot", "item_id": [f"i{n}" for n in range(3000)], "timestamp": np.arange(3000.0)})
    shopper = pd.DataFrame({"user_id": "s", "item_id": ["a", "b"], "timestamp": [0.0, 1.0]})
    pairs = _co_purchases(pd.concat([bot, shopper]), days=1e9, max_per_shopper=50)
    assert pairs["a"] == [("b", 1.0)] and pairs["b"] == [("a", 1.0)]
    assert "i0" not in pairs and set(pairs) >= {"i2999", "i2950"} and "i2949" not in pairs
    assert all(len(others) <= 30 for others in pairs.values())


def test_cf_candidates_from_a_pool_of_best_sellers_score_as_the_whole_catalog(snapshot):
    shopper = Shopper(snapshot, "u1")
    cf = snapshot.cf
    everything = SOURCES["cf"]().generate(snapshot, shopper, len(ITEMS))
    # a pool as large as what CF knows is the whole catalog: the same list
    assert SOURCES["cf"](pool=len(cf.item_ids)).generate(snapshot, shopper, len(ITEMS)) == everything
    columns, factors = snapshot.cf_best_sellers(2)
    best = [cf.item_ids[j] for j in columns]
    assert best == ["dress1", "hat"]  # most sold in the last 30 days (dress1 3x, hat 2x)
    assert np.array_equal(factors, cf.item_factors[columns])
    found = SOURCES["cf"](pool=2).generate(snapshot, shopper, len(ITEMS))
    assert [c.item_id for c in found] == sorted(best, key=lambda i: -shopper.cf_scores[cf.item_ids.index(i)])
    for c in found:  # each score is the item's CF score over the whole catalog
        assert c.score == pytest.approx(float(shopper.cf_scores[cf.item_ids.index(c.item_id)]), rel=1e-6)
    # a pool larger than what ever sold is filled in CF's column order
    assert len(snapshot.cf_best_sellers(len(cf.item_ids))[0]) == len(cf.item_ids)
    assert sorted(snapshot.cf_best_sellers(len(cf.item_ids))[0].tolist()) == list(range(len(cf.item_ids)))


def test_the_feeds_per_request_shortcuts_give_the_same_values(snapshot):
    shopper = Shopper(snapshot, "u1")
    columns = np.array([3, 0, 2])
    assert np.array_equal(shopper.cf_scores_of(columns), shopper.cf_scores[columns])
    style = snapshot.style
    ids = ["jeans", "red-tee", "hat", "jeans"]
    assert np.array_equal(style.vectors_of(ids), np.stack([style.vector(i) for i in ids]))
    assert style.vectors_of([]).shape == (0, 3)


def test_recency_weights_sum_each_items_decayed_events_most_recent_first(snapshot):
    """The vectorised weights equal the plain loop over the events (values bit for bit, the same order), for a
    long history with repeats; they are computed once per half-life."""
    rng = np.random.default_rng(3)
    items = [f"i{j}" for j in rng.integers(0, 60, 500)]
    history = pd.DataFrame(
        {"item_id": items, "timestamp": np.sort(rng.uniform(0, 90 * DAY, 500)), "weight": rng.uniform(0.5, 2, 500)}
    )
    shopper = Shopper(snapshot, "u1", history)
    for half_life in (30.0, 7.0):
        decayed = shopper.weights * np.exp2(-(shopper.now - shopper.timestamps) / (half_life * DAY))
        plain: dict[str, float] = {}
        for item, w in zip(shopper.items[::-1], decayed[::-1], strict=True):
            plain[item] = plain.get(item, 0.0) + float(w)
        weights = shopper.recency_weights(half_life)
        assert list(weights.items()) == list(plain.items())
        assert shopper.recency_weights(half_life) is weights
    assert Shopper(snapshot, "nobody", history.iloc[:0]).recency_weights() == {}


def test_the_style_source_answers_from_the_batch_lists_as_from_the_index(snapshot, tmp_path):
    """`StyleSpace.neighbours` (the batch's nearest-item lists) replace a search per purchase: the same candidates,
    scores and reasons, with purchases left out, for light and heavy shoppers (whose purchases fill a list: the
    source then searches), on a catalog larger than a list and on one smaller (complete lists)."""
    from recsys.batch.bundle import read_style_neighbours, write_style_neighbours
    from recsys.candidates.base import _style_neighbour_popularity
    from recsys.models.hybrid import NEIGHBOUR_LIST

    rng = np.random.default_rng(3)
    ids = [f"i{n:03d}" for n in range(300)]
    vectors = rng.normal(size=(len(ids), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    catalog = pd.DataFrame({"item_id": ids, "title": ids, "category": "c", "attributes": [{}] * len(ids)})
    rows = [
        (f"u{u}", ids[j], float(t))
        for u, size in enumerate([1, 3, 5, 10, 40, 80, 200])
        for t, j in enumerate(rng.choice(len(ids), size, replace=False))
    ]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(weight=1.0)
    space = StyleSpace(ids, vectors)
    big = Snapshot.build(events, ItemInfo(catalog), space, now=1000.0)
    source = SOURCES["style"]()

    def answers(shop, users):
        return {u: source.generate(shop, Shopper(shop, u), 20) for u in users}

    users = sorted(set(events["user_id"]))
    for shop, who in ((big, users), (snapshot, ["u1", "u2", "u5"])):
        assert shop.style.neighbours is None
        searched = answers(shop, who)
        popularity = {i: float(n) for n, i in enumerate(shop.style.ids)}
        stats = _style_neighbour_popularity(shop.style, popularity)
        lists = shop.style.neighbour_rows()
        assert lists.shape == (len(shop.style.ids), NEIGHBOUR_LIST)
        assert answers(shop, who) == searched and any(searched.values())
        assert _style_neighbour_popularity(shop.style, popularity) == pytest.approx(stats)
    # every row: the item's nearest others by inner product (a flat index is exact), best first
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    lists = big.style.neighbours
    assert lists[:, 0].tolist() == similarity.argmax(axis=1).tolist()
    assert np.all(np.diff(np.take_along_axis(similarity, lists.astype(int), axis=1), axis=1) <= 1e-6)
    # a worker uses the written lists only over exactly the ids they were searched for
    write_style_neighbours(tmp_path, ids, lists)
    assert np.array_equal(read_style_neighbours(tmp_path, ids), lists)
    assert read_style_neighbours(tmp_path, [*ids[:-1], "other"]) is None
    assert read_style_neighbours(tmp_path, ids[:-1]) is None
    broken = lists.copy()
    broken[5, 3] = len(ids)  # a row no item has
    write_style_neighbours(tmp_path, ids, broken)
    assert read_style_neighbours(tmp_path, ids) is None
    (tmp_path / "style_neighbours.npy").write_bytes(b"not an array")
    assert read_style_neighbours(tmp_path, ids) is None
    # a vector added or removed outdates the lists: the source searches again
    space.upsert("new", vectors[0])
    assert space.neighbours is None
