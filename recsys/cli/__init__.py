"""The `stylerec` command line: `main()` and the parser, assembled from one module per command group.

- `shop`: demo-data, import, copy-store, feed
- `style`: embed, index, similar, style-eval, styles, render, train-decoder
- `models`: train, evaluate
- `serve`: serve, demo (the port check and the worker processes)

Each group's module registers its own sub-commands (`register(sub)`); `common` holds what they share.
"""

from __future__ import annotations

import argparse
import logging
import sys

from common.errors import StylerecError
from recsys.cli import models, serve, shop, style

GROUPS = (shop, style, models, serve)


def build_parser() -> argparse.ArgumentParser:
    """The `stylerec` parser: the global flags and every group's sub-commands."""
    parser = argparse.ArgumentParser(prog="stylerec", description="Style-aware product recommendations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error (`StylerecError`) prints `error: <message>` and returns its exit code (2
    unless it says otherwise); any other exception is a bug and propagates with its traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return args.func(args)
    except StylerecError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
