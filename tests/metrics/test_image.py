"""MSE and PSNR against hand-computed values and NumPy."""
import math

import numpy as np
import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.metrics import mse, psnr


def test_hand_computed_values():
    target = torch.zeros(1, 3, 2, 2)
    pred = torch.full((1, 3, 2, 2), 0.1)
    assert mse(pred, target).item() == pytest.approx(0.01)
    assert psnr(pred, target).item() == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert psnr(pred, target, max_value=2.0).item() == pytest.approx(20.0 + 20 * math.log10(2))
    assert psnr(target, target).item() == math.inf


def test_per_frame_and_per_sample_match_numpy():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 4, 3, 5, 6, generator=g)
    pred = torch.rand(2, 4, 3, 5, 6, generator=g)
    err = (pred.double().numpy() - target.double().numpy()) ** 2
    frame_mse = err.mean(axis=(2, 3, 4))
    sample_mse = err.reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(mse(pred, target, reduction="none").numpy(), frame_mse)
    np.testing.assert_allclose(mse(pred, target, per="sample", reduction="none").numpy(), sample_mse)
    np.testing.assert_allclose(mse(pred, target).item(), frame_mse.mean())
    np.testing.assert_allclose(mse(pred, target, reduction="sum").item(), frame_mse.sum())
    frame_psnr = 10 * np.log10(1 / frame_mse)
    np.testing.assert_allclose(psnr(pred, target, reduction="none").numpy(), frame_psnr)
    np.testing.assert_allclose(psnr(pred, target).item(), frame_psnr.mean())
    np.testing.assert_allclose(psnr(pred, target, per="sample", reduction="none").numpy(),
                               10 * np.log10(1 / sample_mse))
    assert psnr(pred, target).dtype == torch.float64


def test_bad_inputs_name_the_argument():
    video = torch.rand(2, 3, 3, 4, 4)
    with pytest.raises(ShapeError, match=r"target.*\[\.\.\., 3, H, W\]"):
        mse(video, torch.rand(2, 3, 4, 4, 4))
    with pytest.raises(ShapeError, match="pred"):
        mse(video[:, :2], video)
    with pytest.raises(ShapeError, match="pred.*dtype"):
        psnr((video * 255).to(torch.uint8), video)
    with pytest.raises(ShapeError, match=r"target.*\[0, 1\]"):
        psnr(video, video * 255)
    with pytest.raises(ConfigError, match="reduction"):
        mse(video, video, reduction="max")
    with pytest.raises(ConfigError, match="per"):
        mse(video, video, per="pixel")
    with pytest.raises(ShapeError, match="batch"):
        mse(video[0, 0], video[0, 0], per="sample")
    with pytest.raises(ConfigError, match="max_value"):
        psnr(video, video, max_value=0.0)
