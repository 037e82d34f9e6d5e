"""The learned style head: a small linear map trained by the project and shipped with it (issue 16).

Per VGG19 layer, a channel reduction P (r x C) turns the layer's C x C Gram into the r x r Gram of the reduced
features, P G P^T (still a second-order statistic of VGG features, and much cheaper than the full Gram). The
concatenated, layer-weighted descriptors then lose the directions in which products differ *within* one style
(nuisance attribute projection: x - U^T U x), learned from renders of dev H&M products in several styles: what
stays is what renders of different products in the same style share. The catalog's PCA to the compact dimension
follows, as for the plain Gram.

Trained by `benchmarks/style_head.py fit` without the images or labels of any evaluation set; the file name is the
head's version and its sha256 goes into the embedding model id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from common.errors import StylerecError
from transfer.gram import gram_descriptor, masked_gram

DEFAULT_HEAD = "style-head-1"


class HeadError(StylerecError, ValueError):
    """An unknown or unreadable head (422)."""

    http_status = 422


@dataclass(frozen=True)
class StyleHead:
    """Channel reductions per layer, layer weights and the nuisance directions removed from the descriptor."""

    version: str
    layers: tuple[str, ...]
    layer_weights: tuple[float, ...]
    reductions: tuple[np.ndarray, ...]  # per layer (r, C) float32
    nuisance: np.ndarray  # (k, D) float32, orthonormal rows
    sha256: str

    @property
    def raw_dim(self) -> int:
        return sum(p.shape[0] * (p.shape[0] + 1) // 2 for p in self.reductions)

    def save(self, path: str) -> None:
        """Write the head as float16 arrays in an .npz file (the shipped format)."""
        np.savez(
            path,
            layers=np.array(self.layers),
            layer_weights=np.array(self.layer_weights, dtype=np.float32),
            nuisance=self.nuisance.astype(np.float16),
            **{f"reduction_{name}": p.astype(np.float16) for name, p in zip(self.layers, self.reductions, strict=True)},
        )

    @classmethod
    def from_bytes(cls, version: str, data: bytes) -> StyleHead:
        import io

        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            layers = tuple(str(x) for x in z["layers"])
            return cls(
                version=version,
                layers=layers,
                layer_weights=tuple(float(x) for x in z["layer_weights"]),
                reductions=tuple(z[f"reduction_{name}"].astype(np.float32) for name in layers),
                nuisance=z["nuisance"].astype(np.float32),
                sha256=hashlib.sha256(data).hexdigest(),
            )

    def descriptors(self, feats: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """(N, raw_dim) float32 descriptors from named VGG19 activations and the product mask."""
        parts = []
        for name, weight, reduction in zip(self.layers, self.layer_weights, self.reductions, strict=True):
            features = feats[name].to(torch.float32)
            kernel = torch.from_numpy(reduction).to(features.device)[:, :, None, None]
            reduced = F.conv2d(features, kernel)  # 1x1 convolution = P f at every pixel
            parts.append(gram_descriptor(masked_gram(reduced, mask)) * weight**0.5)
        x = torch.cat(parts, dim=1)
        u = torch.from_numpy(self.nuisance).to(x.device)
        return x - (x @ u.t()) @ u


@cache
def load_head(version: str = DEFAULT_HEAD) -> StyleHead:
    """A head shipped in `transfer/weights/<version>.npz` (read once per process)."""
    try:
        data = resources.files("transfer").joinpath("weights", f"{version}.npz").read_bytes()
    except (FileNotFoundError, OSError) as e:
        raise HeadError(f"unknown style head {version!r}: no transfer/weights/{version}.npz") from e
    return StyleHead.from_bytes(version, data)
