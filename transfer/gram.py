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
        # (268 MB at 256 px) costs more in page faults than the multiply itself. Every chunk holds exactly one
        # image per thread (a short last chunk is padded with copies of its first image), so BLAS gives each
        # Gram to one thread and sums it the same way whatever the batch: an image's Gram does not depend on
        # the batch it came in, with no change to the process's thread settings.
        step = n if features.device.type != "cpu" else max(1, torch.get_num_threads())
        gram = torch.empty(n, c, c, device=features.device)
        buffer = torch.empty((step, *flat.shape[1:]), device=features.device)
        for first in range(0, n, step):
            part, part_scale = pad_batch(flat[first : first + step], step), pad_batch(scale[first : first + step], step)
            count = min(step, n - first)
            gram[first : first + count] = product(part, torch.mul(part, part_scale, out=buffer))[:count]
    return gram / weights.sum(dim=1, keepdim=True).clamp_min(1e-6)


def pad_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """`x` (n, ...) with n <= size, padded to `size` rows with copies of its first row (no copy when full)."""
    if len(x) >= size:
        return x
    return torch.cat([x, x[:1].expand(size - len(x), *x.shape[1:])])


def triu_indices(channels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Flat indices of the upper triangle (diagonal included) of a C x C matrix."""
    rows, cols = torch.triu_indices(channels, channels, device=device)
    return rows * channels + cols


def gram_descriptor(gram: torch.Tensor, signed_sqrt: bool = True) -> torch.Tensor:
    """(N, C, C) Gram -> (N, C(C+1)/2): upper triangle, element-wise signed square root (unless the matrix is a
    matrix square root already: `signed_sqrt=False`), L2-normalised per row."""
    n, c, _ = gram.shape
    upper = gram.reshape(n, c * c)[:, triu_indices(c, gram.device)]
    rooted = torch.copysign(upper.abs().sqrt(), upper) if signed_sqrt else upper
    return F.normalize(rooted, dim=1)


def masked_gram_root(features: torch.Tensor, mask: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """Matrix square root of `masked_gram(features, mask)` (N, C, C), by `iterations` Newton-Schulz steps.

    With fewer positions P = h * w than channels C (relu5 maps: 256 positions at 256 px, 512 channels) the
    iteration runs on the P x P kernel K = A^T A instead of the C x C Gram G = A A^T (A = the mask-weighted
    features): sqrt(G) = A K^(-1/2) A^T, and the coupled iteration's Y_k = K Z_k makes this exactly the same
    polynomial in G as `sqrtm_newton_schulz(G)`, at (P / C)^3 of its cost. Runs in chunks of one image per CPU
    thread, so an image's root does not depend on its batch.
    """
    return per_thread_chunks(lambda f, m: _masked_gram_root(f, m, iterations), features, mask)


def _masked_gram_root(features: torch.Tensor, mask: torch.Tensor, iterations: int) -> torch.Tensor:
    n, c, h, w = features.shape
    weights = resize_mask(mask.to(device=features.device, dtype=torch.float32), (h, w)).reshape(n, 1, h * w)
    weights = weights / weights.sum(dim=2, keepdim=True).clamp_min(1e-6)
    a = features.to(torch.float32).reshape(n, c, h * w) * weights.sqrt()
    if h * w >= c:
        return sqrtm_newton_schulz(a @ a.transpose(1, 2), iterations)
    kernel = a.transpose(1, 2) @ a
    trace = kernel.diagonal(dim1=1, dim2=2).sum(dim=1).clamp_min(1e-12).view(n, 1, 1)
    inverse_root = _newton_schulz(kernel / trace, iterations)[1]
    return a @ inverse_root @ a.transpose(1, 2) / trace.sqrt()


def per_thread_chunks(fn, *tensors: torch.Tensor) -> torch.Tensor:
    """`fn` (batched, row-wise) applied to `tensors` in chunks of exactly one row per CPU thread (the last chunk
    padded), concatenated.

    BLAS hands each matrix of a batched product to one thread when there are at least as many as threads, so
    every row is computed the same way whatever its batch; on a GPU, one call.
    """
    n = len(tensors[0])
    step = n if tensors[0].device.type != "cpu" else max(1, torch.get_num_threads())
    if n == step:
        return fn(*tensors)
    parts = [
        fn(*(pad_batch(t[first : first + step], step) for t in tensors))[: min(step, n - first)]
        for first in range(0, n, step)
    ]
    return torch.cat(parts)


def descriptor_size(channels: list[int] | tuple[int, ...]) -> int:
    """Length of the concatenated per-layer descriptors for layers with these channel counts."""
    return sum(c * (c + 1) // 2 for c in channels)


def sqrtm_newton_schulz(gram: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """Approximate principal square root of a batch of symmetric positive semi-definite matrices (N, C, C).

    The coupled Newton-Schulz iteration of iSQRT-COV (Li et al. 2018) on the trace-normalised matrix (so its
    eigenvalues lie in [0, 1], where the iteration converges), rescaled by sqrt(trace): only matrix products,
    so it batches well on CPU and GPU. A few iterations give the exact root's large eigen-directions and damp
    the small ones, which is the normalisation a style descriptor wants. Zero matrices give zero.
    """
    n = len(gram)
    gram = gram.to(torch.float32)
    trace = gram.diagonal(dim1=1, dim2=2).sum(dim=1).clamp_min(1e-12).view(n, 1, 1)
    return _newton_schulz(gram / trace, iterations)[0] * trace.sqrt()


def _newton_schulz(a: torch.Tensor, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(Y, Z) after `iterations` coupled Newton-Schulz steps from Y = a, Z = I: Y ~ a^(1/2), Z ~ a^(-1/2), Y = a Z."""
    n, c, _ = a.shape
    eye = torch.eye(c, device=a.device).expand(n, c, c)
    y, z = a, eye
    for _ in range(iterations):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    return y, z
