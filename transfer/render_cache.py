"""Rendering with a cache keyed by (product image, style image(s), renderer, parameters): nothing renders twice.

The key hashes the bytes of the images and every render option that can change the output, so changing any of
them is a new render and asking again for the same one returns the stored JPEG bytes unchanged. The style is one
image or, for the `fast` renderer, a blend [(image, weight)]; a blend of one image at any weight is that image.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

from common.atomic import atomic_write_bytes
from transfer.images import ImageError, LoadedImage, load_image
from transfer.render import RenderError, RenderOptions, finish

MIN_STYLE_SIDE = 32
JPEG_QUALITY = 92


Source = bytes | str | os.PathLike
StyleSource = Source | Sequence[tuple[Source, float]]


def _bytes(source: Source) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def style_mix(style: StyleSource) -> list[tuple[bytes, float]]:
    """[(image bytes, weight)] with weights summing to 1 (one image: weight 1.0); `RenderError` for bad weights."""
    if isinstance(style, bytes | str | os.PathLike):
        return [(_bytes(style), 1.0)]
    pairs = [(_bytes(source), float(weight)) for source, weight in style]
    total = sum(weight for _, weight in pairs)
    if not pairs or any(not weight >= 0 for _, weight in pairs) or not 0 < total < float("inf"):
        raise RenderError("a style blend needs at least one style and non-negative weights that are not all zero")
    return [(data, weight / total) for data, weight in pairs]


def cache_key(content: bytes, style: bytes | Sequence[tuple[bytes, float]], options: RenderOptions) -> str:
    """The render's identity: sha256 over the images' bytes (and blend weights) and the options."""
    mix = style_mix(style)
    h = hashlib.sha256()
    h.update(hashlib.sha256(content).digest())
    if len(mix) == 1:
        h.update(hashlib.sha256(mix[0][0]).digest())
    else:
        for data, weight in mix:
            h.update(hashlib.sha256(data).digest() + f"{weight:.6f}".encode())
    h.update(hashlib.sha256(options.cache_json().encode()).digest())
    if options.renderer == "adain":  # its output depends on which decoder weights are installed
        from transfer.adain import weights_id

        h.update(weights_id().encode())
    return h.hexdigest()


def load_style(source: bytes | str | os.PathLike) -> LoadedImage:
    """A style reference image, or a `RenderError` saying why it cannot be one."""
    try:
        style = load_image(source)
    except (ImageError, OSError) as exc:
        raise RenderError(f"bad style image: {exc}") from None
    if min(style.rgb.shape[:2]) < MIN_STYLE_SIDE:
        raise RenderError(f"bad style image: {style.rgb.shape[1]}x{style.rgb.shape[0]} px is too small for a style")
    return style


class RenderCache:
    """Renders products through a renderer, storing the finished JPEGs under `folder/<key[:2]>/<key>.jpg`.

    With `max_bytes`, the folder is kept under that size: once a write passes it, the least recently used renders
    (by modification time, which a cache hit refreshes) are removed until it holds `EVICT_TO` of the limit. Several
    processes may share the folder: each counts its own writes and re-measures the folder when its count passes
    the limit, so the bound holds up to what the others wrote since."""

    EVICT_TO = 0.9

    def __init__(self, folder: str | os.PathLike, max_bytes: int | None = None) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._size: int | None = None  # this process's estimate of the folder's size (None: not measured)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.jpg"

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if self.max_bytes is not None:
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the last to be evicted
        return data

    def _files(self) -> list[tuple[float, int, Path]]:
        found = []
        for path in self.folder.glob("??/*.jpg"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                found.append((stat.st_mtime, stat.st_size, path))
        return found

    def _added(self, size: int) -> None:
        """Count a new render; past the limit, evict the least recently used ones."""
        if self.max_bytes is None:
            return
        if self._size is None:
            self._size = sum(size for _, size, _ in self._files())
        else:
            self._size += size
        if self._size <= self.max_bytes:
            return
        files = sorted(self._files())
        total, target = sum(size for _, size, _ in files), self.max_bytes * self.EVICT_TO
        for _, size, path in files:
            if total <= target:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= size
        self._size = total

    def size(self) -> int:
        """Bytes of renders in the folder now."""
        return sum(size for _, size, _ in self._files())

    def render(
        self,
        content: Source,
        style: StyleSource,
        options: RenderOptions,
        renderer=None,
        progress: bool = False,
    ) -> tuple[bytes, bool]:
        """(JPEG bytes, whether they came from the cache). `style` is an image or a blend [(image, weight)] (fast
        renderer only); `renderer` is made from the options when not given."""
        content_bytes, mix = _bytes(content), style_mix(style)
        key = cache_key(content_bytes, mix, options)
        cached = self.get(key)
        if cached is not None:
            return cached, True
        if len(mix) > 1 and options.renderer != "fast":
            raise RenderError(f"style blends need the fast renderer, not {options.renderer}")
        product = load_image(content_bytes)
        styles = [(load_style(data), weight) for data, weight in mix]
        if renderer is None:
            from transfer.adain import renderer_for

            renderer = renderer_for(options)
        reference = styles[0][0] if len(styles) == 1 else styles
        result = renderer.render(product, reference, options, progress=progress)
        buffer = io.BytesIO()
        finish(product, result.image, options).save(buffer, "JPEG", quality=JPEG_QUALITY)
        data = buffer.getvalue()
        atomic_write_bytes(self.path(key), data)
        self._added(len(data))
        return data, False
