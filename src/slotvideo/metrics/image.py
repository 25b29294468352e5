"""Pixel reconstruction metrics: mean squared error and PSNR on images/videos ``[..., 3, H, W]`` in [0, 1].

Scores are computed per frame (each ``[3, H, W]`` image) or per sample (everything after the batch
dimension at once), then reduced. PSNR per frame then averaged (the usual video-prediction report,
e.g. SlotFormer) differs from PSNR of the whole-video MSE, so both are offered.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape

Reduction = Literal["mean", "sum", "none"]
PerImage = Literal["frame", "sample"]


def _check(pred: Tensor, target: Tensor, per: str, reduction: str) -> None:
    sizes = check_shape(target, "... 3 H W", "target")
    check_shape(pred, "... 3 H W", "pred", **sizes)
    if tuple(pred.shape) != tuple(target.shape):
        raise ShapeError(f"pred must have the shape of target {list(target.shape)}, got {list(pred.shape)}")
    for name, x in (("pred", pred), ("target", target)):
        if not x.dtype.is_floating_point:
            raise ShapeError(f"{name} must be a floating tensor with values in [0, 1], got dtype {x.dtype}")
    # The target is ground truth, so a [0, 255] video there is a caller bug; predictions may overshoot.
    if target.numel() and (float(target.min()) < 0.0 or float(target.max()) > 1.0):
        raise ShapeError(f"target must hold values in [0, 1], got [{float(target.min()):.3g}, "
                         f"{float(target.max()):.3g}]")
    if per not in ("frame", "sample"):
        raise ConfigError(f"per must be 'frame' or 'sample', got {per!r}")
    if per == "sample" and target.dim() < 4:
        raise ShapeError(f"per='sample' needs a batch dimension: target must have shape [B, ..., 3, H, W], "
                         f"got {list(target.shape)}")
    if reduction not in ("mean", "sum", "none"):
        raise ConfigError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _per_item_mse(pred: Tensor, target: Tensor, per: str) -> Tensor:
    err = (pred.to(torch.float64) - target.to(torch.float64)).square()
    return err.mean(dim=(-3, -2, -1)) if per == "frame" else err.flatten(1).mean(dim=1)


def _reduce(x: Tensor, reduction: str) -> Tensor:
    return x.mean() if reduction == "mean" else x.sum() if reduction == "sum" else x


def mse(pred: Tensor, target: Tensor, *, per: PerImage = "frame", reduction: Reduction = "mean") -> Tensor:
    """Mean squared error per frame (``[...]``) or per sample (``[B]``), then reduced; float64.

    ``reduction="none"`` returns the per-frame / per-sample values.
    """
    _check(pred, target, per, reduction)
    return _reduce(_per_item_mse(pred, target, per), reduction)


def psnr(pred: Tensor, target: Tensor, *, max_value: float = 1.0, per: PerImage = "frame",
         reduction: Reduction = "mean") -> Tensor:
    """Peak signal-to-noise ratio ``10 log10(max_value^2 / MSE)`` in dB, per frame or per sample; float64.

    Each frame/sample gets its own PSNR before the reduction (the mean of PSNRs, not the PSNR of the
    mean MSE). A perfect reconstruction has MSE 0 and PSNR ``inf``, which we keep rather than hide
    behind an epsilon.
    """
    check_range(max_value, "max_value", low=1e-12)
    _check(pred, target, per, reduction)
    value = 10.0 * torch.log10(max_value ** 2 / _per_item_mse(pred, target, per))
    return _reduce(value, reduction)
