"""Style neighbours: items that look like the shopper's recent purchases and their style profile.

This is how never-bought articles enter a feed: the FAISS style index knows every article with a photo. A
purchase's nearest items come from the batch's lists when the style space has them (`StyleSpace.neighbours`: the
index's own answers, searched once per item by `stylerec train`); the style profile, which is the shopper's own,
is searched per request."""

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
        # what they bought is the buy-again source's to propose: left out of every query's n, so the search's
        # cost does not grow with their history
        bought = set(shopper.recent)
        rows, searched = [], [profile]
        for item in recent[: self.recent]:
            found = style.listed(item, n, lambda other: other not in bought)
            if found is None:
                searched.append(style.vector(item))
            else:
                rows.append([style.ids[j] for j in found])
        ids, _ = style.index.search(np.vstack(searched).astype(np.float32), n, exclude=shopper.recent)
        found = {i for row in (*ids, *rows) for i in row if i in snapshot.allowed}
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
