"""Candidate sources of the feed: each finds items a shopper may buy next, scored, with a reason.

`SOURCES` builds them by name; `generate` runs several and merges their candidates per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from recsys.candidates.base import Candidate, CandidateSource, ItemInfo, Shopper, Snapshot
from recsys.candidates.bought_together import BoughtTogether
from recsys.candidates.buy_again import BuyAgain
from recsys.candidates.collaborative import CollaborativeCandidates
from recsys.candidates.siblings import Siblings
from recsys.candidates.style import StyleNeighbours
from recsys.candidates.trending import Trending

# in the order of their reasons' priority: an item several sources found is explained by the most specific one
SOURCES: dict[str, type[CandidateSource]] = {
    "buy_again": BuyAgain,
    "siblings": Siblings,
    "bought_together": BoughtTogether,
    "style": StyleNeighbours,
    "cf": CollaborativeCandidates,
    "trending": Trending,
}


@dataclass
class Pool:
    """Every source's candidates for one shopper, merged per item (in first-seen order)."""

    items: list[str] = field(default_factory=list)
    # item -> source -> (score, rank, reason)
    found: dict[str, dict[str, tuple[float, int, str]]] = field(default_factory=dict)

    def add(self, source: str, candidates: Sequence[Candidate]) -> None:
        for rank, c in enumerate(candidates, 1):
            if c.item_id not in self.found:
                self.found[c.item_id] = {}
                self.items.append(c.item_id)
            self.found[c.item_id][source] = (c.score, rank, c.reason)

    def reason(self, item: str) -> str:
        """The reason of the first source (in the order they were added: the most specific first) that found it."""
        return next(iter(self.found[item].values()))[2]


def generate(
    snapshot: Snapshot, shopper: Shopper, sources: Sequence[CandidateSource], n: int, exclude: set[str] | None = None
) -> Pool:
    """Up to `n` candidates from each source, merged; `exclude`d items left out."""
    pool = Pool()
    for source in sources:
        found = source.generate(snapshot, shopper, n + (len(exclude) if exclude else 0))
        pool.add(source.name, [c for c in found if not exclude or c.item_id not in exclude][:n])
    return pool


def repurchase_order(snapshot: Snapshot, shopper: Shopper, n: int) -> list[str]:
    """The classic fashion rule: the shopper's purchases (most recent first), other colours of them, then last
    week's top sellers; at most `n` items."""
    out = [i for i in shopper.recent if i in snapshot.allowed]
    out += [c.item_id for c in Siblings().generate(snapshot, shopper, n)]
    out += snapshot.trending[: 2 * n]
    return list(dict.fromkeys(out))[:n]


__all__ = [
    "SOURCES",
    "Candidate",
    "CandidateSource",
    "ItemInfo",
    "Pool",
    "Shopper",
    "Snapshot",
    "generate",
    "repurchase_order",
]
