"""The service's settings: the shop's one settings object, `recsys.settings.Settings` (kept importable here)."""

from recsys.settings import Settings

__all__ = ["Settings"]
