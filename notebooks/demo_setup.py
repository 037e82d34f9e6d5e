"""Shared by the notebooks: the demo shop (catalog + shoppers) with small, fast style vectors."""

from __future__ import annotations

from pathlib import Path

from recsys.demo import make_demo_catalog
from recsys.shoppers import make_demo_shoppers
from transfer.embed import embed_folder
from transfer.encoder import EncoderConfig
from transfer.store import EmbeddingStore


def demo_shop(work: Path) -> tuple[Path, EmbeddingStore]:
    """The demo catalog and its shoppers in `work/demo`, embedded at 96 px / 64-d into `work/store`
    (`stylerec embed` uses 256 px and 256 dimensions)."""
    catalog_dir = work / "demo"
    make_demo_catalog(catalog_dir)
    make_demo_shoppers(catalog_dir)
    config = EncoderConfig(image_size=96, dim=64)
    store, report = embed_folder(catalog_dir / "images", work / "store", config, progress=False)
    print(report.summary())
    return catalog_dir, store
