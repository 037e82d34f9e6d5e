"""Bought together: what other shoppers bought within a few days of the shopper's recent purchases."""

from __future__ import annotations

from recsys.candidates.base import Candidate, CandidateSource, Shopper, Snapshot


class BoughtTogether(CandidateSource):
    """Co-purchases (within the snapshot's window, default 7 days) of the shopper's `recent` latest items,
    weighted by how recently each was bought; the reason names the item that brought the most."""

    name = "bought_together"

    def __init__(self, recent: int = 20, half_life_days: float = 30.0) -> None:
        self.recent, self.half_life_days = recent, half_life_days

    def generate(self, snapshot: Snapshot, shopper: Shopper, n: int) -> list[Candidate]:
        scores: dict[str, float] = {}
        best: dict[str, float] = {}  # other item -> the largest single contribution to its score
        origin: dict[str, str] = {}  # other item -> the purchase that made it (the first with that contribution)
        allowed, co_bought = snapshot.allowed, snapshot.co_bought
        weights = shopper.recency_weights(self.half_life_days)
        for bought in list(weights)[: self.recent]:
            weight = weights[bought]
            for other, count in co_bought.get(bought, ()):
                if other not in allowed:
                    continue
                contribution = weight * count
                scores[other] = scores.get(other, 0.0) + contribution
                if contribution > best.get(other, -1.0):
                    best[other], origin[other] = contribution, bought
        ranked = sorted(scores, key=lambda i: (-scores[i], i))[:n]
        return [Candidate(i, scores[i], f"often bought with {snapshot.items.name(origin[i])}") for i in ranked]
