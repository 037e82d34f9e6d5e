"""Shared fixtures: the dataset folder (tests that need it skip cleanly without it) and a small demo catalog."""

from __future__ import annotations

import os
import uuid
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
    from recsys.shop.demo import make_demo_catalog

    out = tmp_path_factory.mktemp("demo")
    make_demo_catalog(out)
    return out


@pytest.fixture(scope="session")
def demo_shop(demo_catalog, tmp_path_factory):
    """The demo catalog with its synthetic shoppers and small, fast style vectors (96 px, 64-d)."""
    from recsys.shop.catalog import catalog_style_space
    from recsys.shop.shoppers import make_demo_shoppers
    from transfer.embed import embed_folder
    from transfer.encoder import EncoderConfig

    make_demo_shoppers(demo_catalog)
    embeddings = tmp_path_factory.mktemp("demo-embeddings")
    embed_folder(demo_catalog / "images", embeddings, EncoderConfig(image_size=96, dim=64), progress=False)
    return demo_catalog, embeddings, catalog_style_space(demo_catalog, embeddings)


@pytest.fixture(scope="session")
def service_settings(demo_shop, tmp_path_factory):
    """Service settings over the demo shop in a temporary SQLite store (admin key `secret`, tiny renders)."""
    from recsys.service.settings import Settings
    from recsys.store.data_io import read_catalog, read_interactions
    from recsys.store.sqlite import Store

    catalog_dir, embeddings, style = demo_shop
    root = tmp_path_factory.mktemp("service")
    store = Store(root / "shop.db")
    store.import_items(read_catalog(catalog_dir), "demo")
    store.import_interactions(read_interactions(catalog_dir / "interactions.csv"), "interactions.csv")
    for name, item in (("stripes", "D0010"), ("dots", "D0026")):  # red/cream stripes, red/cream dots
        store.put_style(name, str(catalog_dir / "images" / f"{item}.jpg"), style.vector(item), style.model_id)
    store.close()
    return Settings(
        db=root / "shop.db",
        embeddings=embeddings,
        index=root / "index",
        models=root / "models",
        styles_dir=root / "styles",
        renders_dir=root / "renders",
        uploads_dir=root / "uploads",
        api_key="secret",
        render_size=64,
        render_steps=4,
        max_upload_bytes=2_000_000,
        max_pixels=4_000_000,
    )


# -- PostgreSQL: one private cluster per test session (Debian's `postgresql` package), a fresh database per test ---
@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster (`recsys.store.pg_local`), or a skip naming why none can be started here."""
    from recsys.store.pg_local import LocalPostgres, NoPostgres

    cluster = LocalPostgres(fsync=False)  # throwaway data: no disk syncs in tests
    try:
        cluster.start()
    except NoPostgres as exc:
        cluster.stop()
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A new, empty store of each engine: an SQLite file path, or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "shop.db")
    cluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
