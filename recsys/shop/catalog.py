"""One way to open a shop's catalog: the SQLite store, the embedding store and the encoder that made its
vectors, the style space over the persisted FAISS index, and the persisted collaborative filtering model.

`open_catalog` is what the CLI (`feed`, `serve`, `demo`), the service, the palette and the notebooks use, so they
all answer from the same data and the same models. The models are built once (by `stylerec demo` or the first
open of a new shop: `build_missing=True`) and saved as versions (`index.persistence.save_version`);
opening loads them and never retrains. Rebuilding the index or retraining CF writes a new version and swaps it
in while requests go on. Events newer than the saved CF model are folded in from the store when it opens.

`catalog_style_space` (below) is the offline path: a catalog folder's items embedded into an embedding store.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from common.errors import Conflict, NoSuchFile, NothingToTrain
from index.persistence import current_version, save_version
from recsys.batch.bundle import tables_for
from recsys.models.cf import CFConfig, CollaborativeFilter
from recsys.models.hybrid import StyleSpace
from recsys.shop.recommender import Recommender
from recsys.store.data_io import read_catalog
from recsys.store.sqlite import NotFound, Store

if TYPE_CHECKING:
    from index.style_index import StyleIndex as StyleIndex
    from transfer.adain import export_weights as export_weights
    from transfer.adain import renderer_for as renderer_for
    from transfer.adain import train_decoder as train_decoder
    from transfer.embed import embed_folder as embed_folder
    from transfer.encoder import EncoderConfig as EncoderConfig
    from transfer.fast import FastRenderer as FastRenderer
    from transfer.images import ImageError as ImageError
    from transfer.images import load_image as load_image
    from transfer.render import RenderError as RenderError
    from transfer.render import RenderOptions as RenderOptions
    from transfer.render_cache import RenderCache as RenderCache
    from transfer.render_cache import cache_key as cache_key
    from transfer.render_cache import load_style as load_style
    from transfer.store import StoreError as StoreError
    from transfer.style_eval import style_eval as style_eval

log = logging.getLogger(__name__)

CF_DIR = "cf"
TRAINED_FILE = "trained.json"
MODEL_VERSIONS_KEPT = 3  # saved CF versions kept, the current one included (readers may still be loading older ones)
GENERATION = "catalog_generation"  # meta key: bumped by every change other processes must reload for


@dataclass(frozen=True)
class CatalogPaths:
    """Where a shop's data and models live (the configured ones: `recsys.settings.Settings.catalog_paths()`)."""

    db: Path | str  # a path (SQLite) or a postgresql:// URL (`recsys.store.opener`)
    embeddings: Path
    index: Path
    models: Path
    device: str | None = None


@dataclass
class Versions:
    """What a catalog serves: the index and CF versions on disk (None: built in memory, not persisted)."""

    index: str | None = None
    index_spec: str | None = None
    cf: str | None = None
    ranker: str | None = None
    generation: str | None = None
    extra: dict = field(default_factory=dict)


class FeedCache:
    """Feed answers kept until they could change: a shopper's entries go when they have new events, all of them
    when the models or the catalog are swapped (the recommender's objects are then new). A feed is a
    function of the served models and the shopper's own history only, so an answer from here is the one the
    ranking would give again. Bounded: the oldest entries go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[tuple, object] = {}
        self._users: dict[str, set[tuple]] = {}
        self._epoch = 0  # how many times some shopper's entries were dropped
        self._token: tuple = ()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, token: tuple, key: tuple):
        """The answer kept for `key` (its first element: the shopper) under these models; None if none. Take
        `epoch()` before computing an answer to `put`."""
        with self._lock:
            if not _same(token, self._token):
                self._entries.clear()
                self._users.clear()
                self._token = token
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def epoch(self) -> int:
        with self._lock:
            return self._epoch

    def put(self, token: tuple, key: tuple, value: object, epoch: int) -> None:
        """Keep an answer computed under `token` after `epoch()` was taken; not kept when the models or some
        shopper's events changed meanwhile (it may be stale; on the event loop nothing changes meanwhile, only a
        reload on another thread may)."""
        with self._lock:
            if not _same(token, self._token) or self._epoch != epoch or self.size <= 0:
                return
            while len(self._entries) >= self.size:
                old = next(iter(self._entries))
                del self._entries[old]
                keys = self._users.get(old[0], set())
                keys.discard(old)
                if not keys:
                    self._users.pop(old[0], None)
            self._entries[key] = value
            self._users.setdefault(key[0], set()).add(key)

    def forget(self, users: list[str]) -> None:
        with self._lock:
            self._epoch += 1
            for user in users:
                for key in self._users.pop(user, ()):
                    self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._users.clear()


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class Catalog:
    """A shop opened once: `store`, `style` (None without vectors), `recommender`, the encoder on first use.
    `feed_cache`: how many feed answers `cached_feed` keeps (0: none)."""

    def __init__(self, paths: CatalogPaths, store: Store, build_missing: bool = True, feed_cache: int = 0) -> None:
        self.paths, self.store = paths, store
        self.build_missing = build_missing
        self.feeds = FeedCache(feed_cache)
        self.versions = Versions()
        self._encoder = None
        self._vectors = None  # (the embedding store's file stats, the store read): `_embedding_store`
        self._encoder_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._catch_up_lock = threading.Lock()
        self._last_event_id = 0
        self._data_version: int | None = None  # the store's data version when `catch_up` last looked
        self._stale = False  # another process changed the models: `reload` is due
        self._unfolded: set[str] = set()  # shoppers with events not folded into CF yet (`_refresh_users`)
        self._unfolded_lock = threading.Lock()
        style, cf, self.versions = self._load_models()
        tables = tables_for(self.paths.models, self._trained_through)  # `stylerec train`'s, when of this CF
        self.recommender = Recommender(store, style, cf, embed_image=self.embed_image, tables=tables)
        # Popularity is part of the model version: counted over the events CF was trained on, so every process
        # opening this version ranks alike.
        ranker, self.versions.ranker = self._read_ranker()
        self.recommender.use_models(style, cf, self._trained_through, tables, ranker=ranker)
        self._fold_in_since(self._trained_through)

    def _read_ranker(self):
        """(the feed's learned ranker (`recsys.models.ranker`): the current version in <models>/ranker, its version);
        (None, None) without one: the blend."""
        from recsys.models.ranker import RANKER_DIR, LearnedRanker

        folder = Path(self.paths.models) / RANKER_DIR
        version = current_version(folder)
        return (None, None) if version is None else (LearnedRanker.load(folder / version), version)

    # -- opening ---------------------------------------------------------------------------------------
    @property
    def style(self) -> StyleSpace | None:
        return self.recommender.style

    @property
    def model_id(self) -> str | None:
        return self.style.model_id if self.style is not None else None

    def _embedding_store(self):
        """The embedding store, read again only when one of its files changed since the last read (a reload
        after an item or a model change then costs no re-read of every vector)."""
        from transfer.store import EmbeddingStore

        folder = Path(self.paths.embeddings)
        if not (folder / "encoder.json").exists():
            return None
        files = sorted(p for p in folder.iterdir() if p.is_file())
        key = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        cached = self._vectors
        if cached is None or cached[0] != key:
            self._vectors = (key, EmbeddingStore.load(folder))
        return self._vectors[1]

    def _load_models(self) -> tuple[StyleSpace | None, CollaborativeFilter | None, Versions]:
        versions = Versions(generation=self.store.meta(GENERATION))
        style = self._load_style(versions)
        cf = self._load_cf(versions)
        return style, cf, versions

    def _load_style(self, versions: Versions) -> StyleSpace | None:
        """The catalog's vectors (embedding store + vectors of items added through the API) over the persisted
        index; the index is built and saved when missing (`build_missing`)."""
        from index.persistence import CURRENT, IndexFileError
        from index.style_index import StyleIndex

        vectors = self._embedding_store()
        if vectors is None:
            log.warning("no embedding store at %s: style features are off", self.paths.embeddings)
            return None
        known = set(self.store.item_ids())
        by_id = {item: vectors.vectors[r] for r, item in enumerate(vectors.ids) if item in known}
        added = {k: v for k, v in self.store.item_vectors(vectors.model_id).items() if k in known}
        by_id.update(added)
        if not by_id:
            return None
        ids = sorted(by_id)
        matrix = np.stack([by_id[i] for i in ids])
        index, index_dir = None, Path(self.paths.index)
        if (index_dir / CURRENT).exists():
            version = current_version(index_dir)
            try:
                index = StyleIndex.load(index_dir, model_id=vectors.model_id)
                versions.index = version
            except IndexFileError as exc:
                log.warning("not using the index in %s: %s", index_dir, exc)
        if index is None and self.build_missing and not (index_dir / CURRENT).exists():
            # the first open of a new shop: nobody serves an index yet, so nobody is told (store=None)
            index, versions.index, _ = build_index(vectors.vectors, vectors.ids, index_dir, vectors.model_id)
        if index is None:  # an index of another model, or a damaged one: serve from memory, leave the files
            index = StyleIndex.build(matrix, ids, model_id=vectors.model_id)
        _reconcile(index, ids, matrix, added)
        versions.index_spec = index.spec
        return StyleSpace(ids, matrix, vectors.model_id, index=index)

    def _load_cf(self, versions: Versions) -> CollaborativeFilter | None:
        """The persisted CF model (trained and saved first when missing and `build_missing`)."""
        folder = Path(self.paths.models) / CF_DIR
        version = current_version(folder)
        if version is None:
            self._trained_through = self.store.last_event_id()
            if not self.build_missing or self.store.count_events() == 0:
                return None
            return self._train_and_save_cf(versions)
        cf = CollaborativeFilter.load(folder / version)
        self._trained_through = json.loads((folder / version / TRAINED_FILE).read_text())["last_event_id"]
        versions.cf = version
        return cf

    def _train_and_save_cf(self, versions: Versions, config: CFConfig | None = None) -> CollaborativeFilter:
        last_event_id = self.store.last_event_id()
        interactions = self.store.interactions()
        interactions = interactions[interactions["id"] <= last_event_id]
        cf = CollaborativeFilter(config or CFConfig()).fit(interactions)

        def write(folder: Path) -> None:
            cf.save(folder)
            trained = {"last_event_id": last_event_id, "events": len(interactions), "trained": time.time()}
            (folder / TRAINED_FILE).write_text(json.dumps(trained))

        versions.cf = save_version(Path(self.paths.models) / CF_DIR, write, keep=MODEL_VERSIONS_KEPT)
        self._trained_through = last_event_id
        log.info("collaborative filtering trained on %d events, saved as %s", len(interactions), versions.cf)
        return cf

    # -- events from any process -----------------------------------------------------------------------
    def _fold_in_since(self, event_id: int) -> None:
        """After models were (re)loaded or trained on the events up to `event_id`: the shoppers with later events
        are folded in before their next ranking, and nobody else (the models know the rest)."""
        with self._catch_up_lock:
            users, self._last_event_id = self.store.users_with_events_since(event_id)
            with self._unfolded_lock:
                self._unfolded = set(users)
            self.feeds.forget(users)

    def _refresh_users(self, users: list[str]) -> None:
        """These shoppers have new events: their kept feeds go, and their histories are folded into CF before
        anything is next ranked for them (`_folded`). Lazily: a shopper posting many events between two of their
        feeds costs one fold-in (which reads their whole history), not one per event in every worker process."""
        with self._unfolded_lock:
            self._unfolded.update(users)
        self.feeds.forget(users)

    def _folded(self, user_id: str | None) -> None:
        """Fold the shopper's new events into CF now, if they have any not folded in yet."""
        if user_id is None or user_id not in self._unfolded:
            return
        with self._unfolded_lock:
            self._unfolded.discard(user_id)
        self.recommender.refresh_users([user_id])

    def catch_up(self) -> bool:
        """Fold in the events other processes recorded since the last call (so a shopper's next answer
        includes their event, whichever process took it); True when another process changed the catalog (items,
        vectors, index or model versions: a new generation) and `reload` is due. When nothing was committed to
        the store meanwhile this is one `PRAGMA data_version`: no table is read."""
        with self._catch_up_lock:
            version = self.store.data_version()
            if version != self._data_version:
                self._data_version = version  # read first: a commit after this changes it again
                users, last = self.store.users_with_events_since(self._last_event_id)
                if users:
                    self._last_event_id = last
                    self._refresh_users(users)
                self._stale = self.store.meta(GENERATION) != self.versions.generation
            return self._stale

    def sync(self) -> None:
        """Catch up with other processes: their events folded in, their model changes reloaded."""
        if self.catch_up():
            self.reload(only_if_changed=True)

    def reload(self, only_if_changed: bool = False) -> None:
        """Load the current models and vectors again and swap them in (requests go on meanwhile)."""
        with self._reload_lock:
            if only_if_changed and self.store.meta(GENERATION) == self.versions.generation:
                self._stale = False
                return  # another thread has just reloaded
            style, cf, versions = self._load_models()
            tables = tables_for(self.paths.models, self._trained_through)
            ranker, versions.ranker = self._read_ranker()
            # one swap: a request is answered by the old models or the new ones, never a mix of them
            self.recommender.use_models(style, cf, self._trained_through, tables, ranker=ranker)
            self.versions = versions
            self._stale = False
            self._fold_in_since(self._trained_through)

    def _changed(self) -> None:
        """Tell other processes to reload (they check the generation in `sync`), and note we are current."""
        self.versions.generation = bump_generation(self.store)

    # -- the encoder -----------------------------------------------------------------------------------
    def encoder(self):
        """The style encoder that made the catalog's vectors (same model id), loaded on first use."""
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = load_encoder(self.paths.embeddings, self.paths.device)
            return self._encoder

    def embed_image(self, image: bytes | str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
        """The style vector of a photo (bytes or path) in the catalog's space; `ImageError` for a bad image."""
        encoder = self.encoder()
        return encoder.embed_image(image) if max_pixels is None else encoder.embed_image(image, max_pixels)

    # -- what the service and the CLI ask -------------------------------------------------------------
    def item(self, item_id: str) -> dict:
        """One item (`NotFound` for an unknown id)."""
        return self.store.item(item_id)

    def items(self, category: str | None = None, limit: int | None = None, offset: int = 0, search=None) -> list:
        return self.store.items(category, limit, offset, search)

    def count_items(self, category: str | None = None, search: str | None = None) -> int:
        return self.store.count_items(category, search)

    def items_by_id(self, item_ids: list[str]) -> dict[str, dict]:
        return self.store.items_by_id(item_ids)

    def shoppers(self, limit: int | None = None) -> list[str]:
        """The shop's own shoppers (from its imported data), for pickers."""
        return self.store.shoppers(limit)

    def feed(self, user_id: str, k: int = 10, categories: set[str] | None = None, alpha: float | None = None):
        """A shopper's personalised feed (the same list from the CLI and the service)."""
        self._folded(user_id)
        return self.recommender.feed(user_id, k, categories, alpha)

    def cached_feed(
        self,
        user_id: str,
        k: int,
        categories: set[str] | None,
        alpha: float | None,
        render: Callable[[list], object],
    ):
        """`render(feed(...))`, kept in the feed cache until the shopper's events or the models change (the
        service keeps the response body: a repeat costs a lookup)."""
        r = self.recommender
        token = (r.pipeline, r.ranker, r.style, r.cf)
        key = (user_id, k, frozenset(categories) if categories else None, alpha)
        found = self.feeds.get(token, key)
        if found is None:
            epoch = self.feeds.epoch()
            found = render(self.feed(user_id, k, categories, alpha))
            self.feeds.put(token, key, found, epoch)
        return found

    def similar(
        self,
        item_id: str,
        k: int = 10,
        user_id: str | None = None,
        categories: set[str] | None = None,
        facet: str | float | None = None,
    ):
        """Items in the style of an item (`NotFound` for an unknown id or one without a style vector); `facet`:
        "pattern", "colour", "both" or a pattern weight in [0, 1]."""
        self._folded(user_id)
        return self.recommender.similar_items(item_id, k, user_id, categories, facet)

    def shop_this_style(
        self,
        vector: np.ndarray,
        k: int = 10,
        user_id: str | None = None,
        categories: set[str] | None = None,
        facet: str | float | None = None,
    ):
        """Items in the style of a style vector (from `embed_image`)."""
        if self.style is None:
            raise NotFound("the catalog has no style vectors yet")
        self._folded(user_id)
        return self.recommender.shop_this_style(vector, k, user_id, categories, facet)

    def preferred_styles(self, user_id: str, k: int = 3) -> list[dict]:
        self._folded(user_id)
        return self.recommender.preferred_styles(user_id, k)

    def in_style(self, style_name: str, user_id: str | None = None, k: int = 10, facet: str | float | None = None):
        """Items near a palette style (its pattern unless `facet` says otherwise), without what the shopper
        already has, re-ordered for them within the style's nearest."""
        self._folded(user_id)
        return self.recommender.in_style(style_name, user_id, k, facet or "pattern")

    def render_settings(self, user_id: str) -> dict:
        """A shopper's remembered render adjustments ({} when none)."""
        return self.store.render_settings(user_id)

    def put_render_settings(self, user_id: str, adjustments: dict) -> None:
        self.store.put_render_settings(user_id, adjustments)

    def record_event(
        self, user_id: str, item_id: str, event: str, timestamp: float | None = None, client_event_id=None
    ) -> dict:
        """Store an event durably (once per `client_event_id`) and fold it in; returns the stored event.
        The service does it in three steps, to commit off its event loop: `check_event`, its `EventWriter`,
        `event_recorded`."""
        event_id = self.store.add_event(user_id, item_id, event, timestamp, client_event_id=client_event_id)
        return self.event_recorded(event_id)

    def check_event(self, user_id: str, item_id: str, event: str, client_event_id=None) -> int | None:
        """Validate an event (`DataError`, `NotFound`); the first event's id when `client_event_id` repeats one."""
        return self.store.check_event(user_id, item_id, event, client_event_id)

    def event_recorded(self, event_id: int) -> dict:
        """Fold a committed event's shopper into CF (their whole history: idempotent); returns the stored event."""
        stored = self.store.event(event_id)
        self._refresh_users([stored["user_id"]])
        return stored

    def styles(self) -> list[dict]:
        """The palette: every named style (name, image, model_id, vector)."""
        return self.store.styles()

    def record_style_event(
        self, user_id: str, style: str, event: str, timestamp: float | None = None, client_event_id=None
    ) -> dict:
        """Store a shopper's feedback on a palette style durably (once per `client_event_id`); returns it."""
        if style not in {s["name"] for s in self.store.styles()}:
            raise NotFound(f"unknown style {style!r}")
        return self.store.add_style_event(user_id, style, event, timestamp, client_event_id)

    def health(self) -> dict:
        # The latest event's id, not COUNT(*): a count reads the whole table (~5-20 ms at a million events).
        return {"items": self.store.count_items(), "events": self.store.last_event_id(), **self.info()}

    # -- changes ---------------------------------------------------------------------------------------
    def add_item_vector(self, item_id: str, vector: np.ndarray) -> None:
        """Make an item findable by style (its vector kept in the store, so every process and restart has it)."""
        if self.style is None:
            log.warning("item %s not indexed: the catalog has no style vectors", item_id)
            return
        self.store.put_item_vector(item_id, self.style.model_id, vector)
        with self.recommender.lock:
            self.style.upsert(item_id, vector)
            self.recommender.refresh_catalog()
        self._changed()

    def remove_item(self, item_id: str) -> None:
        """Delete an item and its vectors (NotFound for an unknown id)."""
        if not self.store.delete_item(item_id):
            raise NotFound(f"unknown item id {item_id!r}")
        self.store.delete_item_vectors(item_id)
        with self.recommender.lock:
            if self.style is not None:
                self.style.remove(item_id)
            self.recommender.refresh_catalog()
        self._changed()

    def put_item(
        self, item_id: str, title: str = "", category: str = "", attributes: dict | None = None, image=None
    ) -> dict:
        """Add or replace an item (here and, through the generation, in other processes); returns it."""
        self.store.upsert_item(item_id, title, category, attributes, image)
        with self.recommender.lock:
            self.recommender.refresh_catalog()
        self._changed()
        return self.store.item(item_id)

    def put_style(self, name: str, image: str, vector: np.ndarray | None) -> None:
        """Add or replace a palette style (its vector from `embed_image`, in this catalog's model)."""
        self.store.put_style(name, image, vector, self.model_id if vector is not None else None)

    def delete_style(self, name: str) -> None:
        if not self.store.delete_style(name):
            raise NotFound(f"unknown style {name!r}")

    def rebuild_index(self, spec: str = "auto") -> dict:
        """Build the style index over the current vectors, save it as a new version, swap it in and tell the
        other processes (`build_index`)."""
        style = self.style
        if style is None:
            raise NotFound("the catalog has no style vectors to index")
        fresh, version, generation = build_index(
            style.vectors, style.ids, self.paths.index, style.model_id, spec, self.store
        )
        style.index.replace_with(fresh)
        style.neighbours = None  # the batch's lists answered for the old index: the style source searches
        self.feeds.clear()  # style neighbours come from the index
        self.versions.index, self.versions.index_spec = version, fresh.spec
        self.versions.generation = generation
        return {**style.index.info(), "version": version}

    def retrain_cf(self, config: CFConfig | None = None) -> dict:
        """Train CF on every stored event, save it as a new version and swap it in."""
        if self.store.count_events() == 0:
            raise NothingToTrain("no events to train collaborative filtering on")
        previous = self.recommender.cf.config if self.recommender.cf is not None else None
        cf = self._train_and_save_cf(self.versions, config or previous)
        self.recommender.use_models(self.style, cf, self._trained_through)
        self._fold_in_since(self._trained_through)
        self._changed()
        return {"users": cf.user_count, "items": len(cf.item_ids), "version": self.versions.cf}

    def retrain_ranker(self, config=None) -> dict:
        """Train the feed's ranker (`recsys.models.ranker.LearnedRanker`) on every stored event and, when there was
        enough data to learn, save it as a new version in <models>/ranker and serve it; else the feed stays on
        the hand-set blend (the answer says why). `config`: a `RankerConfig` (default: the served one's)."""
        from recsys.models.ranker import RANKER_DIR

        if self.store.count_events() == 0:
            raise NothingToTrain("no events to train the feed's ranker on")
        served = self.recommender.learned
        ranker = self.recommender.train_ranker(config or (served.config if served is not None else None))
        if not ranker.trained:
            if served is not None:  # keep serving the saved ranker rather than dropping to the blend
                self.recommender.use_ranker(served)
            return {"learned": False, "version": self.versions.ranker, "training": ranker.training}
        self.versions.ranker = save_version(Path(self.paths.models) / RANKER_DIR, ranker.save, MODEL_VERSIONS_KEPT)
        self._changed()
        log.info("feed ranker trained on %s, saved as %s", ranker.training, self.versions.ranker)
        return {"learned": True, "version": self.versions.ranker, "training": ranker.training}

    # -- information ------------------------------------------------------------------------------------
    def info(self) -> dict:
        """What /health shows about the models being served."""
        style, cf = self.style, self.recommender.cf
        return {
            "model_id": self.model_id,
            "style_vectors": len(style.ids) if style is not None else 0,
            "index_version": self.versions.index,
            "index_spec": self.versions.index_spec,
            "index_device": style.index.info()["device"] if style is not None else None,
            "cf_version": self.versions.cf,
            "cf_users": cf.user_count if cf is not None else 0,
            "cf_items": len(cf.item_ids) if cf is not None else 0,
            "feed_model": self.recommender.feed_model,
            "ranker_version": self.versions.ranker,
        }

    def close(self) -> None:
        self.store.close()


def load_encoder(embeddings_dir: str | os.PathLike, device: str | None = None):
    """The style encoder that made an embedding store's vectors (its config and fitted projection);
    `StoreError` when there is no store, or the encoder code no longer makes the same model id."""
    from transfer.encoder import EncoderConfig, StyleEncoder
    from transfer.projection import LinearProjection
    from transfer.store import PROJECTION_FILE, EmbeddingStore, StoreError

    if not (Path(embeddings_dir) / "encoder.json").exists():
        raise StoreError(f"no embedding store at {embeddings_dir}: cannot embed photos")
    store = EmbeddingStore.load(embeddings_dir)
    config = EncoderConfig.stored(store.encoder["config"])
    encoder = StyleEncoder(config, LinearProjection.load(Path(embeddings_dir) / PROJECTION_FILE), device=device)
    if encoder.model_id != store.model_id:
        raise StoreError(
            f"{embeddings_dir}: its vectors ({store.model_id}) come from another encoder version or projection; "
            "re-embed it with --refit"
        )
    return encoder


class BuiltIndex(NamedTuple):
    """What `build_index` made: the index, its saved version's name and the new generation (None: none told)."""

    index: StyleIndex
    version: str
    generation: str | None


def bump_generation(store: Store) -> str:
    """Start a new catalog generation in `store` and return it: every process serving the shop reloads its
    models and index at its next `Catalog.sync` (the one way to tell running workers)."""
    generation = f"{time.time():.6f}-{os.getpid()}"
    store.set_meta(GENERATION, generation)
    return generation


def build_index(
    vectors: np.ndarray,
    ids: list[str],
    index_dir: str | os.PathLike,
    model_id: str,
    spec: str = "auto",
    store: Store | str | os.PathLike | None = None,
) -> BuiltIndex:
    """The one path that builds the FAISS style index (`stylerec index build`, `stylerec demo`, the admin
    rebuild job, a new shop's first open): build it over `vectors` (rows named by `ids`), save it as a new
    version in `index_dir` (crash-safe, `index.persistence`) and, when `store` (a Store, or a store's path or
    URL) is given, bump the catalog generation so that running workers load the new version."""
    from index.style_index import StyleIndex

    if len(ids) == 0:
        raise Conflict("no vectors to index (embed images first)")
    index = StyleIndex.build(vectors, list(ids), spec=spec, model_id=model_id)
    version = index.save(index_dir).name
    generation = None
    if isinstance(store, str | os.PathLike):
        from recsys.store.opener import open_store

        opened = open_store(store)
        try:
            generation = bump_generation(opened)
        finally:
            opened.close()
    elif store is not None:
        generation = bump_generation(store)
    return BuiltIndex(index, version, generation)


def build_index_from_embeddings(
    embeddings_dir: str | os.PathLike,
    index_dir: str | os.PathLike,
    spec: str = "auto",
    db: str | os.PathLike | None = None,
) -> BuiltIndex:
    """`build_index` over every vector of an embedding store (`stylerec index build`); `db`: the shop's store
    whose running workers must load the new index (skipped when there is no store there yet)."""
    from recsys.store.opener import store_exists
    from transfer.store import EmbeddingStore

    vectors = EmbeddingStore.load(embeddings_dir)
    if len(vectors) == 0:
        raise Conflict(f"{embeddings_dir} holds no vectors to index (embed images into it first)")
    tell = db if db is not None and store_exists(db) else None
    return build_index(vectors.vectors, vectors.ids, index_dir, vectors.model_id, spec, tell)


def open_catalog(paths: CatalogPaths | None = None, build_missing: bool = True, feed_cache: int = 0) -> Catalog:
    """Open a shop (see the module docstring). The SQLite store must exist (`stylerec import` or `demo`).
    `feed_cache`: feed answers kept (the service's; see `FeedCache`). Without `paths`: the configured ones
    (`recsys.settings.Settings`)."""
    if paths is None:
        from recsys.settings import Settings

        paths = Settings().catalog_paths()
    from recsys.store.opener import open_store, store_exists

    if not store_exists(paths.db):
        raise NoSuchFile(f"no store at {paths.db} (run `stylerec import` or `stylerec demo` first)")
    store = open_store(paths.db)
    try:
        return Catalog(paths, store, build_missing, feed_cache)
    except BaseException:
        store.close()
        raise


def _reconcile(index, ids: list[str], matrix: np.ndarray, added: dict[str, np.ndarray]) -> None:
    """Make a loaded index hold exactly the catalog's items: drop deleted ones, add items added since."""
    wanted = set(ids)
    stale = [i for i in index.item_ids() if i not in wanted]
    if stale:
        index.remove(stale)
    row = {item: n for n, item in enumerate(ids)}
    missing = [i for i in ids if i not in index or i in added]
    if missing:
        index.upsert(matrix[[row[i] for i in missing]], missing)


# -- offline: a catalog folder embedded into an embedding store ---------------------------------------------
def default_embeddings_dir(catalog_dir: str | os.PathLike) -> Path:
    """Where the style vectors of a catalog are kept unless told otherwise: var/embeddings/<folder name>."""
    return Path("var") / "embeddings" / Path(catalog_dir).resolve().name


def catalog_style_space(
    catalog_dir: str | os.PathLike,
    embeddings_dir: str | os.PathLike | None = None,
    catalog: pd.DataFrame | None = None,
    progress: bool = False,
    device: str | None = None,
) -> StyleSpace | None:
    """Style vectors of a catalog's items, keyed by catalog item id. Images not embedded yet are embedded
    (incrementally) into `embeddings_dir`; None when the catalog has no images."""
    from transfer.embed import embed_folder

    catalog = read_catalog(catalog_dir) if catalog is None else catalog
    images = catalog.dropna(subset=["image"])
    if len(images) == 0:
        return None
    image_root = Path(catalog_dir) / "images"
    if not image_root.is_dir():
        image_root = Path(os.path.commonpath(list(images["image"])))
    store, _ = embed_folder(
        image_root, embeddings_dir or default_embeddings_dir(catalog_dir), progress=progress, device=device
    )
    by_path = {str(Path(p).resolve()): item for item, p in zip(images["item_id"], images["image"], strict=False)}
    known = set(catalog["item_id"])
    ids, rows = [], []
    for row, (stem, path) in enumerate(zip(store.ids, store.paths, strict=False)):
        item = by_path.get(str(Path(path).resolve())) or (stem if stem in known else None)
        if item is not None:
            ids.append(item)
            rows.append(row)
    if not ids:
        return None
    return StyleSpace(ids, np.asarray(store.vectors[rows]), model_id=store.model_id)


# -- the one door from the CLI and the service to transfer/ and index/ ---------------------------------------
# The CLI (`recsys.cli`) and the service (`recsys.service`) import these names from here, never from
# `transfer` or `index` (tests/test_layering.py checks it). They are loaded on first use, so that opening the
# shop does not load torch for a command that never renders or embeds.
DOOR: dict[str, str] = {
    "StyleIndex": "index.style_index",
    "export_weights": "transfer.adain",
    "renderer_for": "transfer.adain",
    "train_decoder": "transfer.adain",
    "embed_folder": "transfer.embed",
    "EncoderConfig": "transfer.encoder",
    "FastRenderer": "transfer.fast",
    "load_image": "transfer.images",
    "RenderError": "transfer.render",
    "RenderOptions": "transfer.render",
    "RenderCache": "transfer.render_cache",
    "cache_key": "transfer.render_cache",
    "load_style": "transfer.render_cache",
    "style_eval": "transfer.style_eval",
}


def __getattr__(name: str):
    """The names in `DOOR`, imported from their `transfer`/`index` module when first asked for."""
    if name in DOOR:
        import importlib

        value = getattr(importlib.import_module(DOOR[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def index_info(index_dir: str | os.PathLike) -> dict:
    """What `stylerec index info` shows: the saved index's spec, size, model and search parameters."""
    from index.style_index import StyleIndex

    return StyleIndex.load(index_dir).info()
