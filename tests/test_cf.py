"""Collaborative filtering: quality on a MovieLens subset, fold-in without retraining, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.metrics import ranking_metrics
from recsys.evaluation.splits import random_split
from recsys.models.cf import CFConfig, CollaborativeFilter
from recsys.store.data_io import read_interactions


@pytest.fixture(scope="module")
def movielens(datasets):
    return read_interactions(datasets / "ml-100k" / "ml-100k.inter")


@pytest.mark.parametrize("model", ["als", "bpr"])
def test_cf_beats_popularity_on_movielens(movielens, model):
    train, test = random_split(movielens, 0.25, seed=42)
    relevant = {u: set(items) for u, items in test.groupby("user_id")["item_id"]}
    config = CFConfig(model=model)
    cf = CollaborativeFilter(config).fit(train)
    recs = {u: [i for i, _ in cf.recommend(u, 10)] for u in relevant}
    seen = train.groupby("user_id")["item_id"].apply(set)
    assert all(not (set(items) & seen[u]) for u, items in recs.items())  # already-seen items are filtered
    popular = train["item_id"].value_counts().index
    pop_recs = {u: [i for i in popular if i not in seen[u]][:10] for u in relevant}
    cf_ndcg = ranking_metrics(recs, relevant, 10)["ndcg@10"]
    pop_ndcg = ranking_metrics(pop_recs, relevant, 10)["ndcg@10"]
    assert cf_ndcg > pop_ndcg * (1.5 if model == "als" else 1.1), (cf_ndcg, pop_ndcg)
    if model == "als":
        assert cf_ndcg >= 0.442  # Microsoft Recommenders' BPR row on this protocol


def test_fold_in_new_events_without_retraining(movielens, tmp_path):
    sample = movielens[movielens["user_id"].astype(int) <= 300]
    cf = CollaborativeFilter(CFConfig(factors=16, iterations=5)).fit(sample)
    before = cf.recommend("1", 5)
    new_items = {item: 5.0 for item, _ in cf.recommend("2", 20)[:15]}
    cf.fold_in("1", new_items)
    assert set(new_items) <= set(cf.seen_items("1"))
    assert cf.recommend("1", 5) != before
    assert not set(i for i, _ in cf.recommend("1", 50)) & set(new_items)

    # a shopper CF has never seen gets factors from their first events, and a sensible list
    cf.fold_in("newbie", new_items)
    assert cf.has_user("newbie") and len(cf.recommend("newbie", 10)) == 10
    assert cf.recommend("nobody", 10) == []

    cf.save(tmp_path / "cf")
    loaded = CollaborativeFilter.load(tmp_path / "cf")
    assert loaded.recommend("newbie", 10) == cf.recommend("newbie", 10)
    np.testing.assert_allclose(loaded.user_vector(None, {"50": 5.0}), cf.user_vector(None, {"50": 5.0}), rtol=1e-4)


def test_cf_rejects_empty_data():
    with pytest.raises(ValueError, match="no interactions"):
        CollaborativeFilter().fit(pd.DataFrame(columns=["user_id", "item_id", "weight"]))


def _small_shop(seed: int = 3) -> pd.DataFrame:
    """200 shoppers (ids of different lengths, one not ASCII) x 60 items, power-law popularity."""
    rng = np.random.default_rng(seed)
    users = [f"u{u}" for u in range(199)] + ["ünïcode-shopper"]
    n = 3000
    return pd.DataFrame(
        {
            "user_id": [users[u] for u in rng.integers(0, len(users), n)],
            "item_id": [f"i{i:02d}" for i in rng.zipf(1.4, n) % 60],
            "weight": rng.choice([1.0, 2.0], n),
        }
    )


def test_saved_cf_is_memory_mapped_and_answers_as_trained(tmp_path):
    """`save` writes .npy arrays; `load` maps them (no copy) and answers every shopper as the trained model does;
    users are found by binary search, unknown and over-long ids are not; fold-in works on the mapped model and a
    new user folded in lands in id order when it is saved again."""
    from recsys.models.cf_arrays import SortedIds, is_mapped

    cf = CollaborativeFilter(CFConfig(factors=8, iterations=5)).fit(_small_shop())
    cf.save(tmp_path / "a")
    loaded = CollaborativeFilter.load(tmp_path / "a")
    assert is_mapped(loaded.user_factors) and is_mapped(loaded._users.keys) and is_mapped(loaded.counts.indices)
    assert not is_mapped(cf.user_factors)
    assert loaded.user_ids == cf.user_ids == sorted(cf.user_ids)
    for user in cf.user_ids:
        assert loaded.has_user(user) and loaded.recommend(user, 5) == cf.recommend(user, 5)
        assert loaded.seen_items(user) == cf.seen_items(user)
    for absent in ("u1000", "u", "", "u1" + "x" * 200, "u1\x00", "u\ud800"):
        assert not loaded.has_user(absent) and loaded.recommend(absent, 5) == []
    assert loaded.user_count == cf.user_count == 200

    loaded.set_history("u5", {"i01": 3.0, "i02": 1.0})  # a private overlay over the mapped rows
    loaded.set_history("a-new-shopper", {"i03": 1.0})
    assert sorted(loaded.seen_items("u5")) == ["i01", "i02"] and loaded.user_count == 201
    loaded.save(tmp_path / "b")
    again = CollaborativeFilter.load(tmp_path / "b")
    assert again.user_ids == sorted([*cf.user_ids, "a-new-shopper"])
    for user in ("u5", "a-new-shopper", "u7", "ünïcode-shopper"):
        assert again.recommend(user, 5) == loaded.recommend(user, 5)

    with pytest.raises(ValueError, match="not unique"):
        SortedIds.build(["a", "b", "a"])


def test_cf_folders_of_the_older_format_still_load(tmp_path):
    """A folder written before the arrays (model.npz, user ids in cf.json, user_items.npz), with its rows not in
    id order (users folded in were appended), opens and answers as the model it was saved from."""
    import json

    import scipy.sparse as sp

    cf = CollaborativeFilter(CFConfig(factors=8, iterations=5)).fit(_small_shop())
    order = np.arange(len(cf.user_ids))[::-1]  # the old format kept any order
    folder = tmp_path / "old"
    folder.mkdir()
    np.savez(
        folder / "model.npz",
        user_factors=cf.user_factors[order],
        item_factors=cf.item_factors,
        idf=cf._idf,
        mean_length=np.float64(cf._mean_length),
    )
    sp.save_npz(folder / "user_items.npz", cf.counts[order])
    meta = {"config": cf.config.model_dump(), "user_ids": [cf.user_ids[i] for i in order], "item_ids": cf.item_ids}
    (folder / "cf.json").write_text(json.dumps(meta))
    old = CollaborativeFilter.load(folder)
    for user in cf.user_ids:
        assert old.recommend(user, 5) == cf.recommend(user, 5)
    np.testing.assert_allclose(old.user_vector(None, {"i01": 2.0}), cf.user_vector(None, {"i01": 2.0}), rtol=1e-5)
