"""A shopper's preferred palette styles: what their history says, moved at once by what they say about renders.

History gives each palette style a cosine score against the shopper's style profile (in [-1, 1]). Feedback on
renders (`style_like` +1, `style_dislike` -1) sums per style into a net count; the style's score moves by
`FEEDBACK_WEIGHT * tanh(net)`: one like lifts a style by 0.76, more than the usual spread of history scores
between palette styles (0.2 to 0.45 on the demo), because saying "I like this" is stronger evidence than what the
history implies; repeated feedback saturates (at 1.0) instead of growing without bound. Nothing is
retrained: the blend is made from the stored events on every call.
"""

from __future__ import annotations

import math

FEEDBACK_WEIGHT = 1.0
SIGN = {"style_like": 1.0, "style_dislike": -1.0}


def net_feedback(events: list[dict]) -> dict[str, float]:
    """Net likes minus dislikes per style, from `Store.style_events`."""
    net: dict[str, float] = {}
    for event in events:
        net[event["style"]] = net.get(event["style"], 0.0) + SIGN[event["event"]]
    return net


def blend_scores(history: dict[str, float], feedback: dict[str, float], palette: set[str]) -> list[dict]:
    """Every palette style with a history score or feedback, best first: {name, score, history, feedback}."""
    names = (set(history) | set(feedback)) & palette
    rows = []
    for name in names:
        shift = FEEDBACK_WEIGHT * math.tanh(feedback.get(name, 0.0))
        base = history.get(name)
        rows.append({"name": name, "score": (base or 0.0) + shift, "history": base, "feedback": shift})
    return sorted(rows, key=lambda row: (-row["score"], row["name"]))
