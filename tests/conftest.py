"""Shared fixtures: the dataset folder (tests that need it skip cleanly without it) and a small demo catalog."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    return Path(os.environ.get("STYLEREC_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    root = datasets_dir()
    if not root.is_dir():
        pytest.skip(f"real datasets not found at {root} (set STYLEREC_DATASETS)")
    return root


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory) -> Path:
    """The full generated demo catalog (288 items), made once per test session."""
    from recsys.demo import make_demo_catalog

    out = tmp_path_factory.mktemp("demo")
    make_demo_catalog(out)
    return out


@pytest.fixture(scope="session")
def demo_shop(demo_catalog, tmp_path_factory):
    """The demo catalog with its synthetic shoppers and small, fast style vectors (96 px, 64-d)."""
    from recsys.catalog import catalog_style_space
    from recsys.shoppers import make_demo_shoppers
    from transfer.embed import embed_folder
    from transfer.encoder import EncoderConfig

    make_demo_shoppers(demo_catalog)
    embeddings = tmp_path_factory.mktemp("demo-embeddings")
    embed_folder(demo_catalog / "images", embeddings, EncoderConfig(image_size=96, dim=64), progress=False)
    return demo_catalog, embeddings, catalog_style_space(demo_catalog, embeddings)
