"""The renderer a palette style is rendered with when the shopper does not choose one, as measured by
`benchmarks/render_styles.py` (BENCHMARKS.md, issue 22): that benchmark writes `render_defaults.json` next to this
module. A style the measurement does not name (a style a merchant added later) gets the fast renderer."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DEFAULTS_FILE = Path(__file__).with_name("render_defaults.json")
FALLBACK = "fast"


@lru_cache(maxsize=4)
def measured_defaults(path: str | None = None) -> dict[str, dict]:
    """{style name: {"renderer", "carried_by", "why"}} from the measurement file ({} when there is none)."""
    file = Path(path) if path else DEFAULTS_FILE
    if not file.is_file():
        return {}
    return dict(json.loads(file.read_text())["styles"])


def default_renderer(style: str, path: str | None = None) -> str:
    """The measured default renderer of a palette style (`FALLBACK` for a style the measurement does not name)."""
    return measured_defaults(path).get(style, {}).get("renderer", FALLBACK)
