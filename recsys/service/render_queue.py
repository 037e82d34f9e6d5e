"""The render queue: products re-rendered in palette styles, as jobs in the store's job queue (SQLite or PostgreSQL).

- `RenderQueue` is the web side: a cached render comes back at once; otherwise a job is queued, deduplicated
  (the same render is one job), bounded (`render_queue` jobs waiting in all, `render_per_client` per client:
  `QueueFull`, answered 429 + Retry-After), and anonymous clients may only ask for a few strengths.
- `RenderWorker` runs the jobs one at a time in its own low-priority process (`python -m
  recsys.service.render_queue`, started by `stylerec serve`), so renders never take the web workers' CPU time
  first. Jobs live in the store's queue and run through `JobRunner` (the runner admin jobs use too): after a
  restart, or a host's death on a shared store, the jobs left running are queued again, or failed with the
  reason once they have been interrupted `render_attempts` times.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from recsys.service.job_runner import JobRunner
from recsys.settings import Settings
from recsys.shop.catalog import RenderCache, RenderOptions, cache_key
from recsys.store.opener import open_store
from recsys.store.sqlite import NotFound, Store
from recsys.style.render_defaults import default_renderer

log = logging.getLogger("stylerec.renders")
KIND = "render"


class RenderQueue:
    """What the routes use: palette lookups, the cache, queueing and job status."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.cache = RenderCache(settings.renders_dir, settings.render_cache_bytes)
        self._fast = None  # the fast renderer (ONNX sessions), made on the first fast render
        self._fast_lock = threading.Lock()

    def palette(self) -> list[dict]:
        return [
            {
                "name": s["name"],
                "image_url": f"/styles/{s['name']}/image",
                "has_vector": s["vector"] is not None,
                "renderer": default_renderer(s["name"]),
            }
            for s in self.store.styles()
        ]

    def style_image(self, name: str) -> str:
        """The image file of a palette style (only palette styles: never a path a client names)."""
        for style in self.store.styles():
            if style["name"] == name and Path(style["image"]).is_file():
                return style["image"]
        raise NotFound(f"unknown style {name!r}")

    def options(self, renderer: str, strength: float, preserve_colour: bool, admin: bool) -> RenderOptions:
        """Render options from a request; anonymous clients get the palette's few strengths only."""
        if not admin and not any(abs(strength - s) < 1e-9 for s in self.settings.render_strengths):
            from recsys.store.data_io import DataError

            allowed = ", ".join(f"{s:g}" for s in self.settings.render_strengths)
            raise DataError(f"strength must be one of {allowed} (other strengths need the admin API key)")
        return RenderOptions(
            renderer=renderer,
            size=self.settings.render_size,
            steps=self.settings.render_steps,
            preserve_colour=preserve_colour,
            strength=strength,
        )

    def fast_options(self, preserve_colour: bool, adjustments: dict) -> RenderOptions:
        """Options of a fast render: any strength and adjustments (a render costs a fraction of a second)."""
        return RenderOptions(
            renderer="fast", size=self.settings.render_size, preserve_colour=preserve_colour, **adjustments
        )

    def render_now(self, item_id: str, blend: list[tuple[str, float]], options: RenderOptions) -> bytes:
        """A fast render of an item in a palette style or a blend [(name, weight)], made here and now (cached)."""
        image = self.store.item(item_id)["image"]
        if not image or not Path(image).is_file():
            raise NotFound(f"item {item_id!r} has no image to render")
        references = [(self.style_image(name), weight) for name, weight in blend]
        with self._fast_lock:
            if self._fast is None:
                from recsys.shop.catalog import FastRenderer

                self._fast = FastRenderer()
        return self.cache.render(image, references, options, self._fast)[0]

    def request(self, item_id: str, style: str, options: RenderOptions, client: str, url: str) -> bytes | str:
        """The JPEG when this render is cached, else the id of its (new or already pending) job."""
        image = self.store.item(item_id)["image"]
        if not image or not Path(image).is_file():
            raise NotFound(f"item {item_id!r} has no image to render")
        reference = self.style_image(style)
        key = cache_key(Path(image).read_bytes(), Path(reference).read_bytes(), options)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        job_id = key[:32]
        payload = {"image": image, "style": reference, "options": options.model_dump(), "url": url}
        s = self.settings
        self.store.enqueue_job(job_id, KIND, payload, client, self.queue_bound(client), s.render_per_client)
        return job_id

    def queue_bound(self, client: str) -> int:
        """Renders queued or running at most when `client` asks: admins may fill the whole queue, others all
        but the share kept for admins (`render_admin_share`)."""
        if client == "admin":
            return self.settings.render_queue
        return max(1, self.settings.render_queue - int(self.settings.render_queue * self.settings.render_admin_share))

    def job(self, job_id: str) -> dict:
        found = self.store.job(job_id)
        result = found["result"] or {}
        return {
            "id": found["id"],
            "status": found["status"],
            "error": result.get("error"),
            "result_url": found["payload"].get("url") if found["status"] == "done" else None,
        }

    def render_settings(self, user_id: str | None) -> dict:
        """A shopper's remembered render adjustments ({} for none, or no shopper)."""
        return self.store.render_settings(user_id) if user_id else {}

    def pending(self) -> int:
        return self.store.count_jobs(KIND, "queued") + self.store.count_jobs(KIND, "running")


class RenderWorker:
    """Runs queued renders, one at a time, in the process that calls `run`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = open_store(settings.db)
        self.cache = RenderCache(settings.renders_dir, settings.render_cache_bytes)
        self._renderers: dict[str, object] = {}
        self.runner = JobRunner(self.store, KIND, self._render, settings.render_attempts)

    def recover(self) -> tuple[int, int]:
        """Jobs a previous worker left running: queued again, or failed after too many interruptions."""
        return self.runner.recover()

    def run_once(self) -> bool:
        """Run the oldest queued job; False when there was none."""
        return self.runner.run_once() is not None

    def _render(self, job: dict) -> None:
        payload = job["payload"]
        options = RenderOptions.model_validate(payload["options"])
        self.cache.render(payload["image"], payload["style"], options, self._renderer(options))

    def _renderer(self, options: RenderOptions):
        from recsys.shop.catalog import renderer_for

        if options.renderer not in self._renderers:
            self._renderers[options.renderer] = renderer_for(options, self.settings.device)
        return self._renderers[options.renderer]

    def run(self, stop: threading.Event, poll: float = 0.5) -> None:
        """Recover, then run jobs until `stop` is set (`JobRunner.run`)."""
        self.runner.run(stop, poll)

    def close(self) -> None:
        self.store.close()


def main() -> None:
    """Entry point of the render worker process: low CPU priority, all cores for the renderer's threads."""
    import signal

    from recsys.service import logs
    from recsys.service.server import die_with_parent

    stop = threading.Event()
    die_with_parent(on_death=stop.set)  # `stylerec serve` killed: stop too (a running job is queued again)
    os.nice(10)  # renders yield the CPU to the web workers' requests
    logs.configure()
    worker = RenderWorker(Settings())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("render worker started", extra={"pid": os.getpid(), "nice": os.nice(0)})
    try:
        worker.run(stop)
    finally:
        worker.close()


if __name__ == "__main__":
    main()
