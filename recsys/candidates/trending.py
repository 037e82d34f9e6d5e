"""Trending: last week's top sellers, overall and within the shopper's favourite product types."""

from __future__ import annotations

from collections import Counter

from recsys.candidates.base import Candidate, CandidateSource, Shopper, Snapshot


class Trending(CandidateSource):
    """Half the slots for last week's best sellers in the shopper's `favourites` most bought product types
    ("trending in dresses"), the rest for last week's best sellers overall; score = last week's sales."""

    name = "trending"

    def __init__(self, favourites: int = 2) -> None:
        self.favourites = favourites

    def generate(self, snapshot: Snapshot, shopper: Shopper, n: int) -> list[Candidate]:
        week = snapshot.popularity["7d"]
        kinds = Counter(snapshot.items.kind[i] for i in shopper.items if i in snapshot.items.kind)
        out: dict[str, Candidate] = {}
        per_kind = n // 2 // max(1, min(self.favourites, len(kinds))) if kinds else 0
        for kind, _ in kinds.most_common(self.favourites):
            for item in snapshot.trending_by_kind.get(kind, [])[:per_kind]:
                out.setdefault(item, Candidate(item, float(week[item]), f"trending in {kind.lower()}"))
        for item in snapshot.trending:
            if len(out) >= n:
                break
            out.setdefault(item, Candidate(item, float(week[item]), "trending now"))
        return list(out.values())[:n]
