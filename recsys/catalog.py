"""A catalog folder's items and their style vectors (embedded once, then read from the embedding store)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data_io import read_catalog
from recsys.hybrid import StyleSpace


def default_embeddings_dir(catalog_dir: str | os.PathLike) -> Path:
    """Where the style vectors of a catalog are kept unless told otherwise: var/embeddings/<folder name>."""
    return Path("var") / "embeddings" / Path(catalog_dir).resolve().name


def catalog_style_space(
    catalog_dir: str | os.PathLike,
    embeddings_dir: str | os.PathLike | None = None,
    catalog: pd.DataFrame | None = None,
    progress: bool = False,
    device: str | None = None,
) -> StyleSpace | None:
    """Style vectors of a catalog's items, keyed by catalog item id. Images not embedded yet are embedded
    (incrementally) into `embeddings_dir`; None when the catalog has no images."""
    from transfer.embed import embed_folder

    catalog = read_catalog(catalog_dir) if catalog is None else catalog
    images = catalog.dropna(subset=["image"])
    if len(images) == 0:
        return None
    image_root = Path(catalog_dir) / "images"
    if not image_root.is_dir():
        image_root = Path(os.path.commonpath(list(images["image"])))
    store, _ = embed_folder(
        image_root, embeddings_dir or default_embeddings_dir(catalog_dir), progress=progress, device=device
    )
    by_path = {str(Path(p).resolve()): item for item, p in zip(images["item_id"], images["image"], strict=False)}
    known = set(catalog["item_id"])
    ids, rows = [], []
    for row, (stem, path) in enumerate(zip(store.ids, store.paths, strict=False)):
        item = by_path.get(str(Path(path).resolve())) or (stem if stem in known else None)
        if item is not None:
            ids.append(item)
            rows.append(row)
    if not ids:
        return None
    return StyleSpace(ids, np.asarray(store.vectors[rows]), model_id=store.model_id)
