"""What the service holds while it runs: the store, the recommender, the encoder (loaded on first use) and the
render queue. Renders run in a worker thread; a request never waits for one."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from recsys.hybrid import StyleSpace
from recsys.recommender import Recommender
from recsys.service.settings import Settings
from recsys.store import Store
from transfer.render import RenderOptions
from transfer.render_cache import RenderCache, cache_key, load_style

log = logging.getLogger("stylerec.service")


class ServiceState:
    """Opened once per process by the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db)
        self.style = self._style_space()
        self.recommender = Recommender(self.store, self.style, embed_image=self.embed_image)
        self.renders = RenderCache(settings.renders_dir)
        self._encoder = None
        self._encoder_lock = threading.Lock()
        self._render_pool = ThreadPoolExecutor(settings.render_workers, thread_name_prefix="render")
        self._renderers: dict[str, object] = {}
        self._jobs_lock = threading.Lock()
        self._pending: set[str] = set()

    def close(self) -> None:
        self._render_pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    # -- style vectors ---------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str | None:
        return self.style.model_id if self.style is not None else None

    def _style_space(self) -> StyleSpace | None:
        from transfer.store import EmbeddingStore

        if not (Path(self.settings.embeddings) / "encoder.json").exists():
            log.warning("no embedding store at %s: style features are off", self.settings.embeddings)
            return None
        vectors = EmbeddingStore.load(self.settings.embeddings)
        known = {item["item_id"] for item in self.store.items()}
        by_id = {item: vectors.vectors[r] for r, item in enumerate(vectors.ids) if item in known}
        by_id.update({k: v for k, v in self.store.item_vectors(vectors.model_id).items() if k in known})
        if not by_id:
            return None
        ids = sorted(by_id)
        return StyleSpace(ids, np.stack([by_id[i] for i in ids]), vectors.model_id)

    def encoder(self):
        """The catalog's own style encoder (same model id as its vectors), loaded on first use."""
        with self._encoder_lock:
            if self._encoder is None:
                from transfer.encoder import EncoderConfig, StyleEncoder
                from transfer.projection import LinearProjection
                from transfer.store import PROJECTION_FILE, EmbeddingStore

                store = EmbeddingStore.load(self.settings.embeddings)
                config = EncoderConfig.model_validate(store.encoder["config"])
                projection = LinearProjection.load(Path(self.settings.embeddings) / PROJECTION_FILE)
                self._encoder = StyleEncoder(config, projection, device=self.settings.device)
            return self._encoder

    def embed_image(self, image: bytes | str) -> np.ndarray:
        """The style vector of a photo (bytes or path); `ImageError` for what is not a usable image."""
        return self.encoder().embed_image(image, self.settings.max_pixels)

    def add_item_vector(self, item_id: str, image_path: str) -> None:
        """Background job after an admin upload: embed the photo and make the item findable by style."""
        if self.style is None:
            log.warning("item %s not embedded: no embedding store", item_id)
            return
        vector = self.embed_image(image_path)
        self.store.put_item_vector(item_id, self.style.model_id, vector)
        with self.recommender.lock:
            self.style.upsert(item_id, vector)
        log.info("item %s embedded and indexed", item_id)

    def remove_item(self, item_id: str) -> None:
        self.store.delete_item(item_id)
        self.store.delete_item_vectors(item_id)
        with self.recommender.lock:
            if self.style is not None:
                self.style.remove(item_id)
            self.recommender.ranker.categories.pop(item_id, None)

    def refresh_catalog(self) -> None:
        """Pick up item changes in the ranker's catalog (ids and categories)."""
        with self.recommender.lock:
            self.recommender.refresh_catalog()

    # -- renders ---------------------------------------------------------------------------------------------
    def render_key(self, image: str, style_image: str, options: RenderOptions) -> str:
        return cache_key(Path(image).read_bytes(), Path(style_image).read_bytes(), options)

    def submit_render(self, job_id: str, image: str, style_image: str, options: RenderOptions, url: str) -> None:
        """Queue a render unless the same one is already queued or running."""
        with self._jobs_lock:
            if job_id in self._pending:
                return
            self._pending.add(job_id)
        self.store.put_job(job_id, "render", "queued", {"image": image, "style": style_image, "url": url})
        self._render_pool.submit(self._render, job_id, image, style_image, options)

    def _render(self, job_id: str, image: str, style_image: str, options: RenderOptions) -> None:
        try:
            self.store.put_job(job_id, "render", "running")
            renderer = self.renderer(options)
            load_style(style_image)
            self.renders.render(image, style_image, options, renderer)
            self.store.put_job(job_id, "render", "done")
        except Exception as exc:  # a failed job is reported through its status, never lost
            log.exception("render %s failed", job_id)
            self.store.put_job(job_id, "render", "failed", result={"error": str(exc)})
        finally:
            with self._jobs_lock:
                self._pending.discard(job_id)

    def renderer(self, options: RenderOptions):
        """The renderer the options name (made once per kind); `RenderError` when it cannot be made."""
        from transfer.adain import renderer_for

        if options.renderer not in self._renderers:
            self._renderers[options.renderer] = renderer_for(options, self.settings.device)
        return self._renderers[options.renderer]
