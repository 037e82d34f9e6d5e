"""The `stylerec` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections import Counter
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


def cmd_demo_data(args: argparse.Namespace) -> int:
    from recsys.demo import make_demo_catalog
    from recsys.shoppers import make_demo_shoppers

    print(f"demo catalog written to {make_demo_catalog(args.out)}")
    print(f"demo shoppers written to {make_demo_shoppers(args.out)}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from transfer.embed import embed_folder

    store, report = embed_folder(
        args.images_dir,
        args.out,
        _encoder_config(args),
        refit=args.refit,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.workers,
        id_from=args.id_from,
        progress=not args.quiet,
        ray_address=args.ray,
    )
    print(f"{args.out}: {len(store)} vectors; {report.summary()}")
    for item_id, message in report.failed.items():
        print(f"  skipped {item_id}: {message}", file=sys.stderr)
    return 0


def cmd_index_build(args: argparse.Namespace) -> int:
    from index.style_index import StyleIndex
    from transfer.store import EmbeddingStore

    store = EmbeddingStore.load(args.store)
    if len(store) == 0:
        raise ValueError(f"{args.store} holds no vectors to index")
    index = StyleIndex.build(store.vectors, store.ids, spec=args.spec, model_id=store.model_id)
    version = index.save(args.out)
    print(json.dumps({**index.info(), "path": str(version)}, indent=2))
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from index.style_index import StyleIndex

    print(json.dumps(StyleIndex.load(args.index).info(), indent=2))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    """Items in the style of an item or a photo, from the shop's catalog (`open_catalog`: the store, the embedding
    store and its encoder, the persisted index): the lists `GET /items/ID/similar` and `POST /shop-this-style` give."""
    from recsys.catalog import open_catalog

    if (args.item_id is None) == (args.image is None):
        raise ValueError("give an ITEM_ID or --image PATH (not both)")
    catalog = open_catalog(_catalog_paths(args))
    try:
        if catalog.style is None:
            raise ValueError(f"the shop has no style vectors (embed its images into {args.store} first)")
        if args.image is not None:
            results = catalog.shop_this_style(catalog.embed_image(args.image), args.k, facet=args.facet)
        else:
            results = catalog.similar(args.item_id, args.k, facet=args.facet)
        titles = {i: item["title"] for i, item in catalog.items_by_id([r.item_id for r in results]).items()}
    finally:
        catalog.close()
    if args.json:
        print(json.dumps([{"item_id": r.item_id, "score": round(r.score, 6)} for r in results]))
    else:
        for rank, r in enumerate(results, 1):
            print(f"{rank:3d}  {r.item_id}  {r.score:.4f}  {titles.get(r.item_id, '')}")
    return 0


def cmd_style_eval(args: argparse.Namespace) -> int:
    from transfer.encoder import EncoderConfig
    from transfer.style_eval import style_eval

    methods = tuple(m.strip() for m in args.method.split(",") if m.strip())
    config = _encoder_config(args) or EncoderConfig()
    results = style_eval(
        args.dir, methods, config, args.k, args.device, args.batch_size, args.workers, progress=not args.json
    )
    if args.json:
        print(json.dumps(results[methods[0]] if len(methods) == 1 else results))
    else:
        for method, metrics in results.items():
            print(f"{method:12s} " + "  ".join(f"{k}={v:.4f}" if k != "n" else f"n={v}" for k, v in metrics.items()))
    return 0


def _epoch(value: str | None) -> float | None:
    """Epoch seconds from a date (2020-07-01) or a number."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        import pandas as pd

        return float(pd.Timestamp(value, tz="UTC").timestamp())


def _cf_config(args: argparse.Namespace):
    from recsys.cf import CFConfig

    given = {
        "model": args.cf_model,
        "factors": args.factors,
        "regularization": args.regularization,
        "iterations": args.iterations,
        "weighting": args.weighting,
    }
    return CFConfig.model_validate(_given(given))


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Offline evaluation of popularity, CF, style and hybrid models on one split."""
    import time

    from recsys.catalog import catalog_style_space
    from recsys.data_io import read_catalog, read_interactions
    from recsys.evaluate import EvalData, evaluate, write_report
    from recsys.ranker import RankerConfig
    from recsys.splits import split

    if (args.data is None) == (args.train is None and args.test is None):
        raise ValueError("give --data FILE (and a --split), or --train FILE --test FILE")
    if args.data is not None:
        interactions = read_interactions(args.data, args.format)
        cutoff = _epoch(args.cutoff)
        train, test = split(interactions, args.split, args.test_size, args.seed, cutoff, args.last_k)
        if args.test_end is not None:
            test = test[test["timestamp"] < _epoch(args.test_end)]
        split_name = args.split
    else:
        if args.train is None or args.test is None:
            raise ValueError("--train and --test go together")
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
        raise ValueError(f"--keep-new is a share between 0 and 1, got {args.keep_new}")
    data = EvalData(train, test, style, catalog_items, split_name, args.seed, catalog, args.keep_new)
    ranker_config = RankerConfig.model_validate(_given({"windows": args.windows, "cf_pool": args.cf_pool}))
    result = evaluate(data, args.k, models, _cf_config(args), ranker_config, progress=not args.json)
    report_dir = Path(args.report or Path("var") / "reports" / time.strftime("eval-%Y%m%d-%H%M%S"))
    report = write_report(result, report_dir, "stylerec offline evaluation", "stylerec " + " ".join(sys.argv[1:]))
    if args.json:
        print(json.dumps({**result.as_json(), "report": str(report)}))
    else:
        print(report.read_text())
        print(f"report: {report}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Load a catalog and/or interaction files into the SQLite store (idempotent, all or nothing per file)."""
    from recsys.data_io import file_digest, iter_interactions, read_catalog
    from recsys.stores import open_store

    if not args.catalog and not args.interactions:
        raise ValueError("nothing to import: give --catalog DIR and/or --interactions FILE")
    store = open_store(args.db)
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
    from recsys.store_copy import copy_store
    from recsys.stores import check_url, store_exists

    check_url(args.target)
    if not store_exists(args.source):
        raise FileNotFoundError(f"no store at {args.source}")
    copied = copy_store(args.source, args.target)
    print(", ".join(f"{table}: {rows}" for table, rows in copied.items() if rows) + f" rows copied to {args.target}")
    return 0


def _catalog_paths(args: argparse.Namespace):
    """Where the shop's data and models are, from the flags the user gave (the rest: the defaults)."""
    from recsys.catalog import CatalogPaths

    given = {"db": args.db, "embeddings": args.store, "index": args.index, "models": args.models}
    paths = {k: v if k == "db" else Path(v) for k, v in _given(given).items()}  # db: a path or a URL
    return CatalogPaths(**paths, device=getattr(args, "device", None))


def cmd_train(args: argparse.Namespace) -> int:
    """Build every model of a shop (CF, item tables, co-purchases, the feed's ranker) as new versions."""
    from recsys.batch.train import TrainOptions, train_shop

    paths = _catalog_paths(args)
    options = TrainOptions(sample_shoppers=args.sample_shoppers, windows=args.windows, ranker=not args.no_ranker)
    result = train_shop(paths.db, paths.models, paths.embeddings, paths.index, options)
    print(json.dumps(result, indent=1))
    return 0


def cmd_feed(args: argparse.Namespace) -> int:
    """A shopper's feed, from the same catalog and models the service serves: the learned pipeline when
    <models>/ranker holds a ranker version (--retrain trains one on the store's events and saves it there as a new
    version; --ranker DIR uses a folder written by `LearnedRanker.save`), else the hand-set blend."""
    from recsys.catalog import open_catalog
    from recsys.ranker import RANKER_DIR, LearnedRanker

    catalog = open_catalog(_catalog_paths(args))
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


def cmd_styles(args: argparse.Namespace) -> int:
    """The style palette: add, list, remove."""
    from recsys.palette import add_style
    from recsys.stores import open_store

    store = open_store(args.db)
    try:
        if args.styles_command == "add":
            added = add_style(store, args.name, args.image, args.styles_dir, args.store)
            vector = "with a style vector" if added["model_id"] else "no style vector (no embedding store yet)"
            print(f"style {args.name!r} added: {added['image']}, {vector}")
        elif args.styles_command == "remove":
            if not store.delete_style(args.name):
                raise KeyError(f"unknown style {args.name!r}")
            print(f"style {args.name!r} removed")
        else:
            styles = [{"name": s["name"], "image": s["image"], "model_id": s["model_id"]} for s in store.styles()]
            if args.json:
                print(json.dumps(styles))
            for style in [] if args.json else styles:
                print(f"{style['name']:20s} {style['image']}  {style['model_id'] or '(no vector)'}")
    finally:
        store.close()
    return 0


def _render_options(args: argparse.Namespace):
    from transfer.render import RenderOptions

    given = {
        "renderer": args.renderer,
        "size": args.size,
        "steps": args.steps,
        "strength": args.strength,
        "brightness": args.brightness,
        "contrast": args.contrast,
        "saturation": args.saturation,
        "style_amount": args.style_amount,
        "preserve_colour": False if args.no_preserve_colour else None,
        "keep_background": False if args.no_keep_background else None,
    }
    return RenderOptions.model_validate(_given(given))


def _style_blend(specs: list[str], store) -> list[tuple[str, float]]:
    """[(style image path, weight)] from `--style NAME_OR_IMAGE[:WEIGHT]` flags (weight 1 when not given)."""
    from recsys.palette import style_image

    blend = []
    for spec in specs:
        name, _, weight = spec.rpartition(":")
        try:
            name, weight = (name, float(weight)) if name else (spec, 1.0)
        except ValueError:
            name, weight = spec, 1.0
        path = style_image(store, name) if store else name
        if not Path(path).is_file():
            raise FileNotFoundError(f"no style named {name!r} and no such image file")
        blend.append((path, weight))
    return blend


def cmd_render(args: argparse.Namespace) -> int:
    """Re-render products (item ids or image paths) in a palette style, a style image or a blend of styles."""
    from tqdm.auto import tqdm

    from recsys.stores import open_store, store_exists
    from transfer.adain import renderer_for
    from transfer.render import RenderError
    from transfer.render_cache import RenderCache

    options = _render_options(args)
    store = open_store(args.db) if store_exists(args.db) else None
    blend = _style_blend(args.style, store)
    style = blend[0][0] if len(blend) == 1 else blend
    stem = "+".join(Path(path).stem for path, _ in blend)
    if len(blend) > 1 and options.renderer != "fast":
        raise RenderError(f"style blends need the fast renderer, not {options.renderer}")
    sources = []
    for target in args.targets:
        if Path(target).is_file():
            sources.append((Path(target).stem, target))
        elif store is not None:
            image = store.item(target)["image"]
            if not image:
                raise ValueError(f"item {target!r} has no image to render")
            sources.append((target, image))
        else:
            raise FileNotFoundError(f"{target}: not an image file, and there is no store to look item ids up in")
    try:
        renderer = renderer_for(options, args.device, args.threads)
    except RenderError as exc:
        if options.renderer != "adain":
            raise
        print(f"note: {exc}; rendering with fast instead", file=sys.stderr)
        options = options.model_copy(update={"renderer": "fast"})
        renderer = renderer_for(options, args.device, args.threads)
    cache = RenderCache(args.cache)
    out = Path(args.out) if args.out else Path(".")
    single_file = len(sources) == 1 and out.suffix.lower() in (".jpg", ".jpeg")
    for name, image in tqdm(sources, desc="rendering", disable=args.quiet or len(sources) == 1):
        data, cached = cache.render(image, style, options, renderer, progress=not args.quiet and len(sources) == 1)
        path = out if single_file else out / f"{name}-{stem}-{options.renderer}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{path}{' (cached)' if cached else ''}")
    return 0


def cmd_train_decoder(args: argparse.Namespace) -> int:
    from transfer.adain import export_weights, train_decoder

    losses = train_decoder(
        args.content, args.styles, args.checkpoint, args.steps, args.batch_size, args.size, args.lr,
        checkpoint_every=args.checkpoint_every, device=args.device, progress=not args.quiet,
        workers=args.workers, minutes=args.minutes,
    )  # fmt: skip
    if losses:
        tail = losses[-10:]
        print(f"steps run: {len(losses)}; loss {losses[0]:.1f} -> {sum(tail) / len(tail):.1f} (mean of last 10)")
    if args.export:
        print(f"decoder weights (fp16) written to {export_weights(args.checkpoint, args.export)}")
    return 0


class PortBusy(OSError):
    """The port the service should listen on cannot be bound."""


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (for the web workers to share); a clear error when the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortBusy(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Is another service running there? "
            "Stop it, or choose another port (--port N; make demo PORT=N)."
        ) from None
    sock.set_inheritable(True)
    return sock


# What `serve` exports so its worker processes (and their settings) see the flags the user gave.
SERVE_ENV = {
    "db": "STYLEREC_DB", "store": "STYLEREC_EMBEDDINGS", "index": "STYLEREC_INDEX", "models": "STYLEREC_MODELS"
}  # fmt: skip


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web service (API at /docs, the web page at /): `--workers` web processes sharing one socket,
    plus one low-priority render worker process. SQLite (WAL) is the source of truth they share."""
    import subprocess

    import uvicorn

    from recsys.catalog import open_catalog
    from recsys.service import logs
    from recsys.service.server import end_resource_tracker, supervisor, uvicorn_options, with_parent_pid
    from recsys.service.settings import Settings

    for flag, variable in SERVE_ENV.items():
        if getattr(args, flag, None) is not None:
            os.environ[variable] = str(getattr(args, flag))
    cpus = os.cpu_count() or 1
    # Thread counts, set once here for the processes started below: one compute thread per web worker (requests
    # are many and small; photo embeddings run on a bounded pool), every core for the low-priority renderer.
    web_threads = {v: os.environ.get(v, "1") for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    render_threads = {v: os.environ.get(v, str(cpus)) for v in web_threads}
    settings = Settings()
    sock = _listen(args.host, args.port)  # a busy port is reported before anything is loaded
    open_catalog(settings.catalog_paths()).close()  # builds what is missing once, before the workers start
    logs.configure()
    renderer = subprocess.Popen(
        [sys.executable, "-m", "recsys.service.render_queue"], env=with_parent_pid({**os.environ, **render_threads})
    )
    os.environ.update(web_threads)
    config = uvicorn.Config(
        "recsys.service.worker:serve_app", factory=True, host=args.host, port=args.port, workers=args.workers,
        log_level="warning", access_log=False, **uvicorn_options(settings),
    )  # fmt: skip
    print(
        f"stylerec serving on http://{args.host}:{args.port} with {args.workers} web worker(s) "
        "(web page at /, API docs at /docs)",
        flush=True,
    )
    try:
        supervisor(config, [sock], [renderer]).run()  # worker processes started fresh, with the settings above
    finally:
        renderer.terminate()
        try:
            renderer.wait(timeout=10)
        except subprocess.TimeoutExpired:
            renderer.kill()  # its running job is queued again when the next worker starts
        sock.close()
        end_resource_tracker()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: make the demo catalog and shoppers, embed, index, import, show "shop this style" and feeds,
    then serve the web service on it."""
    from index.style_index import StyleIndex
    from recsys.demo import CATALOG_FILE, make_demo_catalog, make_demo_styles, read_catalog
    from recsys.palette import add_style
    from recsys.shoppers import INTERACTIONS_FILE, make_demo_shoppers
    from transfer.embed import embed_folder
    from transfer.encoder import EncoderConfig

    if not args.no_serve:
        _listen(args.host, args.port).close()  # a busy port is reported now, not after the whole build
    catalog_csv = Path(args.catalog) / CATALOG_FILE
    if not catalog_csv.exists():
        make_demo_catalog(args.catalog)
    if not (Path(args.catalog) / INTERACTIONS_FILE).exists():
        make_demo_shoppers(args.catalog)
    catalog = read_catalog(catalog_csv)
    config = None if args.image_size is None else EncoderConfig(image_size=args.image_size)
    store, report = embed_folder(
        Path(args.catalog) / "images", args.store, config, progress=not args.quiet, device=args.device
    )
    print(f"embedded the demo catalog into {args.store}: {report.summary()}")
    index = StyleIndex.build(store.vectors, store.ids, model_id=store.model_id)
    index.save(args.index)
    print(f"style index in {args.index}: {index.info()}\n")

    def similar(item_id: str, k: int) -> list[tuple[str, float]]:
        return index.similar(store.vector(item_id), k, exclude=item_id)

    k = 5
    same_pattern = same_colour = 0
    for item_id in store.ids:
        for other, _ in similar(item_id, k):
            same_pattern += catalog[other]["pattern"] == catalog[item_id]["pattern"]
            same_colour += catalog[other]["colour"] == catalog[item_id]["colour"]
    total = k * len(store)
    print(
        f"over all {len(store)} items, top-{k} 'shop this style' share the query's pattern "
        f"{same_pattern / total:.0%} and colourway {same_colour / total:.0%} of the time "
        f"(chance: {1 / 6:.0%} and {1 / 8:.0%}).\n"
    )
    shown = Counter()
    for item_id in store.ids:
        row = catalog[item_id]
        if shown[row["pattern"]] or row["category"] == "mug":
            continue
        shown[row["pattern"]] += 1
        print(f"shop this style: {item_id} {row['title']}")
        for other, score in similar(item_id, k):
            print(f"    {other}  {score:.3f}  {catalog[other]['title']}")

    import_args = argparse.Namespace(
        db=args.db, catalog=args.catalog, interactions=[str(Path(args.catalog) / INTERACTIONS_FILE)], format=None
    )
    cmd_import(import_args)
    from recsys.catalog import CatalogPaths, open_catalog

    # Opening the catalog the first time trains and saves the CF model the service and `stylerec feed` load.
    paths = CatalogPaths(args.db, Path(args.store), Path(args.index), Path(args.models), args.device)
    shop = open_catalog(paths)
    known_styles = {s["name"] for s in shop.store.styles() if s["model_id"] == store.model_id}
    for path in make_demo_styles(Path(args.catalog) / "styles"):
        if path.stem not in known_styles:
            add_style(shop.store, path.stem, path, path.parent, args.store)
    if shop.versions.ranker is None:  # the feed's learned ranker, when the shop has the data to learn it
        trained = shop.retrain_ranker()
        if trained["learned"]:
            print(f"feed: learned ranker (LightGBM) trained on {trained['training']}, saved as {trained['version']}")
        else:
            print(f"feed: too little data to learn a ranker ({trained['training']}): the hand-set blend ranks")
    for user_id in ("U0000", "U0001"):
        bought = Counter(catalog[i]["pattern"] for i in shop.recommender.history(user_id)["item_id"])
        styles = ", ".join(f"{s['name']} ({s['score']:.2f})" for s in shop.preferred_styles(user_id))
        print(f"\nfeed for shopper {user_id} (bought mostly {', '.join(p for p, _ in bought.most_common(2))}; "
              f"preferred palette styles: {styles}):")  # fmt: skip
        for r in shop.feed(user_id, k):
            print(f"    {r.item_id}  {r.score:+.2f}  {catalog[r.item_id]['title']}  ({r.reason})")
    shop.close()
    if args.no_serve:
        return 0
    print()
    serve_args = {"db": args.db, "store": args.store, "index": args.index, "models": args.models}
    return cmd_serve(argparse.Namespace(**serve_args, host=args.host, port=args.port, workers=args.workers))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylerec", description="Style-aware product recommendations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="make + embed the demo catalog and show shop-this-style results")
    p.add_argument("--catalog", default=str(DEFAULT_DEMO_DIR))
    p.add_argument("--store", default=str(DEFAULT_STORE))
    p.add_argument("--index", default=str(DEFAULT_INDEX))
    p.add_argument("--db", default=str(DEFAULT_DB), help=DB_HELP)
    p.add_argument("--models", default=str(DEFAULT_MODELS), help="saved models (CF) folder")
    p.add_argument("--device")
    p.add_argument("--image-size", type=int, help="encoder image size (default 256)")
    p.add_argument("--no-serve", action="store_true", help="prepare and print, do not start the service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="web worker processes")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("demo-data", help="write the generated demo catalog (images + items.csv)")
    p.add_argument("--out", default=str(DEFAULT_DEMO_DIR))
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("embed", help="embed a folder of images (incremental)")
    p.add_argument("images_dir")
    p.add_argument("--out", default=str(DEFAULT_STORE), help="embedding store folder")
    p.add_argument("--refit", action="store_true", help="refit the projection and re-embed everything")
    p.add_argument("--fit-samples", type=int, help="images used to fit the PCA (default 1024)")
    p.add_argument("--id-from", choices=["stem", "path"], default="stem", help="item id from file name or path")
    p.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help="embed with a Ray Data pipeline: a local Ray instance, or the cluster at ADDRESS (ray://host:10001)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_encoder_flags(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("similar", help="items in the same style as an item or a photo")
    p.add_argument("item_id", nargs="?")
    p.add_argument("--image", help="a photo to shop the style of, instead of an item id")
    p.add_argument(
        "--facet", choices=["pattern", "colour", "both"], help="match the pattern, the colours or both (default)"
    )
    p.add_argument("--db", default=str(DEFAULT_DB), help=DB_HELP + " (`stylerec import` or `demo`)")
    p.add_argument("--store", default=str(DEFAULT_STORE), help="embedding store of the catalog's images")
    p.add_argument("--index", default=str(DEFAULT_INDEX), help="the persisted style index (built when missing)")
    p.add_argument("--models", default=str(DEFAULT_MODELS), help="saved models (CF) folder")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_similar)

    index_parser = sub.add_parser("index", help="the FAISS style index").add_subparsers(dest="index_command")
    index_parser.required = True
    p = index_parser.add_parser("build", help="build the index from an embedding store")
    p.add_argument("--store", default=str(DEFAULT_STORE))
    p.add_argument("--out", default=str(DEFAULT_INDEX))
    p.add_argument("--spec", default="auto", help="auto, or a FAISS factory string (Flat, IVF1024,Flat, HNSW32...)")
    p.set_defaults(func=cmd_index_build)
    p = index_parser.add_parser("info", help="what the index holds")
    p.add_argument("--index", default=str(DEFAULT_INDEX))
    p.set_defaults(func=cmd_index_info)

    p = sub.add_parser("style-eval", help="same-style retrieval on a labelled folder (<label>/<image>)")
    p.add_argument("dir")
    p.add_argument(
        "--method",
        default="gram",
        help="gram, gram-raw, gram-v1, gram-v2, gram-head, pattern, colour, content, colour-hist (comma-separated)",
    )
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    _add_encoder_flags(p)
    p.set_defaults(func=cmd_style_eval)

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
    p.add_argument("--cf-model", choices=["als", "bpr"])
    p.add_argument("--factors", type=int)
    p.add_argument("--regularization", type=float)
    p.add_argument("--iterations", type=int)
    p.add_argument("--weighting", choices=["bm25", "log", "none"])
    p.add_argument("--binary", action="store_true", help="every interaction weighs 1 (ignore ratings/weights)")
    p.add_argument("--report", help="report folder (default var/reports/eval-<time>)")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("import", help="load a catalog and interactions into the SQLite store")
    p.add_argument("--db", default=str(DEFAULT_DB), help=DB_HELP)
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
    p.add_argument("--db", default=str(DEFAULT_DB), help=DB_HELP)
    p.add_argument("--store", default=str(DEFAULT_STORE), help="embedding store of the catalog's images")
    p.add_argument("--index", default=str(DEFAULT_INDEX), help="the persisted style index")
    p.add_argument("--models", default=str(DEFAULT_MODELS), help="saved models (CF) folder")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--category", help="only these categories (comma-separated)")
    p.add_argument("--alpha", type=float, help="the hand-set blend with this CF weight against style")
    p.add_argument("--ranker", help="a folder written by LearnedRanker.save (default: the current saved version)")
    p.add_argument("--retrain", action="store_true", help="train the feed's ranker on the store's events, save it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_feed)

    styles = sub.add_parser("styles", help="the style palette").add_subparsers(dest="styles_command")
    styles.required = True
    for name, helptext in (("add", "add or replace a named style"), ("list", "list the palette"),
                           ("remove", "remove a style")):  # fmt: skip
        p = styles.add_parser(name, help=helptext)
        if name != "list":
            p.add_argument("name")
        if name == "add":
            p.add_argument("image")
            p.add_argument("--styles-dir", default=str(DEFAULT_STYLES), help="where palette images are kept")
            p.add_argument("--store", default=str(DEFAULT_STORE), help="the catalog's embedding store")
        p.add_argument("--db", default=str(DEFAULT_DB), help=DB_HELP)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_styles)

    p = sub.add_parser("render", help="re-render products in a style (cached)")
    p.add_argument("targets", nargs="+", metavar="ITEM_OR_IMAGE")
    p.add_argument("--style", required=True, action="append",
                   help="a palette style name or a style image path, with an optional :WEIGHT; repeat it to blend "
                        "styles (fast renderer), e.g. --style starry:0.6 --style scream:0.4")  # fmt: skip
    p.add_argument("--renderer", choices=["fast", "gatys", "adain"], help="default fast (gatys: slow, best quality)")
    p.add_argument("--out", help="output file (one target) or folder (default: current folder)")
    p.add_argument("--size", type=int, help="working size, longer side (default 384)")
    p.add_argument("--steps", type=int, help="gatys optimiser steps (default 100)")
    p.add_argument("--strength", type=float, help="0..1, blends the finished render with the product (default 1)")
    p.add_argument("--style-amount", type=float, help="fast: 0..1, less style = towards the product's own (default 1)")
    p.add_argument("--brightness", type=float)
    p.add_argument("--contrast", type=float)
    p.add_argument("--saturation", type=float)
    p.add_argument("--no-preserve-colour", action="store_true", help="take the style's colours too")
    p.add_argument("--no-keep-background", action="store_true", help="style the whole photo")
    p.add_argument("--db", default=str(DEFAULT_DB), help=DB_HELP)
    p.add_argument("--cache", default=str(DEFAULT_RENDERS))
    p.add_argument("--device")
    p.add_argument("--threads", type=int, help="fast: onnxruntime threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("train-decoder", help="train the AdaIN decoder (resumable)")
    p.add_argument("--content", required=True, help="folder of product photos")
    p.add_argument("--styles", required=True, help="folder of style images")
    p.add_argument("--checkpoint", default="var/adain/decoder.pt")
    p.add_argument("--export", help="also write fp16 decoder weights here (e.g. transfer/weights/adain_decoder.pt)")
    p.add_argument("--steps", type=int, default=2000, help="total steps (a resumed run continues to this)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--workers", type=int, help="image-decoding processes per loader (default: 0 on CPU, <= 8 on GPU)")
    p.add_argument("--minutes", type=float, help="stop with a checkpoint after this many minutes (resume later)")
    p.add_argument("--device")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_train_decoder)

    p = sub.add_parser("train", help="build every model of the shop as a new version (batch, out of core)")
    p.add_argument("--db", help="SQLite store (default var/stylerec.db or $STYLEREC_DB)")
    p.add_argument("--models", help="saved models folder (default var/models or $STYLEREC_MODELS)")
    p.add_argument("--embeddings", "--store", dest="store", help="embedding store: style features (default var/store)")
    p.add_argument("--index", help="persisted style index (default var/index or $STYLEREC_INDEX)")
    p.add_argument("--sample-shoppers", type=int, help="shoppers learned from per ranker window (default 1000)")
    p.add_argument("--windows", type=int, help="ranker windows (default: the served ranker's, else 30; fewer if big)")
    p.add_argument("--no-ranker", action="store_true", help="leave the feed's ranker as it is")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("serve", help="run the web service (API + web page)")
    p.add_argument("--db", help=DB_HELP + " (default var/stylerec.db or $STYLEREC_DB)")
    p.add_argument("--store", help="embedding store (default var/store or $STYLEREC_EMBEDDINGS)")
    p.add_argument("--index", help="persisted style index (default var/index or $STYLEREC_INDEX)")
    p.add_argument("--models", help="saved models folder (default var/models or $STYLEREC_MODELS)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="web worker processes")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    from recsys.schema import SchemaError
    from transfer.images import ImageError
    from transfer.render import RenderError
    from transfer.store import StoreError

    try:
        return args.func(args)
    except (ImageError, RenderError, StoreError, FileNotFoundError, PortBusy, ValueError, KeyError, ConnectionError,
            SchemaError) as exc:  # fmt: skip
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
