"""Rendering with a cache keyed by (product image, style image, renderer, parameters): nothing renders twice.

The key hashes the bytes of both images and every render option, so changing any of them is a new render and
asking again for the same one returns the stored JPEG bytes unchanged.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from transfer.images import ImageError, LoadedImage, load_image
from transfer.render import RenderError, RenderOptions, finish

MIN_STYLE_SIDE = 32
JPEG_QUALITY = 92


def _bytes(source: bytes | str | os.PathLike) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def cache_key(content: bytes, style: bytes, options: RenderOptions) -> str:
    """The render's identity: sha256 over both images' bytes and the options."""
    h = hashlib.sha256()
    for part in (content, style, options.model_dump_json().encode()):
        h.update(hashlib.sha256(part).digest())
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
    """Renders products through a renderer, storing the finished JPEGs under `folder/<key[:2]>/<key>.jpg`."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.jpg"

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        return path.read_bytes() if path.exists() else None

    def render(
        self,
        content: bytes | str | os.PathLike,
        style: bytes | str | os.PathLike,
        options: RenderOptions,
        renderer=None,
        progress: bool = False,
    ) -> tuple[bytes, bool]:
        """(JPEG bytes, whether they came from the cache). `renderer` is made from the options when not given."""
        content_bytes, style_bytes = _bytes(content), _bytes(style)
        key = cache_key(content_bytes, style_bytes, options)
        cached = self.get(key)
        if cached is not None:
            return cached, True
        product = load_image(content_bytes)
        style_image = load_style(style_bytes)
        if renderer is None:
            from transfer.adain import renderer_for

            renderer = renderer_for(options)
        result = renderer.render(product, style_image, options, progress=progress)
        buffer = io.BytesIO()
        finish(product, result.image, options).save(buffer, "JPEG", quality=JPEG_QUALITY)
        data = buffer.getvalue()
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return data, False
