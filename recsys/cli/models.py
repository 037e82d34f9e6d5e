"""Commands on the models: train, evaluate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.errors import BadInput
from recsys.cli.common import DB_HELP, given, setting_flag, settings_from


def cmd_train(args: argparse.Namespace) -> int:
    """Build every model of a shop (CF, item tables, co-purchases, the feed's ranker) as new versions."""
    from recsys.batch.train import TrainOptions, train_shop

    paths = settings_from(args).catalog_paths()
    options = TrainOptions(sample_shoppers=args.sample_shoppers, windows=args.windows, ranker=not args.no_ranker)
    result = train_shop(paths.db, paths.models, paths.embeddings, paths.index, options)
    print(json.dumps(result, indent=1))
    return 0


def _epoch(value: str | None) -> float | None:
    """Epoch seconds from a date (2020-07-01) or a number."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        import pandas as pd

        try:
            return float(pd.Timestamp(value, tz="UTC").timestamp())
        except ValueError:
            raise BadInput(f"{value!r} is neither a date (2020-07-01) nor a number of epoch seconds") from None


def _cf_config(args: argparse.Namespace):
    from recsys.models.cf import CFConfig

    return CFConfig.model_validate(given(args, CFConfig, exclude=("seed",)))  # --seed is the split's


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Offline evaluation of popularity, CF, style and hybrid models on one split."""
    import time

    from recsys.evaluation.evaluate import EvalData, evaluate, write_report
    from recsys.evaluation.splits import split
    from recsys.models.ranker import RankerConfig
    from recsys.shop.catalog import catalog_style_space
    from recsys.store.data_io import read_catalog, read_interactions

    if (args.data is None) == (args.train is None and args.test is None):
        raise BadInput("give --data FILE (and a --split), or --train FILE --test FILE")
    if args.data is not None:
        interactions = read_interactions(args.data, args.format)
        cutoff = _epoch(args.cutoff)
        train, test = split(interactions, args.split, args.test_size, args.seed, cutoff, args.last_k)
        if args.test_end is not None:
            test = test[test["timestamp"] < _epoch(args.test_end)]
        split_name = args.split
    else:
        if args.train is None or args.test is None:
            raise BadInput("--train and --test go together")
        train, test = read_interactions(args.train, args.format), read_interactions(args.test, args.format)
        split_name = "temporal" if train["timestamp"].max() <= test["timestamp"].min() else "random"
    if args.binary:
        train, test = train.assign(weight=1.0), test.assign(weight=1.0)

    style, catalog_items, catalog = None, [], None
    if args.catalog:
        catalog = read_catalog(args.catalog)
        catalog_items = list(catalog["item_id"])
        if not args.no_style:
            style = catalog_style_space(
                args.catalog, args.embeddings, catalog, progress=not args.json, device=args.device
            )
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.keep_new is not None and not 0 <= args.keep_new <= 1:
        raise BadInput(f"--keep-new is a share between 0 and 1, got {args.keep_new}")
    data = EvalData(train, test, style, catalog_items, split_name, args.seed, catalog, args.keep_new)
    ranker_config = RankerConfig.model_validate(given(args, RankerConfig, exclude=("seed",)))
    result = evaluate(data, args.k, models, _cf_config(args), ranker_config, progress=not args.json)
    report_dir = Path(args.report or Path("var") / "reports" / time.strftime("eval-%Y%m%d-%H%M%S"))
    report = write_report(result, report_dir, "stylerec offline evaluation", "stylerec " + " ".join(sys.argv[1:]))
    if args.json:
        print(json.dumps({**result.as_json(), "report": str(report)}))
    else:
        print(report.read_text())
        print(f"report: {report}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `stylerec` parser."""
    p = sub.add_parser("train", help="build every model of the shop as a new version (batch, out of core)")
    setting_flag(p, "--db", field="db", help=DB_HELP)
    setting_flag(p, "--models", field="models", help="saved models folder")
    setting_flag(p, "--embeddings", "--store", field="embeddings", help="embedding store: style features")
    setting_flag(p, "--index", field="index", help="persisted style index")
    p.add_argument("--sample-shoppers", type=int, help="shoppers learned from per ranker window (default 1000)")
    p.add_argument("--windows", type=int, help="ranker windows (default: the served ranker's, else 30; fewer if big)")
    p.add_argument("--no-ranker", action="store_true", help="leave the feed's ranker as it is")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="offline evaluation: baselines, CF, style and the feed on one split")
    p.add_argument("--data", help="one interaction file to split (H&M transactions, MovieLens, generic CSV/Parquet)")
    p.add_argument("--train", help="training interactions (instead of --data)")
    p.add_argument("--test", help="test interactions (with --train)")
    p.add_argument("--format", choices=["hm", "recbole", "movielens", "generic"], help="default: detected")
    p.add_argument("--split", choices=["random", "temporal", "leave-last-k"], default="random")
    p.add_argument("--test-size", type=float, default=0.25, help="random: share per user; temporal: share of events")
    p.add_argument("--cutoff", help="temporal: first test date (2020-07-01) or epoch seconds")
    p.add_argument("--test-end", help="temporal: test events before this date only")
    p.add_argument("--last-k", type=int, default=1, help="leave-last-k: events per user held out")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--catalog", help="catalog folder (H&M layout or items.csv + images) for style vectors")
    p.add_argument("--embeddings", help="embedding store for the catalog (default var/embeddings/<catalog name>)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument(
        "--models",
        default="repurchase,popularity-1w,popularity,cf,style,hybrid,hybrid-nostyle",
        help="comma-separated: repurchase, popularity-1w, popularity, cf, style, hybrid, hybrid-nostyle",
    )
    p.add_argument("--windows", type=int, help="training windows of the feed's ranker (default 30)")
    p.add_argument("--cf-pool", type=int, help="the learned feed's CF candidates among this many best sellers")
    p.add_argument("--no-style", action="store_true", help="the catalog's metadata only, no style vectors")
    p.add_argument(
        "--keep-new",
        type=float,
        help="keep only this share (seeded) of the test window's new articles in the catalog, e.g. 0.15",
    )
    p.add_argument("--cf-model", dest="model", choices=["als", "bpr"])
    p.add_argument("--factors", type=int)
    p.add_argument("--regularization", type=float)
    p.add_argument("--iterations", type=int)
    p.add_argument("--weighting", choices=["bm25", "log", "none"])
    p.add_argument("--binary", action="store_true", help="every interaction weighs 1 (ignore ratings/weights)")
    p.add_argument("--report", help="report folder (default var/reports/eval-<time>)")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)
