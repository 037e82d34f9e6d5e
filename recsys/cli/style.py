"""Commands on style: embed, index, similar, style-eval, styles, render, train-decoder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.errors import BadInput, Conflict, NoSuchFile, NotFound
from recsys.cli.common import (
    DB_HELP,
    add_encoder_flags,
    add_shop_flags,
    encoder_config,
    given,
    setting_flag,
    settings_from,
)


def cmd_embed(args: argparse.Namespace) -> int:
    from recsys.shop.catalog import embed_folder

    settings = settings_from(args)
    store, report = embed_folder(
        args.images_dir,
        settings.embeddings,
        encoder_config(args),
        refit=args.refit,
        device=settings.device,
        batch_size=args.batch_size,
        num_workers=args.workers,
        id_from=args.id_from,
        progress=not args.quiet,
        ray_address=args.ray,
    )
    print(f"{settings.embeddings}: {len(store)} vectors; {report.summary()}")
    for item_id, message in report.failed.items():
        print(f"  skipped {item_id}: {message}", file=sys.stderr)
    return 0


def cmd_index_build(args: argparse.Namespace) -> int:
    """Build the style index from an embedding store, save it as a new version and tell the shop's running
    workers (`build_index_from_embeddings`: they load it at their next request)."""
    from recsys.shop.catalog import build_index_from_embeddings

    settings = settings_from(args)
    index, version, _ = build_index_from_embeddings(settings.embeddings, settings.index, args.spec, settings.db)
    print(json.dumps({**index.info(), "path": str(Path(settings.index) / version)}, indent=2))
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from recsys.shop.catalog import index_info

    print(json.dumps(index_info(settings_from(args).index), indent=2))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    """Items in the style of an item or a photo, from the shop's catalog (`open_catalog`: the store, the embedding
    store and its encoder, the persisted index): the lists `GET /items/ID/similar` and `POST /shop-this-style` give."""
    from recsys.shop.catalog import open_catalog

    if (args.item_id is None) == (args.image is None):
        raise BadInput("give an ITEM_ID or --image PATH (not both)")
    catalog = open_catalog(settings_from(args).catalog_paths())
    try:
        if catalog.style is None:
            raise Conflict(f"the shop has no style vectors (embed its images into {catalog.paths.embeddings} first)")
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
    from recsys.shop.catalog import EncoderConfig, style_eval

    methods = tuple(m.strip() for m in args.method.split(",") if m.strip())
    config = encoder_config(args) or EncoderConfig()
    results = style_eval(
        args.dir,
        methods,
        config,
        args.k,
        settings_from(args).device,
        args.batch_size,
        args.workers,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(results[methods[0]] if len(methods) == 1 else results))
    else:
        for method, metrics in results.items():
            print(f"{method:12s} " + "  ".join(f"{k}={v:.4f}" if k != "n" else f"n={v}" for k, v in metrics.items()))
    return 0


def cmd_styles(args: argparse.Namespace) -> int:
    """The style palette: add, list, remove."""
    from recsys.store.opener import open_store
    from recsys.style.palette import add_style

    settings = settings_from(args)
    store = open_store(settings.db)
    try:
        if args.styles_command == "add":
            added = add_style(store, args.name, args.image, settings.styles_dir, settings.embeddings)
            vector = "with a style vector" if added["model_id"] else "no style vector (no embedding store yet)"
            print(f"style {args.name!r} added: {added['image']}, {vector}")
        elif args.styles_command == "remove":
            if not store.delete_style(args.name):
                raise NotFound(f"unknown style {args.name!r}")
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


def _style_blend(specs: list[str], store) -> list[tuple[str, float]]:
    """[(style image path, weight)] from `--style NAME_OR_IMAGE[:WEIGHT]` flags (weight 1 when not given): the
    service's parser and rules (`recsys.style.palette.parse_blend`)."""
    from recsys.style.palette import resolve_blend

    return resolve_blend(store, specs)


def cmd_render(args: argparse.Namespace) -> int:
    """Re-render products (item ids or image paths) in a palette style, a style image or a blend of styles."""
    from tqdm.auto import tqdm

    from common.atomic import atomic_write_bytes
    from recsys.shop.catalog import RenderCache, RenderError, RenderOptions, renderer_for
    from recsys.store.opener import open_store, store_exists

    settings = settings_from(args)
    options = RenderOptions.model_validate(given(args, RenderOptions))
    store = open_store(settings.db) if store_exists(settings.db) else None
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
                raise BadInput(f"item {target!r} has no image to render")
            sources.append((target, image))
        else:
            raise NoSuchFile(f"{target}: not an image file, and there is no store to look item ids up in")
    try:
        renderer = renderer_for(options, settings.device, args.threads)
    except RenderError as exc:
        if options.renderer != "adain":
            raise
        print(f"note: {exc}; rendering with fast instead", file=sys.stderr)
        options = options.model_copy(update={"renderer": "fast"})
        renderer = renderer_for(options, settings.device, args.threads)
    cache = RenderCache(settings.renders_dir)
    out = Path(args.out) if args.out else Path(".")
    single_file = len(sources) == 1 and out.suffix.lower() in (".jpg", ".jpeg")
    for name, image in tqdm(sources, desc="rendering", disable=args.quiet or len(sources) == 1):
        data, cached = cache.render(image, style, options, renderer, progress=not args.quiet and len(sources) == 1)
        path = out if single_file else out / f"{name}-{stem}-{options.renderer}.jpg"
        atomic_write_bytes(path, data)
        print(f"{path}{' (cached)' if cached else ''}")
    return 0


def cmd_train_decoder(args: argparse.Namespace) -> int:
    from recsys.shop.catalog import export_weights, train_decoder

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


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `stylerec` parser."""
    p = sub.add_parser("embed", help="embed a folder of images (incremental)")
    p.add_argument("images_dir")
    setting_flag(p, "--out", field="embeddings", help="embedding store folder")
    p.add_argument("--refit", action="store_true", help="refit the projection and re-embed everything")
    p.add_argument("--fit-samples", type=int, help="images used to fit the PCA (default 1024)")
    p.add_argument("--id-from", choices=["stem", "path"], default="stem", help="item id from file name or path")
    p.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help="embed with a Ray Data pipeline: a local Ray instance, or the cluster at ADDRESS (ray://host:10001)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_encoder_flags(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("similar", help="items in the same style as an item or a photo")
    p.add_argument("item_id", nargs="?")
    p.add_argument("--image", help="a photo to shop the style of, instead of an item id")
    p.add_argument(
        "--facet", choices=["pattern", "colour", "both"], help="match the pattern, the colours or both (default)"
    )
    add_shop_flags(p, DB_HELP + " (`stylerec import` or `demo`)")
    p.add_argument("-k", type=int, default=10)
    setting_flag(p, "--device", field="device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_similar)

    index_parser = sub.add_parser("index", help="the FAISS style index").add_subparsers(dest="index_command")
    index_parser.required = True
    p = index_parser.add_parser("build", help="build the index from an embedding store")
    setting_flag(p, "--store", field="embeddings", help="the embedding store to index")
    setting_flag(p, "--out", field="index", help="the index folder (a new version in it)")
    p.add_argument("--spec", default="auto", help="auto, or a FAISS factory string (Flat, IVF1024,Flat, HNSW32...)")
    setting_flag(p, "--db", field="db", help=DB_HELP + " (its running workers load the new index)")
    p.set_defaults(func=cmd_index_build)
    p = index_parser.add_parser("info", help="what the index holds")
    setting_flag(p, "--index", field="index")
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
    add_encoder_flags(p)
    p.set_defaults(func=cmd_style_eval)

    styles = sub.add_parser("styles", help="the style palette").add_subparsers(dest="styles_command")
    styles.required = True
    for name, helptext in (("add", "add or replace a named style"), ("list", "list the palette"),
                           ("remove", "remove a style")):  # fmt: skip
        p = styles.add_parser(name, help=helptext)
        if name != "list":
            p.add_argument("name")
        if name == "add":
            p.add_argument("image")
            setting_flag(p, "--styles-dir", field="styles_dir", help="where palette images are kept")
            setting_flag(p, "--store", field="embeddings", help="the catalog's embedding store")
        setting_flag(p, "--db", field="db", help=DB_HELP)
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
    p.add_argument("--no-preserve-colour", dest="preserve_colour", action="store_false", default=None,
                   help="take the style's colours too")  # fmt: skip
    p.add_argument("--no-keep-background", dest="keep_background", action="store_false", default=None,
                   help="style the whole photo")  # fmt: skip
    setting_flag(p, "--db", field="db", help=DB_HELP)
    setting_flag(p, "--cache", field="renders_dir", help="the render cache")
    setting_flag(p, "--device", field="device")
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
