"""CATER snitch localization (Task 3): top-1 / top-5 accuracy and L1 grid distance on a 6x6 grid.

Facts from the official code (reference/dataset-formats.md 2.2-2.3, ``rohitgirdhar/CATER``):

* The label is the snitch position at the last frame: on the ground plane ``[-3, 3)^2``,
  ``col = floor(x) + 3``, ``row = floor(y) + 3`` and ``class = row * 6 + col``. The 4x4 / 8x8 variants
  first scale the position by ``(grid / 2) / 3``.
* The L1 distance reads a class as ``(row, col) = (class // grid, class % grid)`` and adds the absolute
  row and column differences between the argmax prediction and the label.
* Clip scores are averaged per video before scoring (:func:`average_clip_scores`).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from slotvideo.errors import ConfigError, DataError, ShapeError, check_range, check_shape

CATER_GRID = 6
PLANE_HALF_SIZE = 3.0  # the plane spans [-3, 3) in x and y


def _check_grid(grid: int) -> None:
    check_range(grid, "grid", low=2, integer=True)
    if grid % 2:
        raise ConfigError(f"grid must be even (the official settings are 4, 6 and 8), got {grid}")


def class_to_cell(labels: Tensor, grid: int = CATER_GRID) -> tuple[Tensor, Tensor]:
    """Grid cell ``(row, col)`` of class ids: ``row = id // grid`` (from y), ``col = id % grid`` (from x)."""
    return torch.div(labels, grid, rounding_mode="floor"), labels % grid


def position_to_class(position: Tensor, grid: int = CATER_GRID, clip: bool = False) -> Tensor:
    """Official class id (int64 ``[...]``) of ground-plane positions ``[..., 2]`` or ``[..., 3]`` (x, y[, z]).

    ``half = grid / 2``; ``col = floor(x * half / 3) + half``, ``row = floor(y * half / 3) + half``,
    ``class = row * grid + col``. The official label code does not clip, so a position off the plane
    raises; ``clip=True`` first clips to ``[-3, 3 - 1e-5]`` like the official tracking baseline.
    """
    _check_grid(grid)
    check_shape(position, "... D", "position")
    if position.shape[-1] not in (2, 3) or not position.dtype.is_floating_point:
        raise ShapeError(f"position must be a floating tensor of shape [..., 2] or [..., 3] (x, y[, z]), "
                         f"got {list(position.shape)} {position.dtype}")
    xy = position[..., :2].to(torch.float64)
    if clip:
        xy = xy.clamp(-PLANE_HALF_SIZE, PLANE_HALF_SIZE - 1e-5)
    elif xy.numel() and (float(xy.min()) < -PLANE_HALF_SIZE or float(xy.max()) >= PLANE_HALF_SIZE):
        raise DataError(f"position (x, y) must lie on the plane [-3, 3), got values in "
                        f"[{float(xy.min()):.4g}, {float(xy.max()):.4g}]; pass clip=True to clip")
    half = grid // 2
    cell = torch.floor(xy * (half / PLANE_HALF_SIZE)).long() + half
    return cell[..., 1] * grid + cell[..., 0]


def average_clip_scores(logits: Tensor, video_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Average softmax scores of clips ``[N, C]`` over clips of the same video -> ``([V, C], ids [V])``.

    The official evaluation sums each clip's class probabilities per video and divides by the clip
    count; ``ids`` are the sorted unique ``video_ids``, in the row order of the result.
    """
    check_shape(logits, "N C", "logits")
    check_shape(video_ids, "N", "video_ids", N=logits.shape[0])
    ids, inverse = torch.unique(video_ids, return_inverse=True)
    probs = logits.to(torch.float64).softmax(dim=-1)
    total = torch.zeros(len(ids), logits.shape[1], dtype=torch.float64, device=logits.device)
    total.index_add_(0, inverse, probs)
    count = torch.bincount(inverse, minlength=len(ids)).to(torch.float64)
    return total / count[:, None], ids


def _video_scores(logits: Tensor, labels: Tensor) -> Tensor:
    """``[B, C]`` scores from ``[B, C]`` logits, or from ``[B, S, C]`` clip logits (softmax averaged over S)."""
    if isinstance(logits, Tensor) and not logits.dtype.is_floating_point:
        raise ShapeError(f"logits must be a floating tensor [B, C] or [B, S, C], got dtype {logits.dtype}")
    if isinstance(logits, Tensor) and logits.dim() == 3:
        sizes = check_shape(logits, "B S C", "logits")
        scores = logits.to(torch.float64).softmax(dim=-1).mean(dim=1)
    else:
        sizes = check_shape(logits, "B C", "logits")
        scores = logits.to(torch.float64)
    check_shape(labels, "B", "labels", B=sizes["B"])
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ShapeError(f"labels must be int64 class ids [B], got dtype {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= sizes["C"]):
        raise ShapeError(f"labels must be class ids in [0, {sizes['C'] - 1}], got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return scores


def top_k_accuracy(logits: Tensor, labels: Tensor, k: int = 1) -> Tensor:
    """Per-video hit (float64 ``[B]``, 1 or 0) of the label among the ``k`` highest scores.

    ``logits`` is ``[B, C]`` or ``[B, S, C]`` (S clips per video, softmax-averaged first).
    """
    scores = _video_scores(logits, labels)
    check_range(k, "k", low=1, high=scores.shape[1], integer=True)
    top = scores.topk(k, dim=-1).indices
    return (top == labels[:, None]).any(dim=-1).to(torch.float64)


def grid_l1_distance(logits: Tensor, labels: Tensor, grid: int | None = None) -> Tensor:
    """Per-video L1 (Manhattan) distance in cells between the argmax cell and the true cell; float64 ``[B]``.

    The grid side is ``sqrt(C)`` unless given (the official code assumes a square grid).
    """
    scores = _video_scores(logits, labels)
    n_classes = scores.shape[1]
    side = grid if grid is not None else math.isqrt(n_classes)
    if side * side != n_classes:
        raise ShapeError(f"logits must have a square number of classes (grid x grid), got C={n_classes}")
    pred_row, pred_col = class_to_cell(scores.argmax(dim=-1), side)
    true_row, true_col = class_to_cell(labels, side)
    return ((pred_row - true_row).abs() + (pred_col - true_col).abs()).to(torch.float64)


def cater_localization(logits: Tensor, labels: Tensor) -> dict[str, float]:
    """Top-1, top-5 accuracy and mean L1 grid distance over videos (the three numbers CATER reports).

    ``logits`` ``[B, 36]`` per video or ``[B, S, 36]`` per clip; ``labels`` int64 ``[B]``.
    """
    return {
        "top1": float(top_k_accuracy(logits, labels, 1).mean()),
        "top5": float(top_k_accuracy(logits, labels, min(5, logits.shape[-1])).mean()),
        "l1": float(grid_l1_distance(logits, labels).mean()),
    }
