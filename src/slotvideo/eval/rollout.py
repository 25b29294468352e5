"""Continue a video with a trained model: predicted frames and slot masks, as arrays and a GIF.

Works for any model with ``rollout(video [B, T, 3, H, W], steps) -> Output`` whose ``recon`` is
``[B, steps, 3, H, W]`` (and, when it has them, ``masks [B, steps, K, H, W]``). Several samples are
drawn by calling ``rollout`` again with a different seed each time: a stochastic model (sampled
initial slots, sampled transitions) gives different futures, a deterministic one the same future.
The GIF shows the context frames, then the predictions, with the samples side by side.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.video_io import read_video, resize_frames, to_tensor, to_uint8, write_video
from ..errors import ShapeError, check_range
from ..viz.overlay import colorize_segmentation, side_by_side, upscale
from ..models.base import input_resolution
from .segment import MIN_DISPLAY_HEIGHT, require


@dataclass
class Rollout:
    """What :func:`rollout_file` wrote."""

    frames: Path        # uint8 [S, steps, H, W, 3] predicted frames at the model's resolution
    masks: Path | None  # int32 [S, steps, H, W] predicted slot ids, when the model predicts masks
    gif: Path
    context: int
    steps: int
    samples: int


@torch.no_grad()
def rollout_samples(model: Any, video: torch.Tensor, steps: int, samples: int = 1, seed: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``samples`` futures of ``video [1, T, 3, H, W]``: frames ``[S, steps, 3, H, W]`` and masks ``[S, steps, K, H, W]``."""
    require(model, "rollout")
    check_range(steps, "--steps", low=1, integer=True)
    check_range(samples, "--samples", low=1, integer=True)
    frames, masks = [], []
    for s in range(samples):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + s)
            out = model.rollout(video, steps)
        recon = getattr(out, "recon", None)
        if not isinstance(recon, torch.Tensor) or recon.dim() != 5 or tuple(recon.shape[:3]) != (1, steps, 3):
            got = list(recon.shape) if isinstance(recon, torch.Tensor) else type(recon).__name__
            raise ShapeError(f"model.rollout must return an Output with recon [1, {steps}, 3, H, W], got {got}")
        frames.append(recon[0].float().clamp(0, 1).cpu())
        m = getattr(out, "masks", None)
        masks.append(m[0].float().cpu() if isinstance(m, torch.Tensor) else None)
    has_masks = all(m is not None for m in masks)
    return torch.stack(frames), (torch.stack(masks) if has_masks else None)  # type: ignore[arg-type]


def rollout_panel(context: np.ndarray, frames: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    """GIF frames: context, then predictions; samples left to right, each with its slot colours below.

    ``context`` uint8 ``[C, H, W, 3]``; ``frames`` uint8 ``[S, steps, H, W, 3]``; ``ids`` ``[S, steps, H, W]``.
    During the context every sample panel shows the input; the masks row is black there.
    """
    samples, steps = frames.shape[:2]
    shown = np.concatenate([np.broadcast_to(context, (samples, *context.shape)), frames], axis=1)
    panels = [shown[s] for s in range(samples)]
    if ids is not None:
        colours = colorize_segmentation(ids + 1)  # [S, steps, H, W, 3]; +1 keeps every slot off black
        blank = np.zeros((samples, context.shape[0], *colours.shape[2:]), dtype=np.uint8)
        colours = np.concatenate([blank, colours], axis=1)
        panels = [np.concatenate([shown[s], colours[s]], axis=1) for s in range(samples)]
    panel = side_by_side(*panels, gap=2)
    scale = max(1, -(-MIN_DISPLAY_HEIGHT // frames.shape[2]))
    return upscale(panel, scale) if scale > 1 else panel


def rollout_file(model: Any, path: str | os.PathLike, out_dir: str | os.PathLike, steps: int,
                 context: int | None = None, samples: int = 1, fps: float = 6.0, seed: int = 0,
                 device: str | torch.device = "cpu") -> Rollout:
    """Read ``context`` frames of ``path`` (default: all), predict ``steps`` more, write arrays and a GIF."""
    require(model, "rollout")
    check_range(steps, "--steps", low=1, integer=True)
    check_range(samples, "--samples", low=1, integer=True)
    if context is not None:
        check_range(context, "--context", low=1, integer=True)
    raw = read_video(path, num_frames=context)
    size = input_resolution(model)
    resized = resize_frames(raw, size) if size is not None else raw
    video = to_tensor(resized).unsqueeze(0).to(device)
    frames, masks = rollout_samples(model, video, steps, samples, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames_u8 = to_uint8(frames)
    frames_path = _save(out / "frames.npy", frames_u8)
    ids = masks.argmax(dim=2).to(torch.int32).numpy() if masks is not None else None
    masks_path = _save(out / "masks.npy", ids) if ids is not None else None
    gif = write_video(out / "rollout.gif", rollout_panel(resized, frames_u8, ids), fps=fps)
    return Rollout(frames_path, masks_path, gif, raw.shape[0], steps, samples)


def _save(path: Path, array: np.ndarray) -> Path:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
    return path
