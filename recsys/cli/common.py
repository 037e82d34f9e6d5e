"""What the command groups share: the default paths, the flag helpers."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_DEMO_DIR = Path("data/demo")
DEFAULT_STORE = Path("var/store")
DEFAULT_INDEX = Path("var/index")
DEFAULT_DB = os.environ.get("STYLEREC_DB", "var/stylerec.db")  # a path (SQLite) or postgresql://...
DEFAULT_STYLES = Path("var/styles")
DEFAULT_RENDERS = Path("var/renders")
DEFAULT_MODELS = Path("var/models")
DEFAULT_WORKERS = 2


DB_HELP = "the shop's store: a path or sqlite:///path (SQLite), or postgresql://user@host:port/db"


def _given(flags: dict) -> dict:
    """The flags the user gave (argparse leaves the others None), for a Pydantic model's own defaults."""
    return {key: value for key, value in flags.items() if value is not None}


def _encoder_config(args: argparse.Namespace):
    """An EncoderConfig from the encoder flags the user gave; None when they gave none (use the store's)."""
    from transfer.encoder import EncoderConfig

    given = _given(
        {
            "image_size": args.image_size,
            "dim": args.dim,
            "projection": args.projection,
            "head": getattr(args, "head", None),
            "use_mask": False if args.no_mask else None,
            "facets": False if getattr(args, "no_facets", False) else None,
            "fit_samples": getattr(args, "fit_samples", None),
        }
    )
    return EncoderConfig.model_validate(given) if given else None


def _add_encoder_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int, help="longer side in pixels (default 256)")
    parser.add_argument("--dim", type=int, help="embedding dimension (default 256)")
    parser.add_argument("--projection", choices=["pca", "random"], help="compact projection (default pca)")
    parser.add_argument("--no-mask", action="store_true", help="use the whole image, not just the product")
    parser.add_argument(
        "--no-facets", action="store_true", help="one part (colour Grams, before issue 22), not pattern + colour"
    )
    parser.add_argument(
        "--head", help="a shipped learned style head, e.g. style-head-1 (default: none, the plain v2 Gram)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, help="image loading workers (default 1 on CPU)")


def _catalog_paths(args: argparse.Namespace):
    """Where the shop's data and models are, from the flags the user gave (the rest: the defaults)."""
    from recsys.shop.catalog import CatalogPaths

    given = {"db": args.db, "embeddings": args.store, "index": args.index, "models": args.models}
    paths = {k: v if k == "db" else Path(v) for k, v in _given(given).items()}  # db: a path or a URL
    return CatalogPaths(**paths, device=getattr(args, "device", None))
