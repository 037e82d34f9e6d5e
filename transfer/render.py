"""Re-rendering a product in a style: the render options, the Gatys renderer and the product-safe finishing every
renderer shares (the `fast` renderer is in `transfer.fast`, `adain` in `transfer.adain`).

Product-safe by default: the optimisation matches the style's Gram matrices over the product's own pixels,
and the result is composited back so that background pixels stay exactly as they were (edges feathered);
`preserve_colour` keeps the product's colours (luminance-only transfer); `strength` blends with the original;
brightness, contrast and saturation adjust the product (never the background).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageFilter
from pydantic import BaseModel, ConfigDict, Field
from torchvision.models.feature_extraction import create_feature_extractor
from tqdm.auto import tqdm

from common.errors import StylerecError
from transfer.gram import masked_gram
from transfer.images import LoadedImage, foreground_mask
from transfer.vgg import LAYER_NODES, caffe_preprocess, load_vgg19_features

log = logging.getLogger(__name__)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


GATYS_ONLY = {"steps", "scales", "style_weight", "content_weight", "tolerance", "seed"}


class RenderOptions(BaseModel):
    """What a render looks like; every field is part of the render cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    renderer: Literal["fast", "gatys", "adain"] = "fast"
    size: int = Field(384, ge=32, le=2048, description="longer side of the working image in pixels")
    steps: int = Field(100, ge=1, description="gatys: optimiser evaluations over all scales")
    scales: int = Field(2, ge=1, le=4, description="gatys: coarse-to-fine passes, each twice the size of the last")
    style_weight: float = Field(20.0, ge=0)
    content_weight: float = Field(1.0, ge=0)
    tolerance: float = Field(2e-3, ge=0, description="gatys: stop a pass when the loss improves less than this")
    keep_background: bool = True
    preserve_colour: bool = True
    strength: float = Field(1.0, ge=0, le=1, description="1 = full style, 0 = the original")
    brightness: float = Field(1.0, gt=0)
    contrast: float = Field(1.0, gt=0)
    saturation: float = Field(1.0, gt=0)
    style_amount: float = Field(
        1.0, ge=0, le=1, description="fast: the style code's share against the product's own (more/less style)"
    )
    seed: int = 0

    def cache_json(self) -> str:
        """The options that can change this renderer's output, as JSON (the render cache's key)."""
        unused = GATYS_ONLY if self.renderer != "gatys" else set()
        if self.renderer != "fast":
            unused = unused | {"style_amount"}
        return self.model_dump_json(exclude=unused)


class RenderError(StylerecError, ValueError):
    """A render that cannot be made (bad style image, missing decoder weights...), with the reason (422)."""

    http_status = 422


@dataclass
class RenderResult:
    image: Image.Image
    seconds: float
    steps: int


def to_tensor(rgb: np.ndarray, size: int | None = None) -> torch.Tensor:
    """uint8 H x W x 3 -> (1, 3, h, w) float in [0, 1], longer side resized to `size`."""
    image = Image.fromarray(rgb)
    if size is not None:
        scale = size / max(image.size)
        image = image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))), Image.LANCZOS)
    return torch.from_numpy(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


def to_image(pixels: torch.Tensor) -> Image.Image:
    array = (pixels[0].clamp(0, 1).permute(1, 2, 0).detach().cpu().numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(array)


class GatysRenderer:
    """Optimisation-based style transfer (Gatys et al. 2016) on the project's VGG19, coarse to fine, L-BFGS."""

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        nodes = {LAYER_NODES[name]: name for name in (*STYLE_LAYERS, CONTENT_LAYER)}
        vgg = load_vgg19_features("relu5_1").to(self.device)
        self.extractor = create_feature_extractor(vgg, return_nodes=nodes).eval().requires_grad_(False)

    def _features(self, rgb01: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.extractor(caffe_preprocess(rgb01))

    @torch.no_grad()
    def style_targets(self, style_rgb: np.ndarray, size: int) -> dict[str, torch.Tensor]:
        style = to_tensor(style_rgb, size).to(self.device)
        features = self._features(style)
        ones = torch.ones_like(style[:, :1])
        return {name: masked_gram(features[name], ones) for name in STYLE_LAYERS}

    def render(
        self, content: LoadedImage, style: LoadedImage, options: RenderOptions, progress: bool = False
    ) -> RenderResult:
        """The styled product (before finishing) at working size: see `render_product` for the finished one."""
        start = time.perf_counter()
        torch.manual_seed(options.seed)
        sizes = [max(32, options.size // 2 ** (options.scales - 1 - s)) for s in range(options.scales)]
        # more evaluations where they are cheap: the budget is split 2:1 between consecutive scales
        shares = np.array([2.0 ** (options.scales - 1 - s) for s in range(options.scales)])
        budgets = np.maximum(1, np.round(options.steps * shares / shares.sum())).astype(int)
        image, evaluations = None, 0
        with tqdm(total=int(budgets.sum()), desc="rendering", unit="step", disable=not progress) as bar:
            for size, budget in zip(sizes, budgets, strict=True):
                target = to_tensor(content.rgb, size).to(self.device)
                mask = _mask_tensor(content, target.shape[-2:]).to(self.device)
                image = target.clone() if image is None else F.interpolate(image, target.shape[-2:], mode="bilinear")
                image, used = self._optimise(image.detach(), target, mask, style.rgb, size, options, int(budget), bar)
                evaluations += used
        return RenderResult(to_image(image), time.perf_counter() - start, evaluations)

    def _optimise(self, image, target, mask, style_rgb, size, options, budget, bar) -> tuple[torch.Tensor, int]:
        grams = self.style_targets(style_rgb, size)
        with torch.no_grad():
            content_target = self._features(target)[CONTENT_LAYER]
        image = image.requires_grad_(True)
        optimiser = torch.optim.LBFGS(
            [image], lr=1.0, max_iter=budget, max_eval=budget, history_size=20, tolerance_change=0.0
        )
        losses: list[float] = []

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            features = self._features(image)
            content_loss = F.mse_loss(features[CONTENT_LAYER], content_target) / content_target.pow(2).mean()
            style_loss = sum(
                F.mse_loss(masked_gram(features[name], mask), grams[name]) / grams[name].pow(2).mean()
                for name in STYLE_LAYERS
            ) / len(STYLE_LAYERS)
            loss = options.content_weight * content_loss + options.style_weight * style_loss
            loss.backward()
            losses.append(float(loss.detach()))
            bar.update(1)
            if len(losses) > 10 and losses[-11] - losses[-1] < options.tolerance * losses[-11]:
                raise _Converged
            return loss

        with contextlib.suppress(_Converged):
            optimiser.step(closure)
        with torch.no_grad():
            image.clamp_(0, 1)
        return image.detach(), len(losses)


class _Converged(Exception):
    """Raised inside the L-BFGS closure to stop once the loss stops improving."""


def _mask_tensor(content: LoadedImage, size: tuple[int, int]) -> torch.Tensor:
    """The product's soft mask (1, 1, h, w) at a working size; all ones when there is no plain background."""
    mask = product_mask(content)
    image = Image.fromarray((mask * 255).astype(np.uint8)).resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image, np.float32) / 255.0)[None, None]


def product_mask(content: LoadedImage) -> np.ndarray:
    """Foreground weights in [0, 1] (H x W): the alpha channel, the studio-background mask, or all ones."""
    if content.alpha is not None:
        return content.alpha.astype(np.float32) / 255.0
    mask = foreground_mask(content.rgb, bridge=False)
    return np.ones(content.rgb.shape[:2], np.float32) if mask is None else mask.astype(np.float32)


def finish(original: LoadedImage, rendered: Image.Image, options: RenderOptions) -> Image.Image:
    """Product-safe finishing at the original resolution: colour, strength and the shopper's adjustments on the
    product, then the original background put back."""
    base = Image.fromarray(original.rgb)
    styled = rendered.resize(base.size, Image.LANCZOS)
    if options.preserve_colour:  # luminance from the render, chroma from the product
        y = styled.convert("YCbCr").getchannel("Y")
        _, cb, cr = base.convert("YCbCr").split()
        styled = Image.merge("YCbCr", (y, cb, cr)).convert("RGB")
    if options.strength < 1:
        styled = Image.blend(base, styled, options.strength)
    for enhancer, factor in (
        (ImageEnhance.Brightness, options.brightness),
        (ImageEnhance.Contrast, options.contrast),
        (ImageEnhance.Color, options.saturation),
    ):
        if factor != 1.0:
            styled = enhancer(styled).enhance(factor)
    if options.keep_background:
        mask = product_mask(original)
        soft = Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
        inside = np.minimum(np.asarray(soft, np.float32) / 255.0, mask)  # feather inwards only
        weight = inside[..., None]
        out = np.asarray(styled, np.float32) * weight + np.asarray(base, np.float32) * (1 - weight)
        styled = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8))
    return styled
