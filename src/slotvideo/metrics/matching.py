"""Matching ground-truth objects to slots: the Hungarian algorithm, Hungarian mIoU and mean best overlap.

* :func:`linear_sum_assignment` solves the assignment problem (rectangular allowed) with the shortest
  augmenting path method of Jonker & Volgenant (1987), in O(n^2 m); no SciPy needed at run time.
* :func:`hungarian_miou` matches GT objects one-to-one to slots to maximise total IoU (SlotFormer's mIoU).
* :func:`mean_best_overlap` (mBO) gives each GT object its best slot; slots may repeat (OCLF's
  ``AverageBestOverlapMetric``).

Both IoU metrics work per frame or per video; per video the IoU is taken over the whole ``T*H*W`` volume,
so a slot must follow its object through time. Ignore pixels (-1) count in neither GT nor predicted areas.
GT ids that never occur in a frame/video are not objects there and are left out of its mean.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from slotvideo.errors import ShapeError
from slotvideo.metrics.ari import BACKGROUND_LABEL, IGNORE_LABEL, Per, check_per, contingency_table, prepare_ids


def linear_sum_assignment(cost: np.ndarray | Tensor, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a minimum-cost (or maximum with ``maximize``) assignment of a ``[n, m]`` matrix.

    Same contract as ``scipy.optimize.linear_sum_assignment``: ``min(n, m)`` pairs, rows in increasing
    order. Each row is added by a Dijkstra-like search for the cheapest augmenting path under dual
    potentials ``u`` (rows) and ``v`` (columns); the inner column updates are vectorised with NumPy,
    and the loops over rows and path steps are inherent to the algorithm.
    """
    a = cost.detach().cpu().numpy() if isinstance(cost, Tensor) else np.asarray(cost)
    if a.ndim != 2:
        raise ShapeError(f"cost must have shape [n, m], got {list(a.shape)}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ShapeError(f"cost must be a real matrix, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ShapeError("cost must hold finite values only")
    if maximize:
        a = -a
    transposed = a.shape[0] > a.shape[1]
    if transposed:  # the path search needs at least as many columns as rows
        a = a.T
    n, m = a.shape
    # Index 0 is a virtual column / row used as the start of every search; real ones are 1-based.
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: row matched to column j (0 = free)
    way = np.zeros(m + 1, dtype=np.int64)  # previous column on the shortest path
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        min_slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            slack = a[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (slack < min_slack[1:])
            min_slack[1:][better] = slack[better]
            way[1:][better] = j0
            candidates = np.where(free, min_slack[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta  # owners of used columns are distinct rows
            v[used] -= delta
            min_slack[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the matching along the path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order], cols[order]


def _iou_tables(segmentation: Tensor, prediction: Tensor, per: Per,
                ignore_background: bool) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """IoU ``[G, K_true, K_pred]`` and a mask ``[G, K_true]`` of GT objects present in each group."""
    check_per(per)
    true, pred, is_image = prepare_ids(segmentation, prediction)
    table = contingency_table(true, pred, true > IGNORE_LABEL, per).transpose(1, 2)  # [G, C, K]
    true_area = table.sum(dim=2, keepdim=True)
    pred_area = table.sum(dim=1, keepdim=True)  # includes background pixels: a slot spilling there is worse
    union = true_area + pred_area - table
    iou = table / union.clamp(min=1)
    present = true_area.squeeze(2) > 0
    if ignore_background:
        present[:, BACKGROUND_LABEL] = False
    shape = (true.shape[0], true.shape[1]) if per == "frame" and not is_image else (true.shape[0],)
    return iou, present, shape


def mean_best_overlap(segmentation: Tensor, prediction: Tensor, *, per: Per = "frame",
                      ignore_background: bool = True) -> Tensor:
    """Mean best overlap (mBO): each GT object's best IoU with any predicted mask, averaged over objects.

    Inputs as in :func:`slotvideo.metrics.ari`. Returns ``[B, T]`` per frame on videos, else ``[B]``
    (float64); NaN where a frame/video has no GT object (average with ``average_scores``).
    """
    iou, present, shape = _iou_tables(segmentation, prediction, per, ignore_background)
    best = iou.amax(dim=2)
    count = present.sum(dim=1)
    total = torch.where(present, best, torch.zeros_like(best)).sum(dim=1)
    score = torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))
    return score.view(shape)


def hungarian_miou(segmentation: Tensor, prediction: Tensor, *, per: Per = "frame",
                   ignore_background: bool = True) -> Tensor:
    """Mean IoU after a one-to-one Hungarian matching of GT objects to predicted slots (max total IoU).

    GT objects left without a slot (more objects than slots) score 0, so the mean is always over all GT
    objects present, as in SlotFormer. Returns ``[B, T]`` / ``[B]`` float64; NaN where no GT object.
    The matching runs on the CPU, one frame/video at a time (the algorithm is sequential).
    """
    iou, present, shape = _iou_tables(segmentation, prediction, per, ignore_background)
    iou_np = iou.cpu().numpy()
    present_np = present.cpu().numpy()
    scores = np.full(iou_np.shape[0], np.nan)
    for g in range(iou_np.shape[0]):
        objects = iou_np[g][present_np[g]]
        if len(objects):
            rows, cols = linear_sum_assignment(objects, maximize=True)
            scores[g] = objects[rows, cols].sum() / len(objects)
    return torch.from_numpy(scores).to(iou.device).view(shape)
