"""Style neighbours: items that look like the shopper's recent purchases and their style profile.

This is how never-bought articles enter a feed: the FAISS style index knows every article with a photo."""

from __future__ import annotations

import numpy as np

from common.topk import top_k
from recsys.candidates.base import Candidate, CandidateSource, Shopper, Snapshot


class StyleNeighbours(CandidateSource):
    """Nearest neighbours in style space (other than their own purchases) of the `recent` latest purchases with
    a photo and of the style profile; an item's score is its best cosine, the reason names the purchase it looks
    most like."""

    name = "style"

    def __init__(self, recent: int = 5) -> None:
        self.recent = recent

    def generate(self, snapshot: Snapshot, shopper: Shopper, n: int) -> list[Candidate]:
        style = snapshot.style
        recent, vectors, profile = shopper.styled
        if style is None or vectors is None:
            return []
        queries = np.vstack([profile, vectors[: self.recent]]).astype(np.float32)
        # what they bought is the buy-again source's to propose: left out by the index itself, so the search's
        # cost does not grow with their history
        ids, _ = style.index.search(queries, n, exclude=shopper.recent)
        found = {i for row in ids for i in row if i in snapshot.allowed}
        if not found:
            return []
        found_list = sorted(found)
        similarity = style.vectors_of(found_list) @ vectors.T  # candidates x recent purchases
        nearest = similarity.argmax(axis=1)
        scores = similarity.max(axis=1)
        order = top_k(scores, n)
        return [
            Candidate(found_list[j], float(scores[j]), f"same style as {snapshot.items.name(recent[nearest[j]])}")
            for j in order
        ]
