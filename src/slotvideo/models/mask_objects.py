"""Object tokens read from ground-truth instance masks: the "perfect perception" front-end.

A diagnostic, not a model of the papers: it answers "what does the reasoning model do when its object tokens
are right?", which separates a reasoning model that cannot learn from a front-end that does not find the
objects. Aloe uses it as ``model.frontend: masks`` (the data must give ``segmentation``, e.g. cater-mini with
``data.params.masks: true``).

Token ``k`` of every frame describes instance id ``k + 1`` (ids are stable across frames, so identity is
given; the id order itself carries no meaning once the caller permutes tokens, e.g. Aloe's
``shuffle_objects``). Its features, all in about [-1, 1]:

    visible, area (fraction of the frame), centroid row, centroid column (in [-1, 1]),
    spread row, spread column (standard deviations of the pixels), mean R, G, B (in [-1, 1])

An object hidden in a frame (occluded or contained) gets zeros there, with ``visible`` 0.
"""
from __future__ import annotations

import torch
from torch import Tensor

from slotvideo.errors import ShapeError, check_shape

#: features per object token (see the module docstring)
FEATURES = 9


def mask_objects(video: Tensor, segmentation: Tensor, num_objects: int) -> Tensor:
    """``video [B, T, 3, H, W]`` in [0, 1] and integer ``segmentation [B, T, H', W']`` (0 background, object
    ``k`` = id ``k + 1``, negative = unknown) -> tokens ``[B, T, num_objects, FEATURES]``.

    Masks at another resolution than the video are resized to it (nearest). Ids above ``num_objects`` are
    refused: the token count must hold every object of the data."""
    check_shape(video, "B T 3 H W", "video")
    check_shape(segmentation, "B T h w", "segmentation")
    if segmentation.shape[:2] != video.shape[:2]:
        raise ShapeError(f"segmentation {tuple(segmentation.shape)} and video {tuple(video.shape)} must share "
                         "batch and time")
    if segmentation.is_floating_point():
        raise ShapeError(f"segmentation must hold integer instance ids, got dtype {segmentation.dtype}")
    h, w = video.shape[-2:]
    if segmentation.shape[-2:] != (h, w):
        segmentation = torch.nn.functional.interpolate(segmentation.float(), size=(h, w), mode="nearest").long()
    largest = int(segmentation.max()) if segmentation.numel() else 0
    if largest > num_objects:
        raise ShapeError(f"segmentation has instance id {largest}, more than the {num_objects} object tokens "
                         "(raise model.mask_objects)")
    ids = torch.arange(1, num_objects + 1, device=segmentation.device)
    masks = (segmentation.unsqueeze(2) == ids.view(1, 1, -1, 1, 1)).to(video.dtype)        # [B, T, K, H, W]
    area = masks.sum((-2, -1))                                                              # [B, T, K]
    visible = (area > 0).to(video.dtype)
    norm = area.clamp(min=1.0)
    rows = torch.linspace(-1.0, 1.0, h, device=video.device, dtype=video.dtype).view(h, 1).expand(h, w)
    cols = torch.linspace(-1.0, 1.0, w, device=video.device, dtype=video.dtype).view(1, w).expand(h, w)

    def mean(values: Tensor) -> Tensor:                 # [H, W] -> per-object mean [B, T, K]
        return (masks * values).sum((-2, -1)) / norm

    cy, cx = mean(rows), mean(cols)
    sy = (mean(rows ** 2) - cy ** 2).clamp(min=0.0).sqrt()
    sx = (mean(cols ** 2) - cx ** 2).clamp(min=0.0).sqrt()
    rgb = torch.einsum("btkhw,btchw->btkc", masks, video * 2.0 - 1.0) / norm.unsqueeze(-1)   # [B, T, K, 3]
    geometry = torch.stack([visible, area / (h * w), cy, cx, sy, sx], -1)
    return torch.cat([geometry, rgb], -1) * visible.unsqueeze(-1)
