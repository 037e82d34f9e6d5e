"""Collaborative filtering: implicit ALS top-N for the shopper, already-bought items included."""

from __future__ import annotations

from common.topk import top_k
from recsys.candidates.base import Candidate, CandidateSource, Shopper, Snapshot


class CollaborativeCandidates(CandidateSource):
    """The items with the highest CF score for the shopper (folded in from their history when CF has not seen
    them); nothing for a shopper with no history."""

    name = "cf"

    def __init__(self, pool: int | None = None) -> None:
        self.pool = pool  # None: every item CF knows; else only its `pool` best sellers (`Shopper.cf_top`)

    def generate(self, snapshot: Snapshot, shopper: Shopper, n: int) -> list[Candidate]:
        found = shopper.cf_top(self.pool) if snapshot.cf is not None else None
        if found is None:
            return []
        columns, scores = found
        ids, allowed = snapshot.cf.item_ids, snapshot.allowed
        out = []
        for j in top_k(scores, n * 2 + 50).tolist():
            item = ids[columns[j]]
            if item in allowed:
                out.append(Candidate(item, float(scores[j]), "shoppers like you bought this"))
                if len(out) == n:
                    break
        return out
