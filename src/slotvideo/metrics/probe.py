"""Linear probe: how much of a target is linearly decodable from learned representations.

``linear_probe_r2`` fits a ridge regression ``y ~ x W + b`` on a training set and returns the
coefficient of determination R^2 on a held-out set, pooled over every target dimension:
``1 - sum (y - y_hat)^2 / sum (y - mean_train(y))^2``. Features are standardized with the training
set's mean and standard deviation first, so the ridge penalty means the same thing whatever the scale of
the representation (contrastive slots can carry their information in small directions). R^2 is 0 for
a probe that predicts the training mean and can be negative on held-out data. Used to tell a
representation that carries nothing from a decoder that failed to read it (``benchmarks/setcon_table1.py``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from slotvideo.errors import ShapeError, check_range


def fit_ridge(x: Tensor, y: Tensor, ridge: float = 1e-3) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(mean, std, weight, bias)`` of a ridge regression of ``y [N, P]`` on standardized ``x [N, F]``.

    Solved in float64 from the normal equations ``(X^T X + ridge * N * I) W = X^T Y`` on centred data;
    the bias is not penalised."""
    _check_pair(x, y, "x", "y")
    check_range(ridge, "ridge", low=0.0)
    x, y = x.double(), y.double()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp(min=1e-12)
    xs = (x - mean) / std
    y_mean = y.mean(0)
    gram = xs.T @ xs + ridge * x.shape[0] * torch.eye(x.shape[1], dtype=x.dtype)
    weight = torch.linalg.solve(gram, xs.T @ (y - y_mean))
    return mean, std, weight, y_mean


def linear_probe_r2(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, ridge: float = 1e-3) -> float:
    """Held-out R^2 (pooled over target dimensions) of a ridge probe fitted on ``(train_x, train_y)``."""
    mean, std, weight, bias = fit_ridge(train_x, train_y, ridge)
    _check_pair(test_x, test_y, "test_x", "test_y")
    if test_x.shape[1] != train_x.shape[1] or test_y.shape[1] != train_y.shape[1]:
        raise ShapeError(f"test_x/test_y must have {train_x.shape[1]}/{train_y.shape[1]} columns like the "
                         f"training set, got {test_x.shape[1]}/{test_y.shape[1]}")
    pred = ((test_x.double() - mean) / std) @ weight + bias
    target = test_y.double()
    total = (target - bias).square().sum()
    if float(total) == 0.0:
        raise ShapeError("test_y does not vary around the training mean: R^2 is undefined")
    return float(1.0 - (target - pred).square().sum() / total)


def _check_pair(x: Tensor, y: Tensor, x_name: str, y_name: str) -> None:
    if x.dim() != 2 or y.dim() != 2:
        raise ShapeError(f"{x_name} and {y_name} must be 2-D [N, features], got {list(x.shape)} and {list(y.shape)}")
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ShapeError(f"{x_name} and {y_name} need the same number (>= 2) of rows, got {x.shape[0]} and {y.shape[0]}")
