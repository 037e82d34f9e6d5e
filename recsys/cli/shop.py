"""Commands on the shop's data: demo-data, import, copy-store, feed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.errors import BadInput, NoSuchFile
from recsys.cli.common import DB_HELP, add_shop_flags, setting_flag, settings_from


def cmd_demo_data(args: argparse.Namespace) -> int:
    from recsys.shop.demo import make_demo_catalog
    from recsys.shop.shoppers import make_demo_shoppers

    out = settings_from(args).demo_dir
    print(f"demo catalog written to {make_demo_catalog(out)}")
    print(f"demo shoppers written to {make_demo_shoppers(out)}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Load a catalog and/or interaction files into the SQLite store (idempotent, all or nothing per file)."""
    from recsys.store.data_io import file_digest, iter_interactions, read_catalog
    from recsys.store.opener import open_store

    if not args.catalog and not args.interactions:
        raise BadInput("nothing to import: give --catalog DIR and/or --interactions FILE")
    store = open_store(settings_from(args).db)
    try:
        if args.catalog:
            written = store.import_items(read_catalog(args.catalog), str(Path(args.catalog).resolve()))
            print(f"items from {args.catalog}: {written} written ({store.count_items()} in the store)")
        for path in args.interactions or []:
            written = store.import_interactions(
                _rows_progress(iter_interactions(path, args.format), f"importing {Path(path).name}"),
                str(Path(path).resolve()),
                content_digest=file_digest(path, args.format),
                bulk=Path(path).stat().st_size > BULK_IMPORT_BYTES,
            )
            print(f"interactions from {path}: {written} written" + ("" if written else " (already imported)"))
    finally:
        store.close()
    return 0


BULK_IMPORT_BYTES = 256 << 20  # an interaction file this big is imported with the events' indexes rebuilt after


def _rows_progress(chunks, desc: str):
    """The chunks of a streamed file, counted on a progress bar (rows, rows/s)."""
    from tqdm import tqdm

    with tqdm(desc=desc, unit=" rows", unit_scale=True, mininterval=2, file=sys.stderr) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))


def cmd_copy_store(args: argparse.Namespace) -> int:
    """Copy every row of one store into a new, empty one (ids kept), in one transaction of the target."""
    from recsys.store.copy_store import copy_store
    from recsys.store.opener import check_url, store_exists

    check_url(args.target)
    if not store_exists(args.source):
        raise NoSuchFile(f"no store at {args.source}")
    copied = copy_store(args.source, args.target)
    print(", ".join(f"{table}: {rows}" for table, rows in copied.items() if rows) + f" rows copied to {args.target}")
    return 0


def cmd_feed(args: argparse.Namespace) -> int:
    """A shopper's feed, from the same catalog and models the service serves: the learned pipeline when
    <models>/ranker holds a ranker version (--retrain trains one on the store's events and saves it there as a new
    version; --ranker DIR uses a folder written by `LearnedRanker.save`), else the hand-set blend."""
    from recsys.models.ranker import RANKER_DIR, LearnedRanker
    from recsys.shop.catalog import open_catalog

    catalog = open_catalog(settings_from(args).catalog_paths())
    try:
        if args.retrain:
            trained = catalog.retrain_ranker()
            where = f"{Path(catalog.paths.models) / RANKER_DIR}/{trained['version']}"
            print(f"feed ranker {'saved as ' + where if trained['learned'] else 'not trained'}: {trained['training']}",
                  file=sys.stderr)  # fmt: skip
        elif args.ranker:
            catalog.recommender.use_ranker(LearnedRanker.load(args.ranker))
        if catalog.recommender.feed_model == "blend":
            print("no learned ranker (--retrain to train one): the feed is the hand-set blend", file=sys.stderr)
        categories = set(args.category.split(",")) if args.category else None
        feed = catalog.feed(args.user_id, args.k, categories, args.alpha)
        if args.json:
            print(json.dumps([r.as_dict() for r in feed]))
        else:
            for rank, r in enumerate(feed, 1):
                print(f"{rank:3d}  {r.item_id}  {r.score:+.3f}  {catalog.item(r.item_id)['title']}  ({r.reason})")
    finally:
        catalog.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `stylerec` parser."""
    p = sub.add_parser("demo-data", help="write the generated demo catalog (images + items.csv)")
    setting_flag(p, "--out", field="demo_dir", help="where the demo catalog goes")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("import", help="load a catalog and interactions into the SQLite store")
    setting_flag(p, "--db", field="db", help=DB_HELP)
    p.add_argument("--catalog", help="catalog folder (H&M layout, or items.csv + images)")
    p.add_argument("--interactions", nargs="*", help="interaction files (H&M, MovieLens, generic CSV/Parquet)")
    p.add_argument("--format", choices=["hm", "recbole", "movielens", "generic"], help="default: detected")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("copy-store", help="copy a whole store into a new one (e.g. SQLite to PostgreSQL)")
    p.add_argument("source", help=DB_HELP)
    p.add_argument("target", help="a new or empty store: " + DB_HELP)
    p.set_defaults(func=cmd_copy_store)

    p = sub.add_parser("feed", help="a shopper's personalised feed with reasons")
    p.add_argument("user_id")
    add_shop_flags(p)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--category", help="only these categories (comma-separated)")
    p.add_argument("--alpha", type=float, help="the hand-set blend with this CF weight against style")
    p.add_argument("--ranker", help="a folder written by LearnedRanker.save (default: the current saved version)")
    p.add_argument("--retrain", action="store_true", help="train the feed's ranker on the store's events, save it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_feed)
