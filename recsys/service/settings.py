"""Service settings, from the environment (prefix STYLEREC_) or constructor arguments."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the data lives, the admin key and the limits. `STYLEREC_API_KEY=...` enables the admin routes."""

    model_config = SettingsConfigDict(env_prefix="STYLEREC_", extra="ignore")

    db: Path = Path("var/stylerec.db")
    embeddings: Path = Path("var/store")
    index: Path = Path("var/index")
    styles_dir: Path = Path("var/styles")
    renders_dir: Path = Path("var/renders")
    uploads_dir: Path = Path("var/uploads")
    api_key: str | None = Field(None, description="admin API key (header X-API-Key); admin routes are off without it")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_pixels: int = Field(40_000_000, gt=0)
    max_k: int = Field(100, gt=0)
    device: str | None = None
    render_size: int = Field(384, ge=64, le=1024)
    render_steps: int = Field(100, ge=1)
    render_workers: int = Field(1, ge=1)
