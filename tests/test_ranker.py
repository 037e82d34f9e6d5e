"""The learned feed: training windows stay inside the training data, save/load, reasons and settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.candidates import ItemInfo
from recsys.evaluation.splits import temporal_split
from recsys.models.hybrid import DAY
from recsys.models.ranker import Feed, LearnedRanker, RankerConfig, features, training_folds, training_windows
from recsys.shop.recommender import Recommender
from recsys.shop.shoppers import START
from recsys.store.data_io import read_catalog, read_interactions
from recsys.store.sqlite import Store

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


@pytest.fixture(scope="module")
def shop(demo_shop, tmp_path_factory):
    """One demo shop with a trained ranker for the module's tests (built once: the tests must not change it)."""
    catalog_dir, _, style = demo_shop
    store = Store(tmp_path_factory.mktemp("ranker-shop") / "shop.db")
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
    strict_shop = Recommender(recommender.store, recommender.style, ranker=strict)
    assert not bought & {r.item_id for r in strict_shop.feed("U0001", k=20)}


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


def test_the_shop_saves_serves_and_retrains_its_ranker_as_versions(demo_shop, tmp_path):
    from recsys.shop.catalog import CatalogPaths, open_catalog

    catalog_dir, embeddings, _ = demo_shop
    store = Store(tmp_path / "shop.db")
    store.import_items(read_catalog(catalog_dir), "demo")
    store.import_interactions(read_interactions(catalog_dir / "interactions.csv"), "interactions.csv")
    store.close()
    paths = CatalogPaths(tmp_path / "shop.db", embeddings, tmp_path / "index", tmp_path / "models")
    shop = open_catalog(paths)
    assert shop.info()["feed_model"] == "blend" and shop.info()["ranker_version"] is None
    one_window = FAST.model_copy(update={"windows": 1})
    trained = shop.retrain_ranker(one_window)
    assert trained["learned"] and trained["version"] == "v000001"
    assert shop.info()["feed_model"] == "learned" and shop.info()["ranker_version"] == "v000001"
    feed = [(r.item_id, r.score, r.reason) for r in shop.feed("U0002", 10)]

    other = open_catalog(paths)  # another process: loads the saved version, serves the same feed
    assert other.info()["ranker_version"] == "v000001" and other.recommender.learned.config == one_window
    assert [(r.item_id, r.score, r.reason) for r in other.feed("U0002", 10)] == feed
    assert shop.retrain_ranker()["version"] == "v000002"  # the served ranker's settings are kept
    other.sync()
    assert other.info()["ranker_version"] == "v000002"

    too_little = one_window.model_copy(update={"min_shoppers": 10**6})
    refused = shop.retrain_ranker(too_little)
    assert not refused["learned"] and refused["version"] == "v000002" and shop.info()["feed_model"] == "learned"
    shop.close()
    other.close()


def test_style_features_measure_what_they_say(shop):
    recommender, ranker, style = shop
    feed = recommender.pipeline
    shopper, pool = feed.pool("U0001", recommender.history("U0001"))
    x = features(feed.snapshot, shopper, pool, ranker.config)
    column = {name: x[:, n] for n, name in enumerate(ranker.feature_names)}
    recent, vectors, profile = shopper.styled
    for n, item in enumerate(pool.items):
        if item not in style:
            assert np.isnan(column["style_max"][n])
            continue
        cosines = vectors @ style.vector(item)
        assert column["style_max"][n] == pytest.approx(cosines.max(), abs=1e-5)
        assert column["style_last"][n] == pytest.approx(cosines[:5].max(), abs=1e-5)  # `recent`: latest first
        assert column["style_profile"][n] == pytest.approx(float(profile[0] @ style.vector(item)), abs=1e-5)
        if item in recent:
            assert column["style_max"][n] == pytest.approx(1.0, abs=1e-5)
    # style-neighbour popularity: the mean 30-day sales of an item's 10 nearest other items in style
    item = next(i for i in pool.items if i in style)
    others = [i for i in style.ids if i != item]
    nearest = sorted(others, key=lambda i: -float(style.vector(i) @ style.vector(item)))[:10]
    sold = feed.snapshot.popularity["30d"]
    expected = np.mean([sold.get(i, 0.0) for i in nearest])
    assert column["style_neighbour_popularity"][pool.items.index(item)] == pytest.approx(expected)
    # the style source brings in items the shopper never bought
    by_style = [i for i in pool.items if "style" in pool.found[i]]
    assert by_style and not set(by_style) & set(shopper.items)


def test_every_block_of_the_feed_shows_a_new_article_when_there_is_one(shop):
    recommender, ranker, _ = shop
    history = recommender.history("U0001")
    sold = recommender.pipeline.snapshot.popularity["all"]
    pool = recommender.pipeline.pool("U0001", history)[1]
    assert any(i not in sold for i in pool.items), "the style source brings never-sold articles into the pool"

    def feed(every: int) -> list[str]:
        tweaked = LearnedRanker(ranker.config.model_copy(update={"new_every": every}))
        tweaked.booster = ranker.booster
        return [r.item_id for r in Feed(recommender.pipeline.snapshot, tweaked).recommend("U0001", 12, history)]

    plain, every3 = feed(0), feed(3)
    new_in_pool = sum(i not in sold for i in pool.items)
    blocks_with_new = [any(i not in sold for i in every3[b : b + 3]) for b in range(0, 12, 3)]
    assert len(set(every3)) == 12 and sum(blocks_with_new) >= min(4, new_in_pool)
    assert sum(i not in sold for i in every3) > sum(i not in sold for i in plain)
    # the sold items keep the ranker's order
    assert [i for i in every3 if i in sold] == [i for i in plain if i in sold][: sum(i in sold for i in every3)]


def test_features_read_the_items_facts_once_and_give_the_plain_lookups(shop):
    """The per-item values come from a per-snapshot cache and CF's scores of the pool only: the same numbers as
    looking each one up (cold cache and warm), and CF's affinity equals its score over the whole catalog."""
    recommender, ranker, _ = shop
    feed = recommender.pipeline
    snapshot = feed.snapshot
    for user in ("U0001", "U0002", "U0003"):
        shopper, pool = feed.pool(user, recommender.history(user))
        snapshot.__dict__.pop("item_facts", None)  # cold
        cold = features(snapshot, shopper, pool, ranker.config)
        warm = features(snapshot, shopper, pool, ranker.config)
        np.testing.assert_array_equal(cold, warm)
        column = {name: cold[:, n] for n, name in enumerate(ranker.feature_names)}
        for n, item in enumerate(pool.items):
            for name, window in (("pop_7d", "7d"), ("pop_30d", "30d"), ("pop_all", "all")):
                assert column[name][n] == snapshot.popularity[window].get(item, 0.0)
            j = snapshot.cf_col.get(item)
            if j is None or shopper.cf_scores is None:
                assert np.isnan(column["cf_affinity"][n])
            else:
                assert column["cf_affinity"][n] == float(shopper.cf_scores[j])
            first = snapshot.first_sale.get(item)
            if first is None:
                assert np.isnan(column["item_age_days"][n])
            else:
                assert column["item_age_days"][n] == (shopper.now - first) / DAY
