"""Buy again: the shopper's own purchases, recent and repeated ones first."""

from __future__ import annotations

from recsys.candidates.base import Candidate, CandidateSource, Shopper, Snapshot


class BuyAgain(CandidateSource):
    """Items the shopper bought, scored by their summed purchases halving every `half_life_days`."""

    name = "buy_again"

    def __init__(self, half_life_days: float = 30.0) -> None:
        self.half_life_days = half_life_days

    def generate(self, snapshot: Snapshot, shopper: Shopper, n: int) -> list[Candidate]:
        weights = shopper.recency_weights(self.half_life_days)
        ranked = sorted((i for i in weights if i in snapshot.allowed), key=lambda i: -weights[i])
        return [Candidate(i, weights[i], "buy again") for i in ranked[:n]]
