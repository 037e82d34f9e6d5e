"""Collaborative filtering: implicit ALS top-N for the shopper, already-bought items included."""

from __future__ import annotations

import numpy as np

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
        top = min(n * 2 + 50, len(scores))
        head = np.argpartition(-scores, top - 1)[:top] if top < len(scores) else np.arange(len(scores))
        order = head[np.argsort(-scores[head], kind="stable")]
        out = [Candidate(ids[j], float(scores[j]), "shoppers like you bought this") for j in order]
        return [c for c in out if c.item_id in snapshot.allowed][:n]
