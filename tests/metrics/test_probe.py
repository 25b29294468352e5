import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from slotvideo.errors import ShapeError
from slotvideo.metrics.probe import linear_probe_r2


def data(n, f=6, p=3, noise=0.1, seed=0):
    w = torch.randn(f, p, generator=torch.Generator().manual_seed(99))   # one map for every sample
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g) * torch.logspace(-3, 1, f)   # features on very different scales
    y = (x / torch.logspace(-3, 1, f)) @ w + 0.5 + noise * torch.randn(n, p, generator=g)
    return x, y


def test_matches_sklearn_ridge_on_standardized_features():
    (x, y), (tx, ty) = data(200), data(100, seed=1)
    x, tx = x[:, :6], tx[:, :6]
    ridge = 0.05
    scaler = StandardScaler().fit(x.numpy())
    # sklearn's Ridge penalises alpha * |w|^2 against the summed squared error: alpha = ridge * N here
    sk = Ridge(alpha=ridge * len(x)).fit(scaler.transform(x.numpy()), y.numpy())
    pred = sk.predict(scaler.transform(tx.numpy()))
    expected = 1 - ((ty.numpy() - pred) ** 2).sum() / ((ty.numpy() - y.numpy().mean(0)) ** 2).sum()
    assert linear_probe_r2(x, y, tx, ty, ridge) == pytest.approx(expected, abs=1e-6)


def test_recovers_a_linear_map_and_scores_noise_at_or_below_zero():
    (x, y), (tx, ty) = data(500, noise=0.01), data(200, noise=0.01, seed=1)
    assert linear_probe_r2(x, y, tx, ty) > 0.99
    # with the same data but held-out targets from a different map, the probe explains nothing
    noise = torch.randn(200, 3, generator=torch.Generator().manual_seed(5))
    assert linear_probe_r2(x, y, tx, noise + y.mean(0)) < 0.05


def test_bad_shapes_are_named():
    x, y = data(20)
    with pytest.raises(ShapeError, match="x and y"):
        linear_probe_r2(x[:10], y, x, y)
    with pytest.raises(ShapeError, match="test_x/test_y"):
        linear_probe_r2(x, y, x[:, :3], y)
    with pytest.raises(ShapeError, match="undefined"):
        linear_probe_r2(x, torch.ones_like(y), x, torch.ones_like(y))
    assert np.isfinite(linear_probe_r2(x, y, x, y))
