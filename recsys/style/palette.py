"""The style palette: named style references kept in the store, each with a style vector comparable to the
catalog's (same embedding model), so shoppers' profiles can be matched to them."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np

from common.errors import BadInput, NotFound
from recsys.store.data_io import DataError
from recsys.store.sqlite import Store
from transfer.render_cache import load_style

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def style_vector(image: str | os.PathLike, embeddings_dir: str | os.PathLike) -> tuple[np.ndarray, str]:
    """The style vector of an image under the embedding store's own encoder, and that encoder's model id."""
    from recsys.shop.catalog import load_encoder

    encoder = load_encoder(embeddings_dir)
    return encoder.embed_image(image), encoder.model_id


def add_style(
    store: Store,
    name: str,
    image: str | os.PathLike,
    styles_dir: str | os.PathLike,
    embeddings_dir: str | os.PathLike | None = None,
) -> dict:
    """Copy a style image into the palette folder and register it (with its style vector when the catalog's
    embedding store is given). Replaces a style of the same name."""
    if not NAME.match(name):
        raise BadInput(f"style name {name!r}: use letters, digits, '-', '_' or '.' (up to 64)")
    load_style(image)  # RenderError for an image that cannot be a style
    target = Path(styles_dir) / f"{name}{Path(image).suffix.lower() or '.jpg'}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(image).resolve() != target.resolve():
        shutil.copyfile(image, target)
    vector, model_id = (None, None)
    if embeddings_dir is not None and Path(embeddings_dir).exists():
        vector, model_id = style_vector(target, embeddings_dir)
    store.put_style(name, str(target.resolve()), vector, model_id)
    return {"name": name, "image": str(target), "model_id": model_id}


def style_image(store: Store, name_or_path: str) -> str:
    """The image of a palette style, or the argument itself when it is a path to an image file."""
    for style in store.styles():
        if style["name"] == name_or_path:
            return style["image"]
    if Path(name_or_path).is_file():
        return name_or_path
    names = ", ".join(s["name"] for s in store.styles()) or "none yet"
    raise NotFound(f"unknown style {name_or_path!r} (palette: {names}; or give an image path)")


def parse_blend(spec: str) -> list[tuple[str, float]]:
    """`NAME` or `NAME:WEIGHT,NAME:WEIGHT,...` (palette names have no ':' or ',') -> [(name, weight)]."""
    blend = []
    for part in spec.split(","):
        name, _, weight = part.strip().partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise DataError(
                f"style blend {spec!r}: {weight!r} is not a weight (use e.g. swirls:0.6,dots:0.4)"
            ) from None
        if not name or not value >= 0:
            raise DataError(f"style blend {spec!r}: each part is a style name with an optional weight >= 0")
        blend.append((name, value))
    if sum(weight for _, weight in blend) <= 0:
        raise DataError(f"style blend {spec!r}: the weights are all zero")
    return blend
