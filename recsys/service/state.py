"""What the service holds while it runs, split by job: the catalog (data and models), the photo embedder (a
bounded pool of embedding processes, off the event loop), the render queue, the admin jobs (index rebuilds and
retrains, each in a process of its own) and the event writer (group commit). Routes get one of them each
through `deps`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from common.errors import StylerecError
from recsys.service.admin_jobs import AdminJobs
from recsys.service.event_writer import EventWriter
from recsys.service.render_queue import RenderQueue
from recsys.settings import Settings
from recsys.shop.catalog import Catalog, open_catalog

log = logging.getLogger("stylerec.service")


class Busy(StylerecError):
    """Too much work of one kind in flight: answered 503 with Retry-After."""

    http_status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)


def _lower_priority() -> None:
    """Run this pool thread (and the compute threads it starts) at a lower CPU priority than the requests."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # Linux: per thread


# -- the embedding process: its own interpreter, so decoding and masking (which hold the GIL) never stall the
# web worker's event loop. These run in that process.
_encoder = None


def _start_embedding_process(embeddings: str, device: str | None, parent: int) -> None:
    """Entry point of an embedding process: ends with its web worker (`parent`), lower CPU priority, one compute
    thread, the catalog's encoder."""
    global _encoder
    from recsys.service.server import die_with_parent

    die_with_parent(parent)
    os.nice(10)
    import torch

    torch.set_num_threads(1)
    from recsys.shop.catalog import load_encoder

    _encoder = load_encoder(embeddings, device)


def _embed_in_process(image: bytes | str, max_pixels: int) -> np.ndarray:
    return _encoder.embed_image(image, max_pixels)


class Embedder:
    """Photos embedded by `workers` embedding processes (or threads, `embed_processes=False`); `queue` more may
    wait; beyond that `Busy` at once."""

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog, self.max_pixels, self.retry_after = catalog, settings.max_pixels, settings.retry_after
        if settings.embed_processes:
            context = multiprocessing.get_context("spawn")
            paths = catalog.paths
            self._pool = ProcessPoolExecutor(
                settings.embed_workers,
                context,
                _start_embedding_process,
                (str(paths.embeddings), paths.device, os.getpid()),
            )
        else:
            self._pool = ThreadPoolExecutor(settings.embed_workers, "embed", initializer=_lower_priority)
        self._slots = threading.BoundedSemaphore(settings.embed_workers + settings.embed_queue)
        self.warm = self._warm_up(settings.embed_workers) if catalog.style is not None else []

    def _warm_up(self, workers: int) -> list[Future]:
        """Start every embedding worker and load its encoder now, in the background (a photo each), so that the
        first shopper's upload is as fast as the next; an upload that comes first waits behind a warm-up."""
        from io import BytesIO

        from PIL import Image

        photo = BytesIO()
        Image.new("RGB", (64, 64), (200, 60, 60)).save(photo, "PNG")

        def report(future: Future) -> None:
            if future.exception() is not None:
                log.warning("warming the photo encoder failed: %s", future.exception())

        futures = [self.submit(photo.getvalue(), wait_for_slot=True) for _ in range(workers)]
        for future in futures:
            future.add_done_callback(report)
        return futures

    def _embed(self, image: bytes | str, max_pixels: int) -> np.ndarray:
        return self.catalog.embed_image(image, max_pixels)

    def submit(self, image: bytes | str, wait_for_slot: bool = False) -> Future:
        """Queue one photo (bytes or path); `Busy` when the pool and its queue are full (unless waiting)."""
        if not self._slots.acquire(blocking=wait_for_slot):
            raise Busy("too many photos being embedded right now; try again shortly", self.retry_after)
        work = _embed_in_process if isinstance(self._pool, ProcessPoolExecutor) else self._embed
        future = self._pool.submit(work, image, self.max_pixels)
        future.add_done_callback(lambda _: self._slots.release())
        return future

    async def embed(self, image: bytes | str) -> np.ndarray:
        """The style vector of a photo, computed off the event loop."""
        return await asyncio.wrap_future(self.submit(image))

    def close(self, wait: float = 5.0) -> None:
        """Stop the pool: queued photos are dropped, and embedding processes (busy or idle) are ended now, not
        left running after this process (`shutdown(wait=False)` alone lets a busy one run on)."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(wait)
            if process.is_alive():
                process.kill()


@dataclass
class ServiceState:
    """Opened once per worker process by the app's lifespan."""

    settings: Settings
    catalog: Catalog
    embedder: Embedder
    renders: RenderQueue
    jobs: AdminJobs
    events: EventWriter

    @classmethod
    def open(cls, settings: Settings) -> ServiceState:
        paths = settings.catalog_paths()
        catalog = open_catalog(paths, feed_cache=settings.feed_cache)
        job_paths = {k: None if v is None else str(v) for k, v in vars(paths).items()}
        jobs = AdminJobs(catalog.store, job_paths)
        renders = RenderQueue(catalog.store, settings)
        events = EventWriter(catalog.store, settings.event_sync)
        return cls(settings, catalog, Embedder(catalog, settings), renders, jobs, events)

    def close(self) -> None:
        self.jobs.close()
        self.events.close()
        self.embedder.close()
        self.catalog.close()
