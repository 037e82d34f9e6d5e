"""The learned feed: training windows stay inside the training data, save/load, reasons and settings."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.candidates import ItemInfo
from recsys.data_io import read_catalog, read_interactions
from recsys.hybrid import DAY
from recsys.ranker import LearnedRanker, RankerConfig, training_folds, training_windows
from recsys.recommender import Recommender
from recsys.shoppers import START
from recsys.splits import temporal_split
from recsys.store import Store

FAST = RankerConfig(windows=3, max_users_per_window=300, rounds=60, min_data_in_leaf=20)
REASONS = {
    "buy_again": "buy again",
    "siblings": "another colour of",
    "bought_together": "often bought with",
    "cf": "shoppers like you",
    "style": "same style as",
    "trending": "trending",
}


def test_training_windows_never_touch_the_test_window(demo_shop):
    catalog_dir, _, style = demo_shop
    interactions = read_interactions(catalog_dir / "interactions.csv")
    cutoff = START + 100 * DAY
    train, test = temporal_split(interactions, cutoff)
    windows = training_windows(train, 28, 8, 7)
    assert len(windows) == 8 and all(stop <= train["timestamp"].max() + 1 < cutoff for _, stop in windows)
    items = ItemInfo(read_catalog(catalog_dir))
    folds = training_folds(train, items, style, FAST)
    for snapshot, labels in folds:
        assert labels["timestamp"].max() < cutoff and labels["timestamp"].min() >= snapshot.now
        assert max(float(h["timestamp"].max()) for h in snapshot.histories.values()) < snapshot.now
        assert not set(test.index) & set(labels.index)
    ranker = LearnedRanker(FAST).fit(train, items, style, folds=folds)
    assert ranker.trained and ranker.windows and all(stop <= cutoff for _, stop in ranker.windows)


@pytest.fixture()
def shop(demo_shop, tmp_path):
    catalog_dir, _, style = demo_shop
    store = Store(tmp_path / "shop.db")
    store.import_items(read_catalog(catalog_dir), "demo")
    store.import_interactions(read_interactions(catalog_dir / "interactions.csv"), "interactions.csv")
    recommender = Recommender(store, style)
    assert recommender.feed_model == "blend"
    ranker = recommender.train_ranker(FAST)
    yield recommender, ranker, style
    store.close()


def test_the_feed_names_its_sources_and_may_show_bought_items(shop):
    recommender, ranker, _ = shop
    assert recommender.feed_model == "learned"
    bought = set(recommender.history("U0001")["item_id"])
    feed = recommender.feed("U0001", k=20)
    assert len(feed) == 20 and len({r.item_id for r in feed}) == 20
    pool = recommender.pipeline.pool("U0001", recommender.history("U0001"))[1]
    for r in feed:
        first_source = next(iter(pool.found[r.item_id]))
        expected = REASONS[first_source]
        assert r.reason.startswith(expected), (r, pool.found[r.item_id])
        if r.item_id in bought:
            assert r.reason == "buy again"
    assert any(r.reason.startswith("same style as") for r in feed)
    stranger = recommender.feed("someone-new", k=5)
    assert len(stranger) == 5 and all(r.reason.startswith("trending") for r in stranger)
    bags = recommender.feed("U0001", k=5, categories={"bag"})
    assert len(bags) == 5 and all(recommender.store.item(r.item_id)["category"] == "bag" for r in bags)
    assert recommender.feed("U0001", k=5, alpha=0.5)[0].reason  # alpha asks for the blend

    strict = LearnedRanker(ranker.config.model_copy(update={"allow_bought": False}))
    strict.booster = ranker.booster
    recommender.learned, recommender.snapshot = strict, None
    recommender.refresh_catalog()
    assert not bought & {r.item_id for r in recommender.feed("U0001", k=20)}


def test_save_and_load_give_identical_rankings(shop, tmp_path):
    recommender, ranker, style = shop
    before = [(r.item_id, r.score, r.reason) for r in recommender.feed("U0002", k=15)]
    ranker.save(tmp_path / "ranker")
    loaded = LearnedRanker.load(tmp_path / "ranker")
    assert loaded.config == ranker.config and loaded.windows == ranker.windows
    again = Recommender(recommender.store, style, ranker=loaded)
    assert [(r.item_id, r.score, r.reason) for r in again.feed("U0002", k=15)] == before
    with pytest.raises(FileNotFoundError):
        LearnedRanker.load(tmp_path / "nothing")


def test_too_little_data_leaves_the_blend_in_charge():
    events = pd.DataFrame(
        {"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "timestamp": [0.0, 10 * DAY, 20 * DAY], "weight": 1.0}
    )
    ranker = LearnedRanker(FAST).fit(events, ItemInfo())
    assert not ranker.trained and ranker.training["shoppers"] < FAST.min_shoppers
    with pytest.raises(RuntimeError, match="not trained"):
        ranker.score(None)
