"""Multi-label average precision: CATER's metric for the atomic (``actions_present``) and compositional
(``actions_order_uniq``) tasks.

Facts from the official evaluation (reference/dataset-formats.md 2.3, ``evaluate_result_multiLabel``):
AP is computed per class over the whole split and averaged over classes; a class with no positive
example has no AP (the official code marks it -1) and is left out of the mean. Clip scores are
averaged per video first (:func:`~slotvideo.metrics.cater.average_clip_scores`).

AP here is the area under the step-wise precision-recall curve without interpolation, as scikit-learn's
``average_precision_score``: ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds
``n`` (tied scores form one threshold). Vectorized over classes: one sort, no Python loop over classes.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from slotvideo.errors import ShapeError, check_shape

#: ``evaluate_batch`` entries named ``RANKING + name`` hold ``[B, 2, C]`` (scores, multi-hot labels) of each
#: sample; the evaluation gathers them over the split and reports ``name`` = their mAP (:func:`ranking`).
RANKING = "ranking:"


def ranking(scores: Tensor, labels: Tensor) -> Tensor:
    """``[B, 2, C]`` per-sample scores and labels, for an ``evaluate_batch`` entry ``RANKING + name``."""
    check_shape(labels, "B C", "labels", **check_shape(scores, "B C", "scores"))
    return torch.stack([scores.detach().float(), labels.float()], dim=1)


def average_precision(scores: Tensor, labels: Tensor) -> Tensor:
    """Per-class AP, float64 ``[C]`` (NaN for a class without positives), of ``scores [N, C]`` against
    binary ``labels [N, C]`` (0/1 or bool)."""
    sizes = check_shape(scores, "N C", "scores")
    check_shape(labels, "N C", "labels", **sizes)
    if not scores.dtype.is_floating_point:
        raise ShapeError(f"scores must be a floating tensor [N, C], got dtype {scores.dtype}")
    labels = labels.to(torch.float64)
    if labels.numel() and not bool(((labels == 0) | (labels == 1)).all()):
        raise ShapeError("labels must be binary (0/1) multi-hot [N, C]")
    n = sizes["N"]
    if n == 0:
        return torch.full((sizes["C"],), math.nan, dtype=torch.float64)
    s, order = scores.to(torch.float64).sort(dim=0, descending=True, stable=True)
    y = labels.gather(0, order)
    tp = y.cumsum(0)
    seen = torch.arange(1, n + 1, dtype=torch.float64, device=scores.device)[:, None]
    # the precision of a threshold counts every example tied with it: read it at the end of each tie group
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[:-1] != s[1:]
    idx = torch.arange(n, device=scores.device)[:, None].expand_as(s)
    end = torch.where(last, idx, torch.full_like(idx, n)).flip(0).cummin(0).values.flip(0)
    precision = (tp / seen).gather(0, end)
    positives = y.sum(0)
    ap = (y * precision).sum(0) / positives
    return torch.where(positives > 0, ap, torch.full_like(ap, math.nan))


def mean_average_precision(scores: Tensor, labels: Tensor) -> float:
    """Mean of :func:`average_precision` over the classes that have a positive example (NaN if none)."""
    ap = average_precision(scores, labels)
    ok = ~torch.isnan(ap)
    return float(ap[ok].mean()) if bool(ok.any()) else math.nan
