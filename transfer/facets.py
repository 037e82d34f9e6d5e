"""Style facets: pattern/texture and colour as two parts of one style vector.

A faceted style vector is `[sqrt(0.75) * pattern, sqrt(0.25) * colour]`, each part L2-normalised (`stored_scales`),
so the inner product of two stored vectors is already "both": `0.75 * cos_pattern + 0.25 * cos_colour` (`BOTH`).
That is what every use of the whole vector sees (item-to-item neighbours, the feed's style source and features,
`style-eval`'s default). One FAISS inner-product index serves any other weighting: scaling the query's parts
(`weigh_query`) gives `score = (w_p * cos_pattern + w_c * cos_colour) / (w_p + w_c)`.

- **Pattern** ignores colour and orientation: the Gram matrices of the luminance image (replicated to three
  channels), averaged over views of the product turned by 0, 45, 90 and 135 degrees (`PATTERN_VIEWS`, measured
  in BENCHMARKS.md "issue 22"): horizontal stripes and steep diagonal stripes look alike, whatever their
  colours. A Gram is an average over positions, so the pattern's size matters less than its orientation: the
  demo's stripes 1.5 to 2.5 times narrower than `bold-stripes` are all found without views at other scales, and
  adding views shrunk to 60 % lowered the demo's pattern mAP@10 (0.79 to 0.74), so `view` can shrink but the
  default does not.
- **Colour** is the product pixels' colour histogram (8 x 8 x 8 RGB bins, mask-weighted, square-rooted), which
  ignores the pattern.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from common.errors import BadInput

Facet = Literal["pattern", "colour", "both"]
FACETS: tuple[str, ...] = ("pattern", "colour", "both")
# (degrees, scale) of each view the pattern facet's Grams are averaged over.
PATTERN_VIEWS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (45.0, 1.0), (90.0, 1.0), (135.0, 1.0))
HISTOGRAM_BINS = 8
# "both" (the default of same-style queries): the pattern leads 3:1 and the colours break its ties. Measured on the
# demo shop (striped clothing as queries, 96 px, 64-d): equal weights found 5.1 striped products of 12, 2:1 found
# 9.4, 3:1 11.3 (at least 8 for every query), pattern alone 11.9; a shopper's bought items, filtered out, then
# cost at most 2 of the 12 (BENCHMARKS.md, issue 22). `pattern_weight=0.5` asks for equal weights.
BOTH = (0.75, 0.25)
IMAGENET_MEAN = (123.68 / 255.0, 116.779 / 255.0, 103.939 / 255.0)  # the padding colour (zero after preprocessing)


def colour_dim(dim: int) -> int:
    """How many of a faceted vector's `dim` values the colour part gets (the pattern part gets the rest)."""
    return max(4, dim // 4)


def colour_histogram(pixels: torch.Tensor, mask: torch.Tensor, bins: int = HISTOGRAM_BINS) -> torch.Tensor:
    """(N, bins^3) mask-weighted RGB histograms of (N, 3, H, W) pixels in [0, 1], square-rooted, L2-normalised."""
    n = pixels.shape[0]
    q = (pixels.detach().to("cpu", torch.float32).clamp(0, 1) * (bins - 1e-6)).long()
    codes = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    hist = torch.zeros(n, bins**3)
    hist.scatter_add_(1, codes.reshape(n, -1), mask.detach().to("cpu", torch.float32).reshape(n, -1))
    return F.normalize(hist.sqrt(), dim=1)


def luminance(pixels: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> the same shape, each channel the Rec. 601 luma (a grey image the network can read)."""
    grey = 0.299 * pixels[:, 0] + 0.587 * pixels[:, 1] + 0.114 * pixels[:, 2]
    return grey[:, None].expand(-1, 3, -1, -1).contiguous()


def view(pixels: torch.Tensor, mask: torch.Tensor, degrees: float, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch turned by `degrees` (corners filled with the padding colour, zero weight) and resized by `scale`."""
    if degrees % 360:
        if degrees % 90 == 0:
            turns = int(degrees // 90)
            pixels, mask = torch.rot90(pixels, turns, (2, 3)), torch.rot90(mask, turns, (2, 3))
        else:
            bilinear = TF.InterpolationMode.BILINEAR
            pixels = TF.rotate(pixels, degrees, interpolation=bilinear, fill=list(IMAGENET_MEAN))
            mask = TF.rotate(mask, degrees, interpolation=bilinear, fill=[0.0])
    if scale != 1.0:
        size = max(16, round(pixels.shape[-1] * scale))
        pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        mask = F.interpolate(mask, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return pixels, mask


def facet_weights(facet: Facet | str | None = None, pattern: float | None = None) -> tuple[float, float]:
    """(w_pattern, w_colour) for a facet name or an explicit pattern weight in [0, 1] (colour gets the rest)."""
    if pattern is not None:
        if not 0.0 <= pattern <= 1.0:
            raise BadInput(f"the pattern weight must lie in [0, 1], not {pattern}")
        return float(pattern), 1.0 - float(pattern)
    facet = facet or "both"
    if facet not in FACETS:
        raise BadInput(f"unknown facet {facet!r}; choose from {', '.join(FACETS)}")
    return {"pattern": (1.0, 0.0), "colour": (0.0, 1.0), "both": BOTH}[facet]


def stored_scales() -> tuple[float, float]:
    """The factors a stored faceted vector's unit pattern and colour parts are multiplied by (a unit vector whose
    self inner products weigh the facets as `BOTH`)."""
    return BOTH[0] ** 0.5, BOTH[1] ** 0.5


def weigh_query(query: np.ndarray, pattern_dim: int | None, weights: tuple[float, float]) -> np.ndarray:
    """The query (d,) or (n, d) with its parts scaled so that its inner product with a stored faceted vector is
    `(w_p * cos_pattern + w_c * cos_colour) / (w_p + w_c)` (for unit parts). A vector without facets
    (`pattern_dim` None) comes back as it is: older stores answer every facet with the whole style."""
    query = np.asarray(query, np.float32)
    if pattern_dim is None:
        return query
    w_pattern, w_colour = weights
    total = w_pattern + w_colour
    if total <= 0:
        raise BadInput("the facet weights are both zero")
    out = query.copy()  # stored parts are scaled by sqrt(BOTH): dividing by BOTH leaves the wanted weights
    out[..., :pattern_dim] *= w_pattern / total / BOTH[0]
    out[..., pattern_dim:] *= w_colour / total / BOTH[1]
    return out


def pattern_dim_of(model_id: str) -> int | None:
    """The pattern facet's length in the vectors of an embedding model id (`vgg19-facets-<dim>-<hash>`); None
    for vectors without facets."""
    parts = model_id.split("-")
    if len(parts) >= 4 and parts[0] == "vgg19" and parts[1] == "facets" and parts[2].isdigit():
        dim = int(parts[2])
        return dim - colour_dim(dim)
    return None
