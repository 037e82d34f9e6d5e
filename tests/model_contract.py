"""The ranking-model contract (`recsys.models.base.RankingModel`) as a pytest mixin, like scikit-learn's
`check_estimator`.

A test class mixes in `ModelContract` and says how to make its unfitted model (`make_model`); the module provides
the `contract_data` fixture (a `ContractData`: a snapshot, the training events it was built from, some shoppers).
Every model of the project runs these checks (`tests/test_model_contract.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from recsys.candidates import Snapshot
from recsys.models.base import RankingModel

UNKNOWN = "a-shopper-nobody-has-seen"


@dataclass
class ContractData:
    snapshot: Snapshot
    train: pd.DataFrame
    users: list[str]  # shoppers of the training data, a sample


class ModelContract:
    """The checks every ranking model passes; subclasses define `make_model`."""

    K = 10

    def make_model(self) -> RankingModel:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, contract_data: ContractData) -> RankingModel:
        return cls().make_model().fit(contract_data.snapshot, contract_data.train)

    def test_at_most_k_distinct_items_of_the_catalog_with_reasons(self, fitted, contract_data):
        allowed = contract_data.snapshot.allowed
        for user in contract_data.users:
            for k in (1, 3, self.K):
                ranked = fitted.rank(user, k)
                ids = [r.item_id for r in ranked]
                assert len(ids) <= k and len(set(ids)) == len(ids), (user, k, ids)
                assert set(ids) <= allowed
                assert all(isinstance(r.reason, str) and r.reason for r in ranked)
                assert fitted.recommend(user, k) == ids
        # a shop's catalog has far more than K items: every shopper gets a full list
        assert all(len(fitted.recommend(u, self.K)) == self.K for u in contract_data.users)

    def test_k_zero_gives_nothing_and_a_negative_k_is_an_error(self, fitted, contract_data):
        assert fitted.recommend(contract_data.users[0], 0) == []
        with pytest.raises(ValueError, match="k"):
            fitted.recommend(contract_data.users[0], -1)

    def test_allow_and_exclude(self, fitted, contract_data):
        rng = np.random.default_rng(0)
        catalog = sorted(contract_data.snapshot.allowed)
        half = set(rng.choice(catalog, len(catalog) // 2, replace=False))
        for user in contract_data.users:
            plain = fitted.recommend(user, self.K)
            assert set(fitted.recommend(user, self.K, allow=half)) <= half
            narrow = set(plain[:2]) | set(catalog[:3])
            assert set(fitted.recommend(user, self.K, allow=narrow)) <= narrow
            excluded = set(plain[:3])
            without = fitted.recommend(user, self.K, exclude=excluded)
            assert not excluded & set(without)
            assert len(without) == len(plain)  # the excluded places are filled from further down
            both = fitted.recommend(user, self.K, allow=half, exclude=excluded)
            assert set(both) <= half - excluded

    def test_deterministic(self, fitted, contract_data):
        first = {u: fitted.recommend(u, self.K) for u in contract_data.users}
        again = {u: fitted.recommend(u, self.K) for u in contract_data.users}
        assert first == again
        refitted = self.make_model().fit(contract_data.snapshot, contract_data.train)
        assert {u: refitted.recommend(u, self.K) for u in contract_data.users} == first

    def test_an_unknown_shopper_gets_what_a_stranger_gets(self, fitted, contract_data):
        stranger = fitted.recommend(UNKNOWN, self.K)
        assert len(stranger) == len(set(stranger)) and 0 < len(stranger) <= self.K
        assert fitted.recommend("another-stranger", self.K) == stranger
        assert fitted.recommend(None, self.K) == stranger
        empty = pd.DataFrame({"item_id": [], "timestamp": [], "weight": []})
        assert fitted.recommend(UNKNOWN, self.K, history=empty) == stranger

    def test_save_then_load_gives_the_same_recommendations(self, fitted, contract_data, tmp_path):
        users = [*contract_data.users, UNKNOWN]
        fitted.save(tmp_path / "model")
        loaded = RankingModel.load(tmp_path / "model", contract_data.snapshot)
        assert type(loaded) is type(fitted) and loaded.name == fitted.name
        assert {u: loaded.rank(u, self.K) for u in users} == {u: fitted.rank(u, self.K) for u in users}
        assert type(loaded).load(tmp_path / "model", contract_data.snapshot).recommend(users[0], 3) == (
            fitted.recommend(users[0], 3)
        )

    def test_batched_equals_one_by_one(self, fitted, contract_data):
        users = [*contract_data.users, UNKNOWN]
        one_by_one = {u: fitted.recommend(u, self.K) for u in users}
        assert fitted.recommend_many(users, self.K) == one_by_one
        allow = set(sorted(contract_data.snapshot.allowed)[::2])
        assert fitted.recommend_many(users, 5, allow=allow) == {u: fitted.recommend(u, 5, allow=allow) for u in users}
        assert fitted.recommend_many([], self.K) == {}

    def test_fitting_on_no_events_is_a_clear_error(self, contract_data):
        with pytest.raises(ValueError, match="no training events"):
            self.make_model().fit(contract_data.snapshot, contract_data.train.iloc[:0])

    def test_ranking_before_fitting_is_a_clear_error(self, contract_data, tmp_path):
        with pytest.raises(RuntimeError, match="fit"):
            self.make_model().recommend(contract_data.users[0], self.K)
        with pytest.raises(FileNotFoundError):
            RankingModel.load(tmp_path / "nothing-here", contract_data.snapshot)
