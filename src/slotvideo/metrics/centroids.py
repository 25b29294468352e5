"""Centroids of soft masks: where each slot or object sits, for matching slots to ground-truth objects by
position (VIM 5.1) and for position read-outs (the CATER snitch oracle)."""
from __future__ import annotations

import torch
from torch import Tensor

from slotvideo.errors import check_shape


def mask_centroids(masks: Tensor) -> Tensor:
    """Mask-weighted mean pixel position ``[..., K, 2]`` (row, col) of soft masks ``[..., K, H, W]``.

    Pixel ``(i, j)`` sits at ``(i, j)``; an all-zero mask gives ``(0, 0)`` (its weight is clamped, not
    divided by zero)."""
    sizes = check_shape(masks, "... K H W", "masks")
    rows = torch.arange(sizes["H"], dtype=masks.dtype, device=masks.device)
    cols = torch.arange(sizes["W"], dtype=masks.dtype, device=masks.device)
    total = masks.sum((-1, -2)).clamp_min(1e-8)
    return torch.stack([(masks.sum(-1) * rows).sum(-1) / total, (masks.sum(-2) * cols).sum(-1) / total], -1)
