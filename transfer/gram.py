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
    weights = resize_mask(mask.to(device=features.device, dtype=torch.float32), (h, w)).reshape(n, h * w, 1)
    features = features.to(torch.float32)
    # (N, HW, C) is a free view of channels-last maps and (N, C, HW) of contiguous ones: never copy the map twice.
    pixels_first = features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous()
    if pixels_first:
        flat, scale = features.permute(0, 2, 3, 1).reshape(n, h * w, c), weights
    else:
        flat, scale = features.reshape(n, c, h * w), weights.transpose(1, 2)

    def product(plain: torch.Tensor, weighted: torch.Tensor) -> torch.Tensor:
        return plain.transpose(1, 2) @ weighted if pixels_first else weighted @ plain.transpose(1, 2)

    if features.requires_grad and torch.is_grad_enabled():  # style losses: autograd needs the plain product
        gram = product(flat, flat * scale)
    else:
        # On CPU, a few images at a time through one reused buffer: a fresh copy of a whole batch's relu1_1 map
        # (268 MB at 256 px) costs more in page faults than the multiply itself. Chunks of one image per thread
        # keep each Gram summed by one thread, as in a full batch, so the result does not depend on the chunking.
        step = n if features.device.type != "cpu" else max(1, torch.get_num_threads())
        gram = torch.empty(n, c, c, device=features.device)
        buffer = torch.empty_like(flat[:step])
        for first in range(0, n, step):
            part = flat[first : first + step]
            gram[first : first + step] = product(
                part, torch.mul(part, scale[first : first + step], out=buffer[: len(part)])
            )
    return gram / weights.sum(dim=1, keepdim=True).clamp_min(1e-6)


def triu_indices(channels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Flat indices of the upper triangle (diagonal included) of a C x C matrix."""
    rows, cols = torch.triu_indices(channels, channels, device=device)
    return rows * channels + cols


def gram_descriptor(gram: torch.Tensor) -> torch.Tensor:
    """(N, C, C) Gram -> (N, C(C+1)/2): upper triangle, signed square root, L2-normalised per row."""
    n, c, _ = gram.shape
    upper = gram.reshape(n, c * c)[:, triu_indices(c, gram.device)]
    rooted = torch.copysign(upper.abs().sqrt(), upper)
    return F.normalize(rooted, dim=1)


def descriptor_size(channels: list[int] | tuple[int, ...]) -> int:
    """Length of the concatenated per-layer descriptors for layers with these channel counts."""
    return sum(c * (c + 1) // 2 for c in channels)
