"""The hybrid ranker on the demo shop: planted style preferences, cold-start items and shoppers, the library API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.candidates import ItemInfo, Snapshot
from recsys.evaluation.evaluate import EvalData, evaluate
from recsys.evaluation.splits import temporal_split
from recsys.models.base import HybridModel, make_models
from recsys.models.ranker import RankerConfig
from recsys.shop.recommender import Recommender
from recsys.shop.shoppers import DAY, START
from recsys.store.data_io import read_catalog, read_interactions
from recsys.store.sqlite import Store


@pytest.fixture(scope="module")
def split_demo(demo_shop):
    catalog_dir, _, style = demo_shop
    interactions = read_interactions(catalog_dir / "interactions.csv")
    train, test = temporal_split(interactions, START + 100 * DAY)
    return EvalData(train, test, style, list(style.ids), "temporal"), catalog_dir


FAST = RankerConfig(windows=3, max_users_per_window=300, rounds=60, min_data_in_leaf=20)


def test_hybrid_beats_cf_on_held_out_purchases_and_reaches_new_items(split_demo):
    data, _ = split_demo
    models = ["repurchase", "popularity", "cf", "style", "hybrid", "hybrid-nostyle"]
    result = evaluate(data, k=10, models=models, ranker_config=FAST)
    cf, style, hybrid = (result.models[m] for m in ("cf", "style", "hybrid"))
    assert result.data["cold_test_items"] > 0
    assert result.ranker["hybrid"]["learned"] and result.ranker["hybrid"]["feature_gain"]
    assert hybrid["ndcg@10"] > cf["ndcg@10"] and hybrid["recall@10"] > cf["recall@10"]
    assert hybrid["ndcg@10"] >= style["ndcg@10"]
    assert hybrid["ndcg@10"] > result.models["hybrid-nostyle"]["ndcg@10"]  # the planted styles are learnable
    assert cf["cold_recall@10"] == 0.0  # CF cannot recommend what nobody bought yet
    assert style["cold_recall@10"] > 0.05  # the style source reaches new items ...
    # ... and the ranker weighs them against the base rate of a catalog's unsold stock (measured, not asserted)
    assert hybrid["cold_recall@10"] is not None and 0 < result.cold["never_bought_pool_base_rate"] < 1
    lo, hi = hybrid["ndcg@10_ci"]
    assert lo <= hybrid["ndcg@10"] <= hi
    assert "hybrid vs hybrid-nostyle" in result.comparisons and result.sources["union"]["recall@100"] > 0


def test_feeds_follow_the_planted_styles(split_demo):
    data, catalog_dir = split_demo
    catalog = read_catalog(catalog_dir).set_index("item_id")
    truth = pd.read_csv(catalog_dir / "shoppers.csv").set_index("user_id")
    items = ItemInfo(read_catalog(catalog_dir))
    snapshot = Snapshot.build(data.train, items, data.style)
    models = {
        name: model.fit(snapshot, data.train)
        for name, model in make_models(["cf", "popularity"], FAST, "temporal").items()
    }
    models["hybrid"] = HybridModel(FAST).fit(snapshot, data.train)

    def liked_share(lists: dict[str, list[str]]) -> float:
        hits = [
            catalog.loc[item, "attributes"]["pattern"] in truth.loc[user, "liked_patterns"].split("|")
            for user, items in lists.items()
            for item in items
        ]
        return float(np.mean(hits))

    users = list(truth.index[:120])
    share = {name: liked_share({u: model.recommend(u, 10) for u in users}) for name, model in models.items()}
    assert share["cf"] > share["popularity"] and share["hybrid"] > share["popularity"] + 0.5, share
    # a shopper likes one or two of the six patterns; the feed also shows what they buy again and what trends
    assert share["hybrid"] > 0.85


@pytest.fixture()
def recommender(demo_shop, tmp_path):
    catalog_dir, _, style = demo_shop
    store = Store(tmp_path / "shop.db")
    store.import_items(read_catalog(catalog_dir), "demo")
    store.import_interactions(read_interactions(catalog_dir / "interactions.csv"), "interactions.csv")
    yield Recommender(store, style)
    store.close()


def test_feed_reasons_filters_and_cold_shoppers(recommender):
    feed = recommender.feed("U0001", k=10)
    assert len(feed) == 10 and len({r.item_id for r in feed}) == 10
    assert all(r.reason for r in feed) and feed[0].score >= feed[-1].score
    bought = set(recommender.history("U0001")["item_id"])
    assert not bought & {r.item_id for r in feed}
    bags = recommender.feed("U0001", k=5, categories={"bag"})
    assert len(bags) == 5 and all(recommender.store.item(r.item_id)["category"] == "bag" for r in bags)

    stranger = recommender.feed("someone-new", k=5)  # never seen: the popular items
    assert [r.item_id for r in stranger] == recommender.popularity.top(5)
    assert all(r.reason == "popular right now" for r in stranger)


def test_an_event_changes_the_feed_without_retraining(recommender):
    # a new shopper's first clicks on striped items turn their feed striped
    striped = [i["item_id"] for i in recommender.store.items() if i["attributes"]["pattern"] == "stripes"][:3]
    for item in striped:
        recommender.record_event("fresh", item, "click")
    feed = recommender.feed("fresh", k=10)
    patterns = [recommender.store.item(r.item_id)["attributes"]["pattern"] for r in feed]
    assert patterns.count("stripes") >= 5, patterns
    assert not set(striped) & {r.item_id for r in feed}


def test_similar_items_shop_this_style_and_preferred_styles(recommender, demo_shop):
    _, _, style = demo_shop
    item = "D0010"
    pattern = recommender.store.item(item)["attributes"]["pattern"]
    similar = recommender.similar_items(item, k=8)
    assert item not in [r.item_id for r in similar]
    same = [recommender.store.item(r.item_id)["attributes"]["pattern"] == pattern for r in similar]
    title = recommender.store.item(item)["title"]
    assert sum(same) >= 5 and {r.reason for r in similar} == {f"same style as {title}"}
    personal = recommender.similar_items(item, k=8, user_id="U0002")
    assert len(personal) == 8

    found = recommender.shop_this_style(style.vector(item), k=3)
    assert found[0].reason == "same style as your photo"
    assert found[0].item_id == item and found[0].style == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="style vector has"):
        recommender.shop_this_style(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="cannot embed photos"):
        recommender.shop_this_style(b"not used")
    with pytest.raises(KeyError, match="NOPE"):
        recommender.similar_items("NOPE")

    for name, source in (("stripes", "D0010"), ("dots", "D0022")):
        recommender.store.put_style(name, f"{source}.jpg", style.vector(source), style.model_id)
    recommender.store.put_style("other-model", "x.jpg", style.vector("D0010"), "another-model")
    history = recommender.history("U0003")
    styles = recommender.preferred_styles("U0003")
    assert [s["name"] for s in styles] in (["stripes", "dots"], ["dots", "stripes"])
    assert styles[0]["score"] >= styles[1]["score"] and len(history) > 0
    assert recommender.preferred_styles("nobody") == []


def test_diversity_lowers_intra_list_similarity(demo_shop, recommender):
    _, _, style = demo_shop
    plain = recommender.feed("U0004", k=10)
    recommender.ranker.config = recommender.config.model_copy(update={"diversity": 0.7})
    diverse = recommender.feed("U0004", k=10)

    def similarity(items) -> float:
        v = np.stack([style.vector(r.item_id) for r in items])
        s = v @ v.T
        return (s.sum() - np.trace(s)) / (len(v) * (len(v) - 1))

    assert similarity(diverse) < similarity(plain)
