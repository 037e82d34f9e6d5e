"""The feed's one decision between the learned pipeline and the hand-set blend.

`FeedModel` is what the service's `Recommender.feed` and `stylerec evaluate`'s `hybrid` model (`recsys.models.base`)
both call: the learned pipeline of `recsys.models.ranker` (`Feed` over a trained `LearnedRanker`) when there is one,
the hand-set blend of `recsys.models.hybrid` (`HybridRanker`) otherwise (no ranker trained, too little data to
learn from) or when a caller asks for a blend weight (`alpha`); and the blend fills a list the learned pipeline
leaves short (a narrow category, a small catalog). No other code chooses between the two.
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from recsys.candidates import Snapshot
from recsys.models.hybrid import HybridRanker, Recommendation
from recsys.models.ranker import Feed, LearnedRanker

BLEND_RANKS = "the hand-set blend ranks"


class FeedModel:
    """The learned feed with the blend behind it (see module docstring).

    `catalog`: the items the learned pipeline may show when a caller gives no `allow` (the service passes its live
    catalog mapping, from which deleted items are dropped; None: every item of the pipeline's snapshot). The blend
    keeps to its own catalog (`HybridRanker.categories`)."""

    def __init__(
        self,
        learned: Feed | None,
        blend: HybridRanker,
        catalog: Collection[str] | None = None,
        fallback: str | None = None,
    ) -> None:
        self.learned, self.blend, self.catalog = learned, blend, catalog
        self._fallback = fallback

    @classmethod
    def build(
        cls,
        snapshot: Snapshot,
        ranker: LearnedRanker | None,
        blend: HybridRanker,
        catalog: Collection[str] | None = None,
    ) -> FeedModel:
        """The feed over `snapshot`: learned when `ranker` is trained, else the blend (and `fallback` says why)."""
        if ranker is None:
            return cls(None, blend, catalog, f"no learned ranker: {BLEND_RANKS}")
        if not ranker.trained:
            return cls(None, blend, catalog, f"too little data to learn from ({ranker.training}): {BLEND_RANKS}")
        return cls(Feed(snapshot, ranker), blend, catalog)

    @property
    def kind(self) -> str:
        """ "learned" (candidate sources + LightGBM ranker) or "blend" (the hand-set fallback)."""
        return "learned" if self.learned is not None else "blend"

    @property
    def fallback(self) -> str | None:
        """Why the blend ranks (None when the learned pipeline does)."""
        if self.learned is not None:
            return None
        return self._fallback or f"no learned ranker: {BLEND_RANKS}"

    def rank(
        self,
        user_id: str | None,
        k: int = 10,
        history: pd.DataFrame | None = None,
        allow: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        alpha: float | None = None,
    ) -> list[Recommendation]:
        """The top-k for a shopper (their events in `history`; the blend knows only what it is given), each with its
        reason: only items in `allow` when given, never one in `exclude`. `alpha` (CF against style) asks for the
        blend. A learned list shorter than k is filled from the blend, without repeating an item."""
        exclude = set(exclude or ())
        if self.learned is None or alpha is not None:
            return self.blend.rank(user_id, k, history=history, allow=allow, exclude=exclude, alpha=alpha)
        feed = self.learned.recommend(
            user_id, k, history=history, exclude=exclude, allow=allow if allow is not None else self.catalog
        )
        if len(feed) < k:  # a narrow category: the blend fills the rest
            shown = exclude | {r.item_id for r in feed}
            more = self.blend.rank(user_id, k, history=history, allow=allow, exclude=shown)
            feed += more[: k - len(feed)]
        return feed
