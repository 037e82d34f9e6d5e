"""What the command groups share: the settings flags, the one flag-to-config mapper, the encoder flags."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel

from recsys.settings import Settings

DB_HELP = "the shop's store: a path or sqlite:///path (SQLite), or postgresql://user@host:port/db"


def given(args: argparse.Namespace, model: type[BaseModel], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The flags the user gave whose dest names a field of `model` (argparse leaves the others None), for the
    model's own defaults to fill the rest: the one mapper from flags to a config or the settings."""
    return {
        field: value
        for field, value in vars(args).items()
        if field in model.model_fields and field not in exclude and value is not None
    }


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings, the flags the user gave on top: flag, then `STYLEREC_*` environment variable, then default."""
    return Settings(**given(args, Settings))


def setting_flag(parser: argparse.ArgumentParser, *flags: str, field: str, help: str = "", **kwargs: Any) -> None:
    """A flag that overrides the setting `field` (its dest); the help names the default and its variable."""
    default = Settings.model_fields[field].default
    where = ("" if default is None else f"default {default}, or ") + f"${Settings.env_name(field)}"
    kwargs.setdefault("metavar", flags[0].lstrip("-").upper().replace("-", "_"))
    parser.add_argument(*flags, dest=field, help=f"{help} ({where})" if help else where, **kwargs)


def add_shop_flags(parser: argparse.ArgumentParser, db_help: str = DB_HELP) -> None:
    """--db, --store, --index, --models: where the shop's data and models are."""
    setting_flag(parser, "--db", field="db", help=db_help)
    setting_flag(parser, "--store", field="embeddings", help="embedding store of the catalog's images")
    setting_flag(parser, "--index", field="index", help="the persisted style index (built when missing)")
    setting_flag(parser, "--models", field="models", help="saved models (CF, ranker) folder")


def encoder_config(args: argparse.Namespace):
    """An EncoderConfig from the encoder flags the user gave; None when they gave none (use the store's)."""
    from recsys.shop.catalog import EncoderConfig

    flags = given(args, EncoderConfig)
    return EncoderConfig.model_validate(flags) if flags else None


def add_encoder_flags(parser: argparse.ArgumentParser) -> None:
    """The encoder's flags (dests: EncoderConfig fields) and the image loading flags."""
    parser.add_argument("--image-size", type=int, help="longer side in pixels (default 256)")
    parser.add_argument("--dim", type=int, help="embedding dimension (default 256)")
    parser.add_argument("--projection", choices=["pca", "random"], help="compact projection (default pca)")
    parser.add_argument(
        "--no-mask", dest="use_mask", action="store_false", default=None,
        help="use the whole image, not just the product",
    )  # fmt: skip
    parser.add_argument(
        "--no-facets", dest="facets", action="store_false", default=None,
        help="one part (colour Grams, before issue 22), not pattern + colour",
    )  # fmt: skip
    parser.add_argument(
        "--head", help="a shipped learned style head, e.g. style-head-1 (default: none, the plain v2 Gram)"
    )
    setting_flag(parser, "--device", field="device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, help="image loading workers (default 1 on CPU)")
