"""Siblings: other variants (H&M: other colours) of the garments the shopper bought."""

from __future__ import annotations

import math

from recsys.candidates.base import Candidate, CandidateSource, Shopper, Snapshot


class Siblings(CandidateSource):
    """Items of the same variant group as the shopper's purchases, weighted by how recently that group was bought
    (ties broken by the sibling's popularity); the reason names the bought variant."""

    name = "siblings"

    def __init__(self, half_life_days: float = 30.0) -> None:
        self.half_life_days = half_life_days

    def generate(self, snapshot: Snapshot, shopper: Shopper, n: int) -> list[Candidate]:
        popularity = snapshot.popularity["all"]
        scores: dict[str, float] = {}
        origin: dict[str, str] = {}
        for bought, weight in shopper.recency_weights(self.half_life_days).items():
            group = snapshot.items.group_of(bought)
            for sibling in snapshot.group_members.get(group, ()) if group is not None else ():
                if sibling == bought:
                    continue
                score = weight + 0.01 * math.log1p(popularity.get(sibling, 0.0))
                if score > scores.get(sibling, -1.0):
                    scores[sibling], origin[sibling] = score, bought
        ranked = sorted(scores, key=lambda i: (-scores[i], i))[:n]
        return [Candidate(i, scores[i], f"another colour of {snapshot.items.name(origin[i])}") for i in ranked]
