"""Shared by the notebooks: the demo shop (catalog + shoppers) with small, fast style vectors, opened through
`recsys.shop.catalog.open_catalog` like the CLI and the service open a shop."""

from __future__ import annotations

from pathlib import Path

from recsys.shop.catalog import Catalog, CatalogPaths, open_catalog
from recsys.shop.demo import make_demo_catalog
from recsys.shop.shoppers import INTERACTIONS_FILE, make_demo_shoppers
from recsys.store.data_io import read_catalog, read_interactions
from recsys.store.sqlite import Store
from transfer.embed import embed_folder
from transfer.encoder import EncoderConfig


def demo_shop(work: Path) -> tuple[Path, Catalog]:
    """The demo catalog and its shoppers in `work/demo`, embedded at 96 px / 64-d into `work/store`
    (`stylerec embed` uses 256 px and 256 dimensions), imported into `work/shop.db` and opened (the index and
    the CF model are built and saved under `work` on first open)."""
    catalog_dir = work / "demo"
    make_demo_catalog(catalog_dir)
    make_demo_shoppers(catalog_dir)
    config = EncoderConfig(image_size=96, dim=64)
    _, report = embed_folder(catalog_dir / "images", work / "store", config, progress=False)
    print(report.summary())
    store = Store(work / "shop.db")
    store.import_items(read_catalog(catalog_dir), str(catalog_dir))
    store.import_interactions(read_interactions(catalog_dir / INTERACTIONS_FILE), str(catalog_dir / INTERACTIONS_FILE))
    store.close()
    return catalog_dir, open_catalog(CatalogPaths(work / "shop.db", work / "store", work / "index", work / "models"))
