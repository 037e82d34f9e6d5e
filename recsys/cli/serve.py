"""The web service: serve (the port check, the worker processes) and demo (build the demo shop, serve it)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections import Counter

from common.errors import StylerecError
from recsys.cli.common import add_shop_flags, setting_flag, settings_from
from recsys.cli.shop import cmd_import
from recsys.settings import Settings


class PortBusy(StylerecError, OSError):
    """The port the service should listen on cannot be bound (503 were it ever answered over HTTP)."""

    http_status = 503


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


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web service with the settings, the flags given on top (`serve`)."""
    return serve(settings_from(args))


def serve(settings: Settings) -> int:
    """Run the web service (API at /docs, the web page at /): `web_workers` web processes sharing one socket,
    plus one low-priority render worker process. SQLite (WAL) is the source of truth they share. The worker
    processes read the same settings from the environment (`Settings.to_env`)."""
    import subprocess

    import uvicorn

    from recsys.service import logs
    from recsys.service.server import end_resource_tracker, supervisor, uvicorn_options, with_parent_pid
    from recsys.shop.catalog import open_catalog

    os.environ.update(settings.to_env())  # what the worker processes started below read with Settings()
    cpus = os.cpu_count() or 1
    # Thread counts, set once here for the processes started below: one compute thread per web worker (requests
    # are many and small; photo embeddings run on a bounded pool), every core for the low-priority renderer.
    web_threads = {v: os.environ.get(v, "1") for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    render_threads = {v: os.environ.get(v, str(cpus)) for v in web_threads}
    sock = _listen(settings.host, settings.port)  # a busy port is reported before anything is loaded
    open_catalog(settings.catalog_paths()).close()  # builds what is missing once, before the workers start
    logs.configure()
    renderer = subprocess.Popen(
        [sys.executable, "-m", "recsys.service.render_queue"], env=with_parent_pid({**os.environ, **render_threads})
    )
    os.environ.update(web_threads)
    config = uvicorn.Config(
        "recsys.service.worker:serve_app", factory=True, host=settings.host, port=settings.port,
        workers=settings.web_workers,
        log_level="warning", access_log=False, **uvicorn_options(settings),
    )  # fmt: skip
    print(
        f"stylerec serving on http://{settings.host}:{settings.port} with {settings.web_workers} web worker(s) "
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
    from recsys.shop.catalog import EncoderConfig, build_index, embed_folder
    from recsys.shop.demo import CATALOG_FILE, make_demo_catalog, make_demo_styles, read_catalog
    from recsys.shop.shoppers import INTERACTIONS_FILE, make_demo_shoppers
    from recsys.store.opener import store_exists
    from recsys.style.palette import add_style

    settings = settings_from(args)
    demo_dir = settings.demo_dir
    if not args.no_serve:
        _listen(settings.host, settings.port).close()  # a busy port is reported now, not after the whole build
    catalog_csv = demo_dir / CATALOG_FILE
    if not catalog_csv.exists():
        make_demo_catalog(demo_dir)
    if not (demo_dir / INTERACTIONS_FILE).exists():
        make_demo_shoppers(demo_dir)
    catalog = read_catalog(catalog_csv)
    config = None if args.image_size is None else EncoderConfig(image_size=args.image_size)
    store, report = embed_folder(
        demo_dir / "images", settings.embeddings, config, progress=not args.quiet, device=settings.device
    )
    print(f"embedded the demo catalog into {settings.embeddings}: {report.summary()}")
    running = settings.db if store_exists(settings.db) else None  # a shop already served from this store: tell it
    index = build_index(store.vectors, store.ids, settings.index, store.model_id, store=running).index
    print(f"style index in {settings.index}: {index.info()}\n")

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
        db=settings.db, catalog=demo_dir, interactions=[str(demo_dir / INTERACTIONS_FILE)], format=None
    )
    cmd_import(import_args)
    from recsys.shop.catalog import load_encoder, open_catalog

    # Opening the catalog the first time trains and saves the CF model the service and `stylerec feed` load.
    shop = open_catalog(settings.catalog_paths())
    known_styles = {s["name"] for s in shop.store.styles() if s["model_id"] == store.model_id}
    new_styles = [path for path in make_demo_styles(demo_dir / "styles") if path.stem not in known_styles]
    encoder = load_encoder(settings.embeddings) if new_styles else None  # VGG loaded once for all of them
    for path in new_styles:
        add_style(shop.store, path.stem, path, path.parent, settings.embeddings, encoder)
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
    return serve(settings)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `stylerec` parser."""
    p = sub.add_parser("serve", help="run the web service (API + web page)")
    add_shop_flags(p)
    _add_listen_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="make + embed the demo catalog and show shop-this-style results")
    setting_flag(p, "--catalog", field="demo_dir", help="the demo catalog (made when missing)")
    add_shop_flags(p)
    setting_flag(p, "--device", field="device")
    p.add_argument("--image-size", type=int, help="encoder image size (default 256)")
    p.add_argument("--no-serve", action="store_true", help="prepare and print, do not start the service")
    _add_listen_flags(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)


def _add_listen_flags(parser: argparse.ArgumentParser) -> None:
    """--host, --port, --workers: where the service listens and with how many web processes."""
    setting_flag(parser, "--host", field="host")
    setting_flag(parser, "--port", field="port", type=int)
    setting_flag(parser, "--workers", field="web_workers", type=int, help="web worker processes")
