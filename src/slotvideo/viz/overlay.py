"""Pictures of segmentations: colourised masks, overlays on the video, and panels side by side.

Generic over where masks come from: ground-truth ids (int ``[..., H, W]``, 0 = background,
negative = ignore) or a model's soft masks (float ``[..., K, H, W]``, argmax over K). Everything
returns uint8 ``[..., H, W, 3]`` numpy arrays, ready for :func:`slotvideo.data.video_io.write_video`.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.synthetic.colors import hsv_to_rgb
from ..errors import ShapeError, check_range

IGNORE_COLOR = (128, 128, 128)
_GOLDEN = 0.618033988749895


def palette(n: int) -> np.ndarray:
    """uint8 ``[n, 3]`` colours for ids ``0..n-1``: black for 0, then distinct bright colours.

    Hues step by the golden ratio (each new colour lands in the largest gap left by the previous
    ones) and saturation/value cycle through three levels, so neighbouring ids never look alike.
    """
    ids = np.arange(1, max(n, 1))
    hue = ((ids - 1) * _GOLDEN) % 1.0
    sat = np.array([0.9, 0.55, 1.0])[(ids - 1) // 7 % 3]
    val = np.array([1.0, 0.95, 0.7])[(ids - 1) // 7 % 3]
    rgb = np.concatenate([np.zeros((1, 3), np.float32), hsv_to_rgb(hue, sat, val)])[:n]
    return np.rint(rgb * 255).astype(np.uint8)


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def mask_ids(masks: np.ndarray | torch.Tensor) -> np.ndarray:
    """Integer ids ``[..., H, W]``: int input as is; float soft masks ``[..., K, H, W]`` -> ``argmax + 1``.

    Soft masks have no background, so slot k gets id k + 1 and every slot a non-black colour.
    """
    m = _numpy(masks)
    if np.issubdtype(m.dtype, np.floating):
        if m.ndim < 3:
            raise ShapeError(f"soft masks must have shape [..., K, H, W], got {list(m.shape)}")
        return m.argmax(axis=-3) + 1
    if not np.issubdtype(m.dtype, np.integer) and m.dtype != np.bool_:
        raise ShapeError(f"segmentation must be integer ids [..., H, W] or float masks [..., K, H, W], got {m.dtype}")
    if m.ndim < 2:
        raise ShapeError(f"segmentation must have shape [..., H, W], got {list(m.shape)}")
    return m.astype(np.int64)


def colorize_segmentation(seg: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 ``[..., H, W, 3]`` picture of ids (or soft masks, see :func:`mask_ids`); ignore (< 0) is grey."""
    ids = mask_ids(seg)
    colors = palette(int(ids.max(initial=0)) + 1)
    out = colors[np.clip(ids, 0, None)]
    out[ids < 0] = IGNORE_COLOR
    return out


def to_frames(video: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 ``[..., H, W, 3]`` from uint8 channels-last or float ``[..., 3, H, W]`` / ``[..., H, W, 3]`` in [0, 1]."""
    v = _numpy(video)
    if v.ndim < 3 or 3 not in (v.shape[-1], v.shape[-3]):
        raise ShapeError(f"video must have shape [..., 3, H, W] or [..., H, W, 3], got {list(v.shape)}")
    if v.shape[-1] != 3:  # channels first
        v = np.moveaxis(v, -3, -1)
    if v.dtype == np.uint8:
        return v
    return np.clip(np.rint(v.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def overlay(video: np.ndarray | torch.Tensor, seg: np.ndarray | torch.Tensor, alpha: float = 0.5) -> np.ndarray:
    """Blend the colourised ``seg`` over ``video`` with weight ``alpha``; background (id 0) pixels are left as is."""
    frames = to_frames(video)
    ids = mask_ids(seg)
    if frames.shape[:-1] != ids.shape:
        raise ShapeError(f"video {list(frames.shape[:-1])} and segmentation {list(ids.shape)} must have the same "
                         f"[..., H, W]")
    colors = colorize_segmentation(ids).astype(np.float32)
    blend = (1.0 - alpha) * frames.astype(np.float32) + alpha * colors
    out = np.where((ids != 0)[..., None], np.rint(blend), frames)
    return out.astype(np.uint8)


def side_by_side(*videos: np.ndarray | torch.Tensor, gap: int = 1, gap_color: int = 255) -> np.ndarray:
    """Panels ``[..., H, W_i, 3]`` placed left to right with a ``gap``-pixel separator; leading dims must match."""
    if not videos:
        raise ShapeError("side_by_side needs at least one video")
    frames = [to_frames(v) for v in videos]
    lead = frames[0].shape[:-2]
    for i, f in enumerate(frames):
        if f.shape[:-2] != lead:
            raise ShapeError(f"video {i} has shape {list(f.shape)}; all videos need [..., H, W, 3] with "
                             f"[..., H] = {list(lead)}")
    sep = np.full(lead + (gap, 3), gap_color, dtype=np.uint8)
    parts = [p for f in frames for p in (f, sep)][:-1] if gap > 0 else frames
    return np.concatenate(parts, axis=-2)


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of uint8 ``[..., H, W, 3]`` by an integer ``scale`` (keeps pixels crisp)."""
    check_range(scale, "scale", 1, integer=True)
    return np.repeat(np.repeat(frames, scale, axis=-3), scale, axis=-2)
