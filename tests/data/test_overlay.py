"""Segmentation pictures: palette, colourised ids and soft masks, overlays, panels, upscaling."""
import numpy as np
import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.viz.overlay import colorize_segmentation, overlay, palette, side_by_side, upscale


def test_palette_is_distinct_with_black_background():
    p = palette(24)
    assert p.shape == (24, 3) and p.dtype == np.uint8
    assert (p[0] == 0).all() and len({tuple(c) for c in p}) == 24
    assert (p[1:].max(1) >= 150).all()  # visible on black
    d = np.abs(p[1:9, None].astype(int) - p[None, 1:9].astype(int)).sum(-1) + np.eye(8, dtype=int) * 999
    assert d.min() > 60  # the first few ids are far apart


def test_colorize_ids_soft_masks_and_ignore():
    seg = np.array([[[0, 1], [2, -1]]])
    out = colorize_segmentation(seg)
    p = palette(3)
    assert out.shape == (1, 2, 2, 3) and out.dtype == np.uint8
    assert (out[0, 0, 0] == p[0]).all() and (out[0, 0, 1] == p[1]).all() and (out[0, 1, 0] == p[2]).all()
    assert tuple(out[0, 1, 1]) == (128, 128, 128)
    masks = torch.zeros(1, 3, 2, 2)  # [T, K, H, W] soft masks: slot k -> colour of id k + 1
    masks[0, 2] = 1.0
    masks[0, 0, 0, 0] = 2.0
    soft = colorize_segmentation(masks)
    assert (soft[0, 0, 0] == palette(4)[1]).all() and (soft[0, 1, 1] == palette(4)[3]).all()
    assert (colorize_segmentation(torch.from_numpy(seg)) == out).all()


def test_overlay_blends_objects_and_keeps_background():
    video = np.full((2, 4, 4, 3), 100, dtype=np.uint8)
    seg = np.zeros((2, 4, 4), dtype=np.int64)
    seg[:, 1, 1] = 1
    out = overlay(video, seg, alpha=0.25)
    assert (out[:, 0, 0] == 100).all()
    expected = np.rint(0.75 * 100 + 0.25 * palette(2)[1].astype(float))
    assert (out[:, 1, 1] == expected).all()
    chw = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255  # float [T, 3, H, W] input
    assert (overlay(chw, seg, alpha=0.25) == out).all()
    with pytest.raises(ShapeError, match="same"):
        overlay(video, seg[:, :3])


def test_side_by_side_and_upscale():
    a = np.zeros((3, 4, 5, 3), dtype=np.uint8)
    b = np.ones((3, 4, 2, 3), dtype=np.uint8)
    out = side_by_side(a, b, gap=1)
    assert out.shape == (3, 4, 8, 3) and (out[:, :, 5] == 255).all() and (out[:, :, 6:] == 1).all()
    with pytest.raises(ShapeError):
        side_by_side(a, np.zeros((3, 5, 5, 3), dtype=np.uint8))
    up = upscale(out, 3)
    assert up.shape == (3, 12, 24, 3) and (up[:, :3, :3] == out[:, :1, :1]).all()
    with pytest.raises(ConfigError, match="scale"):
        upscale(out, 0)
