"""The one settings object of the shop: the CLI, the service and the jobs all read `Settings`.

Where a value comes from, first match wins: a command-line flag (`recsys.cli.common.settings_from`), a constructor
argument, the environment (`STYLEREC_<FIELD>`, e.g. `STYLEREC_DB`, `STYLEREC_MAX_PIXELS`), the default below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from recsys.shop.catalog import CatalogPaths

ENV_PREFIX = "STYLEREC_"


class Settings(BaseSettings):
    """Where the shop's data lives, the admin key and the service's limits. `STYLEREC_API_KEY=...` enables the admin
    routes.

    Worker processes (`stylerec serve`'s web workers, its render worker) get their settings from the environment:
    `serve` exports this object with `to_env()` (the one place settings become environment variables) and each
    worker reads it back with `Settings()`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # The shop's paths.
    db: Path | str = Field(Path("var/stylerec.db"), description="a path (SQLite) or postgresql://user@host:port/db")
    embeddings: Path = Field(Path("var/store"), description="the embedding store of the catalog's images")
    index: Path = Field(Path("var/index"), description="the persisted style index")
    models: Path = Field(Path("var/models"), description="saved models (CF, ranker) folder")
    styles_dir: Path = Field(Path("var/styles"), description="where palette images are kept")
    renders_dir: Path = Field(Path("var/renders"), description="the render cache")
    uploads_dir: Path = Path("var/uploads")
    demo_dir: Path = Field(Path("data/demo"), description="the generated demo catalog")
    device: str | None = None
    # How `stylerec serve` listens.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    web_workers: int = Field(2, ge=1, description="web worker processes")
    # The service's limits and knobs.
    api_key: str | None = Field(None, description="admin API key (header X-API-Key); admin routes are off without it")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="a photo upload's bytes at most (else 413)")
    max_json_bytes: int = Field(
        64 * 1024, gt=0, description="any other request body's bytes at most (else 413, before it is read)"
    )
    trusted_proxies: str = Field(
        "",
        description="addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed "
        "(comma-separated IPs or networks, '*' for any; uvicorn's forwarded_allow_ips). Default: none, so clients "
        "are told apart (render limits) by their socket address and a forged header changes nothing",
    )
    max_pixels: int = Field(40_000_000, gt=0)
    max_k: int = Field(100, gt=0)
    # Photo embeddings (shop this style, admin uploads) run on a small pool, never on the event loop.
    embed_workers: int = Field(1, ge=1, description="photos embedded at once")
    embed_processes: bool = Field(
        True, description="embed in separate processes (decoding and masking hold the GIL); False: threads"
    )
    embed_queue: int = Field(4, ge=0, description="photos waiting for a worker; beyond, 503 + Retry-After")
    # The render queue (jobs in SQLite, run by one low-priority worker process).
    render_size: int = Field(384, ge=64, le=1024)
    render_steps: int = Field(100, ge=1)
    render_queue: int = Field(8, ge=1, description="renders queued or running at most; beyond, 429")
    render_per_client: int = Field(2, ge=1, description="renders one client may have queued or running")
    render_admin_share: float = Field(
        0.25, ge=0, lt=1, description="share of the render queue kept for admins (anonymous clients fill the rest)"
    )
    render_cache_bytes: int = Field(
        512 * 1024 * 1024, gt=0, description="renders kept on disk at most (least recently used removed first)"
    )
    render_strengths: tuple[float, ...] = Field(
        (0.25, 0.5, 0.75, 1.0), description="the strengths anonymous clients may ask for (admins: any in 0..1)"
    )
    render_attempts: int = Field(2, ge=1, description="tries of a job interrupted by restarts before it fails")
    retry_after: int = Field(30, ge=1, description="seconds a refused client is told to wait (Retry-After)")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="info logs every request")
    feed_cache: int = Field(
        20_000, ge=0, description="feed answers kept per worker until the shopper's events or the models change"
    )
    event_sync: Literal["full", "normal"] = Field(
        "normal",
        description="normal (SQLite's advice for WAL): the log is synced once a second, so an acknowledged event "
        "survives the service being killed, but the last second of events may be lost in a power loss or OS crash; "
        "full: an acknowledged event is on disk before the answer (each event then waits for the disk's sync)",
    )
    sync_every: float = Field(1.0, gt=0, description="seconds between checks for other processes' model changes")

    def catalog_paths(self) -> CatalogPaths:
        """Where `open_catalog` finds the shop."""
        from recsys.shop.catalog import CatalogPaths

        return CatalogPaths(self.db, self.embeddings, self.index, self.models, self.device)

    def to_env(self) -> dict[str, str]:
        """These settings as `STYLEREC_*` environment variables, for a child process whose `Settings()` reads them
        back as they are here (unset fields, None, are left out)."""
        env = {}
        for field, value in self.model_dump(mode="json").items():
            if value is not None:
                text = json.dumps(value) if isinstance(value, list | dict) else str(value)
                env[ENV_PREFIX + field.upper()] = text.lower() if isinstance(value, bool) else text
        return env

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets `field`."""
        return ENV_PREFIX + field.upper()
