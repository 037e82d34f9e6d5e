"""A shopper's preferred palette styles: what their history says, moved at once by what they say about renders.

History gives each palette style a cosine score against the shopper's style profile (in [-1, 1], on the
pattern facet). What the shopper says about a style counts by its latest word only (`style_like`,
`style_dislike`, or `style_clear` to take either back): a like lifts the style by `LIKE_SHIFT` (1.0, more than
the usual spread of history scores between palette styles, 0.2 to 0.45 on the demo, because saying "I like this"
is stronger evidence than what the history implies); a dislike puts it below every style the shopper has not
disliked (its score drops by `DISLIKE_SHIFT`, more than the whole range of history plus a like), so "not for me"
after a like means not for me. Nothing is retrained: the blend is made from the stored events on every call.
"""

from __future__ import annotations

LIKE_SHIFT = 1.0
DISLIKE_SHIFT = -4.0  # history in [-1, 1], a liked style at most 2: a disliked one at most -3, below all others
STATE = {"style_like": "liked", "style_dislike": "disliked", "style_clear": None}
SHIFT = {"liked": LIKE_SHIFT, "disliked": DISLIKE_SHIFT, None: 0.0}


def latest_feedback(events: list[dict]) -> dict[str, str | None]:
    """The shopper's latest word per style ("liked", "disliked" or None once cleared), from `Store.style_events`
    (oldest first)."""
    state: dict[str, str | None] = {}
    for event in events:
        state[event["style"]] = STATE[event["event"]]
    return state


def blend_scores(history: dict[str, float], feedback: dict[str, str | None], palette: set[str]) -> list[dict]:
    """Every palette style with a history score or feedback, best first: {name, score, history, feedback, state}."""
    names = (set(history) | set(feedback)) & palette
    rows = []
    for name in names:
        state = feedback.get(name)
        shift = SHIFT[state]
        base = history.get(name)
        rows.append({"name": name, "score": (base or 0.0) + shift, "history": base, "feedback": shift, "state": state})
    return sorted(rows, key=lambda row: (-row["score"], row["name"]))
