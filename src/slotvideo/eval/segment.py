"""Segment a video file with a trained model: slot ids per pixel and an overlay video to look at.

    result = segment_file(model, "clip.mp4", "out/")     # out/masks.npy, out/overlay.gif, out/overlay.mp4

Works for any model with ``segment(video [B, T, 3, H, W]) -> soft masks [B, T, K, H, W]``. The input
(video file, frame folder or uint8 ``[T, H, W, 3]`` ``.npy``) is resized to the model's resolution, and
the argmax slot ids are brought back to the input's own resolution (nearest neighbour) so ``masks.npy``
lines up with the frames the user gave.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..models.base import input_resolution
from ..data.video_io import read_video, resize_frames, to_tensor, write_video
from ..errors import ConfigError, ShapeError, check_range
from ..viz.overlay import colorize_segmentation, overlay, side_by_side, upscale

# Overlays of small inputs (32x32 Bouncing Balls) are upscaled to at least this height to be visible.
MIN_DISPLAY_HEIGHT = 128


@dataclass
class Segmentation:
    """What :func:`segment_file` wrote and what it found."""

    masks: Path            # int32 [T, H, W] slot ids at the input resolution
    gif: Path
    mp4: Path
    num_frames: int
    input_size: tuple[int, int]
    model_size: tuple[int, int]
    num_slots: int


def require(model: Any, method: str) -> None:
    if not callable(getattr(model, method, None)):
        raise ConfigError(f"model {getattr(model, 'name', type(model).__name__)!r} does not implement {method}()")


@torch.no_grad()
def segment_ids(model: Any, video: torch.Tensor, size: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Argmax slot ids ``[T, H, W]`` (int32) of ``video [1, T, 3, h, w]``, upsampled to ``size``; and K."""
    require(model, "segment")
    masks = model.segment(video)
    t, (h, w) = video.shape[1], video.shape[-2:]
    if not isinstance(masks, torch.Tensor) or masks.dim() != 5 or masks.shape[0] != 1 or masks.shape[1] != t \
            or tuple(masks.shape[-2:]) != (h, w):
        got = list(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise ShapeError(f"model.segment must return masks [1, {t}, K, {h}, {w}], got {got}")
    ids = masks[0].argmax(dim=1).float()  # [T, h, w]
    ids = F.interpolate(ids[:, None], size=size, mode="nearest")[:, 0]
    return ids.round().to(torch.int32).cpu().numpy(), int(masks.shape[2])


def overlay_frames(frames: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Input | input with slots overlaid | slot colours, upscaled when small; uint8 ``[T, H', W', 3]``."""
    coloured = colorize_segmentation(ids + 1)  # +1: id 0 is black (background) in the palette
    panel = side_by_side(frames, overlay(frames, ids + 1, alpha=0.6), coloured, gap=2)
    scale = max(1, -(-MIN_DISPLAY_HEIGHT // frames.shape[1]))
    return upscale(panel, scale) if scale > 1 else panel


def segment_frames(model: Any, frames: np.ndarray, device: str | torch.device | None = None
                   ) -> tuple[np.ndarray, int, tuple[int, int]]:
    """Slot ids ``[T, H, W]`` (int32, at the frames' own resolution) of uint8 ``frames [T, H, W, 3]``.

    Returns the ids, the number of slots K and the resolution the model saw.
    """
    require(model, "segment")
    size = input_resolution(model)
    h, w = frames.shape[1:3]
    video = to_tensor(resize_frames(frames, size) if size is not None else frames).unsqueeze(0)
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu")) \
            if hasattr(model, "parameters") else torch.device("cpu")
    ids, num_slots = segment_ids(model, video.to(device), (h, w))
    return ids, num_slots, (size if size is not None else (h, w))


def segment_file(model: Any, path: str | os.PathLike, out_dir: str | os.PathLike, frames: int | None = None,
                 fps: float = 8.0, device: str | torch.device | None = None) -> Segmentation:
    """Segment the video at ``path`` and write ``masks.npy``, ``overlay.gif`` and ``overlay.mp4`` in ``out_dir``."""
    require(model, "segment")
    if frames is not None:
        check_range(frames, "--frames", low=1, integer=True)
    raw = read_video(path, num_frames=frames)
    ids, num_slots, model_size = segment_frames(model, raw, device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    masks_path = out / "masks.npy"
    tmp = out / f".masks.{os.getpid()}.npy"
    np.save(tmp, ids)
    os.replace(tmp, masks_path)
    panel = overlay_frames(raw, ids)
    gif = write_video(out / "overlay.gif", panel, fps=fps)
    mp4 = write_video(out / "overlay.mp4", panel, fps=fps)
    return Segmentation(masks_path, gif, mp4, raw.shape[0], (raw.shape[1], raw.shape[2]), model_size, num_slots)
