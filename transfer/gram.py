"""Masked Gram matrices and their normalised, flattened form (the raw style descriptor)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-downsample a (N, 1, H, W) weight mask in [0, 1] to a feature map's (h, w)."""
    if mask.shape[-2:] == size:
        return mask
    return F.adaptive_avg_pool2d(mask, size)


def masked_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Gram matrices (N, C, C) over the masked pixels only, normalised by the counted (weighted) pixels.

    `features` is (N, C, h, w); `mask` is (N, 1, H, W) with weights in [0, 1] at any resolution.
    G = sum_p m_p f_p f_p^T / sum_p m_p, computed in float32 whatever the feature dtype.
    """
    n, c, h, w = features.shape
    weights = resize_mask(mask.to(torch.float32), (h, w)).reshape(n, 1, h * w)
    flat = features.to(torch.float32).reshape(n, c, h * w)
    weighted = flat * weights.sqrt()
    counted = weights.sum(dim=2, keepdim=True).clamp_min(1e-6)
    return torch.bmm(weighted, weighted.transpose(1, 2)) / counted


def triu_indices(channels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Flat indices of the upper triangle (diagonal included) of a C x C matrix."""
    rows, cols = torch.triu_indices(channels, channels, device=device)
    return rows * channels + cols


def gram_descriptor(gram: torch.Tensor) -> torch.Tensor:
    """(N, C, C) Gram -> (N, C(C+1)/2): upper triangle, signed square root, L2-normalised per row."""
    n, c, _ = gram.shape
    upper = gram.reshape(n, c * c)[:, triu_indices(c, gram.device)]
    rooted = upper.sign() * upper.abs().sqrt()
    return F.normalize(rooted, dim=1)


def descriptor_size(channels: list[int] | tuple[int, ...]) -> int:
    """Length of the concatenated per-layer descriptors for layers with these channel counts."""
    return sum(c * (c + 1) // 2 for c in channels)
