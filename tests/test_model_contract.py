"""Every ranking model passes the contract (`tests/model_contract.py`); the feed's learned -> blend decision is one
object (`recsys.models.feeds.FeedModel`) that the service and `stylerec evaluate` both call."""

from __future__ import annotations

import pytest

from recsys.candidates import ItemInfo, Snapshot
from recsys.evaluation.splits import temporal_split
from recsys.models.base import (
    BlendModel,
    CFModel,
    HybridModel,
    LastWeekModel,
    PopularityModel,
    RepurchaseModel,
    StyleModel,
    make_models,
)
from recsys.models.feeds import FeedModel
from recsys.models.hybrid import HybridConfig
from recsys.models.ranker import RankerConfig
from recsys.shop.recommender import Recommender
from recsys.shop.shoppers import DAY, START
from recsys.store.data_io import read_catalog, read_interactions
from recsys.store.sqlite import Store
from tests.model_contract import ContractData, ModelContract

FAST = RankerConfig(windows=3, max_users_per_window=300, rounds=30, min_data_in_leaf=20)


@pytest.fixture(scope="module")
def contract_data(demo_shop) -> ContractData:
    catalog_dir, _, style = demo_shop
    interactions = read_interactions(catalog_dir / "interactions.csv")
    train, _ = temporal_split(interactions, START + 100 * DAY)
    snapshot = Snapshot.build(train, ItemInfo(read_catalog(catalog_dir)), style)
    users = sorted(train["user_id"].unique())
    return ContractData(snapshot, train, users[:: max(1, len(users) // 8)][:8])


class TestPopularity(ModelContract):
    def make_model(self):
        return PopularityModel()


class TestLastWeek(ModelContract):
    def make_model(self):
        return LastWeekModel()


class TestRepurchase(ModelContract):
    def make_model(self):
        return RepurchaseModel()


class TestCF(ModelContract):
    def make_model(self):
        return CFModel()


class TestStyle(ModelContract):
    def make_model(self):
        return StyleModel()


class TestBlend(ModelContract):
    def make_model(self):
        return BlendModel(HybridConfig(alpha=0.3, popularity_weight=0.5))


class TestLearnedFeed(ModelContract):
    def make_model(self):
        return HybridModel(FAST)

    def test_it_learned(self, fitted):
        assert fitted.feed.kind == "learned" and fitted.fallback is None


class TestFeedFallingBackToTheBlend(ModelContract):
    def make_model(self):  # no window has this many shoppers: the ranker cannot learn
        return HybridModel(FAST.model_copy(update={"min_shoppers": 10**6}))

    def test_the_blend_ranks_and_says_why(self, fitted):
        assert fitted.feed.kind == "blend" and fitted.fallback.startswith("too little data to learn from")


def test_make_models_knows_every_model_and_refuses_unknown_names():
    names = ["repurchase", "popularity-1w", "popularity", "cf", "style", "blend", "hybrid", "hybrid-nostyle"]
    assert set(make_models(names, FAST, "temporal")) == set(names)
    with pytest.raises(ValueError, match="unknown model"):
        make_models(["hybrid", "nope"], FAST, "temporal")


def test_the_learned_feed_is_filled_from_the_blend_when_a_filter_leaves_it_short(contract_data):
    model = HybridModel(FAST).fit(contract_data.snapshot, contract_data.train)
    feed = model.feed
    user = contract_data.users[0]
    history = contract_data.snapshot.history(user)
    learned = {r.item_id for r in feed.learned.recommend(user, 200, history=history)}
    # items the learned pipeline's sources never propose for this shopper: only the blend can show them
    outside = sorted(contract_data.snapshot.allowed - learned)[:12]
    assert len(outside) == 12
    ranked = feed.rank(user, 8, history=history, allow=set(outside))
    assert len(ranked) == 8 and {r.item_id for r in ranked} <= set(outside)


def test_the_service_and_evaluate_call_the_same_feed_model(demo_shop, tmp_path, contract_data):
    catalog_dir, _, style = demo_shop
    store = Store(tmp_path / "shop.db")
    try:
        store.import_items(read_catalog(catalog_dir), "demo")
        store.import_interactions(contract_data.train, "train")
        recommender = Recommender(store, style)
        assert isinstance(recommender.feed_ranker, FeedModel) and recommender.feed_ranker.kind == "blend"
        assert recommender.feed_ranker is recommender.feed_ranker  # kept while the served rankers are the same
        user = contract_data.users[0]
        assert recommender.feed(user, 10) == recommender.feed_ranker.rank(user, 10, history=recommender.history(user))
        recommender.train_ranker(FAST)
        assert recommender.feed_ranker.kind == "learned" and recommender.feed_model == "learned"
        served = recommender.feed_ranker
        assert served.learned is recommender.pipeline and served.blend is recommender.ranker
        feed = recommender.feed(user, 10)
        assert feed == recommender.feed_ranker.rank(user, 10, history=recommender.history(user))
        bags = recommender.feed(user, 10, categories={"bag"})
        assert len(bags) == 10 and all(store.item(r.item_id)["category"] == "bag" for r in bags)
        assert isinstance(HybridModel(FAST).fit(contract_data.snapshot, contract_data.train).feed, FeedModel)
    finally:
        store.close()
