"""Collaborative filtering: implicit ALS top-N for the shopper, already-bought items included."""

from __future__ import annotations

from common.topk import top_k
from recsys.candidates.base import Candidate, CandidateSource, Shopper, Snapshot


class CollaborativeCandidates(CandidateSource):
    """The items with the highest CF score for the shopper (folded in from their history when CF has not seen
    them); nothing for a shopper with no history."""

    name = "cf"

    def generate(self, snapshot: Snapshot, shopper: Shopper, n: int) -> list[Candidate]:
        scores = shopper.cf_scores
        if scores is None or snapshot.cf is None:
            return []
        ids = snapshot.cf.item_ids
        order = top_k(scores, n * 2 + 50)
        out = [Candidate(ids[j], float(scores[j]), "shoppers like you bought this") for j in order]
        return [c for c in out if c.item_id in snapshot.allowed][:n]
