"""The style palette: named style references kept in the store, each with a style vector comparable to the
catalog's (same embedding model), so shoppers' profiles can be matched to them."""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.errors import BadInput, NoSuchFile, NotFound
from recsys.store.data_io import DataError
from recsys.store.sqlite import Store
from transfer.render_cache import load_style

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def style_vector(image: str | os.PathLike, embeddings_dir: str | os.PathLike, encoder=None) -> tuple[np.ndarray, str]:
    """The style vector of an image under the embedding store's own encoder (`encoder`, when the caller already
    loaded it with `load_encoder(embeddings_dir)`: adding several styles loads VGG once), and its model id."""
    from recsys.shop.catalog import load_encoder

    encoder = encoder if encoder is not None else load_encoder(embeddings_dir)
    return encoder.embed_image(image), encoder.model_id


def add_style(
    store: Store,
    name: str,
    image: str | os.PathLike,
    styles_dir: str | os.PathLike,
    embeddings_dir: str | os.PathLike | None = None,
    encoder=None,
) -> dict:
    """Copy a style image into the palette folder and register it (with its style vector when the catalog's
    embedding store is given; `encoder`: that store's, if already loaded). Replaces a style of the same name."""
    if not NAME.match(name):
        raise BadInput(f"style name {name!r}: use letters, digits, '-', '_' or '.' (up to 64)")
    load_style(image)  # RenderError for an image that cannot be a style
    target = Path(styles_dir) / f"{name}{Path(image).suffix.lower() or '.jpg'}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(image).resolve() != target.resolve():
        shutil.copyfile(image, target)
    vector, model_id = (None, None)
    if embeddings_dir is not None and Path(embeddings_dir).exists():
        vector, model_id = style_vector(target, embeddings_dir, encoder)
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


def parse_blend(specs: str | Sequence[str]) -> list[tuple[str, float]]:
    """[(name, weight)] from style-blend specs: the one parser of the CLI's `--style` flags and the service's
    `style=` parameter.

    Each spec is `PART[,PART...]` and each part `NAME[:WEIGHT]` (weight 1 when not given); several specs (the
    CLI's repeated `--style`) are the parts of one blend. NAME is a palette name or, for the CLI, an image path
    (a path may hold ':' as in `C:\\styles\\a.jpg`: the text after the last ':' is a weight only when it holds no
    '/' or '\\'; a path cannot hold ','). A weight must be a finite number >= 0 and the weights must not all be
    zero; anything else is a `DataError` naming the spec and the problem.
    """
    parts = [specs] if isinstance(specs, str) else list(specs)
    if not parts:
        raise DataError("style blend: give at least one style (e.g. swirls or swirls:0.6,dots:0.4)")
    blend = []
    for spec in parts:
        for part in spec.split(","):
            part = part.strip()
            name, colon, weight = part.rpartition(":")
            if not colon or "/" in weight or "\\" in weight:
                name, weight = part, ""
            try:
                value = float(weight) if weight else 1.0
            except ValueError:
                raise DataError(
                    f"style blend {spec!r}: {weight!r} is not a weight (use e.g. swirls:0.6,dots:0.4)"
                ) from None
            if not name.strip() or not (math.isfinite(value) and value >= 0):
                raise DataError(
                    f"style blend {spec!r}: each part is a style name with an optional weight >= 0 "
                    "(e.g. swirls:0.6,dots:0.4)"
                )
            blend.append((name.strip(), value))
    if sum(weight for _, weight in blend) <= 0:
        raise DataError(f"style blend {', '.join(parts)!r}: the weights are all zero")
    return blend


def resolve_blend(store: Store | None, specs: str | Sequence[str]) -> list[tuple[str, float]]:
    """[(style image path, weight)] of a blend (`parse_blend`): palette names looked up in `store`, image paths
    taken as they are. An unknown name is a `KeyError` naming the palette; without a store every name must be an
    image file (`FileNotFoundError` otherwise)."""
    blend = []
    for name, weight in parse_blend(specs):
        if store is not None:
            path = style_image(store, name)
        elif Path(name).is_file():
            path = name
        else:
            raise NoSuchFile(f"no style named {name!r} and no such image file")
        blend.append((path, weight))
    return blend
