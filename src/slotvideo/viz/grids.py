"""Reconstruction grids: input, reconstruction and one row per slot, one column per frame, as a PNG.

The per-slot rows show what each slot explains: with ``per_slot_rgb`` (a decoder's per-slot images)
a cell is ``mask * rgb + (1 - mask) * white``, the slot's contribution on a white page; without it the
cell is the soft mask itself in grey (white = owned by this slot).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image

from ..errors import ConfigError, ShapeError, check_range, check_shape


def _frames_shown(t: int, max_frames: int) -> torch.Tensor:
    """Evenly spaced frame indices, first and last included, so long clips are summarised end to end."""
    if t <= max_frames:
        return torch.arange(t)
    return torch.linspace(0, t - 1, max_frames).round().long()


def reconstruction_grid(video: torch.Tensor, recon: torch.Tensor, masks: torch.Tensor,
                        per_slot_rgb: torch.Tensor | None = None, max_frames: int = 8,
                        pad: int = 2) -> np.ndarray:
    """One uint8 ``[rows * (H + pad) + pad, cols * (W + pad) + pad, 3]`` picture of a clip's decomposition.

    ``video``, ``recon``: ``[T, 3, H, W]`` in [0, 1]; ``masks``: ``[T, K, H, W]`` soft;
    ``per_slot_rgb``: ``[T, K, 3, H, W]`` or None. Rows are input, reconstruction, then the K slots;
    columns are at most ``max_frames`` evenly spaced frames. Cells are separated by ``pad`` white pixels.
    """
    check_range(max_frames, "max_frames", low=1, integer=True)
    check_range(pad, "pad", low=0, integer=True)
    dims = check_shape(video, "T 3 H W", "video")
    check_shape(recon, "T 3 H W", "recon", **dims)
    dims.update(check_shape(masks, "T K H W", "masks", **dims))
    if per_slot_rgb is not None:
        check_shape(per_slot_rgb, "T K 3 H W", "per_slot_rgb", **dims)
    idx = _frames_shown(dims["T"], max_frames)
    with torch.no_grad():
        video, recon, masks = (x.detach().float().cpu()[idx] for x in (video, recon, masks))
        m = masks.unsqueeze(2)  # [n, K, 1, H, W]
        if per_slot_rgb is not None:
            slots = m * per_slot_rgb.detach().float().cpu()[idx] + (1 - m)
        else:
            slots = m.expand(-1, -1, 3, -1, -1)
        rows = torch.cat([video.unsqueeze(0), recon.unsqueeze(0), slots.transpose(0, 1)])  # [R, n, 3, H, W]
        rows = F.pad(rows.clamp(0, 1), (pad, 0, pad, 0), value=1.0)
        image = rearrange(rows, "r n c h w -> (r h) (n w) c")
        image = F.pad(image, (0, 0, 0, pad, 0, pad), value=1.0)  # close the right and bottom borders
    return image.mul(255).round().to(torch.uint8).numpy()


def media_grid(media: dict[str, torch.Tensor], max_frames: int = 8) -> np.ndarray:
    """:func:`reconstruction_grid` of the first clip of a model's ``media(batch)``: ``video`` and ``masks``,
    ``recon`` (the input when absent) and ``per_slot_rgb`` when the model gives them."""
    keys = ("video", "recon", "masks", "per_slot_rgb")
    first = {k: v[0].detach().float().cpu() for k, v in media.items() if k in keys}
    return reconstruction_grid(first["video"], first.get("recon", first["video"]), first["masks"],
                               per_slot_rgb=first.get("per_slot_rgb"), max_frames=max_frames)


def save_png(path: str | os.PathLike, image: np.ndarray | torch.Tensor) -> Path:
    """Write a uint8 ``[H, W, 3]`` or ``[H, W]`` image as PNG, atomically (temp file + rename)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"save_png writes .png files, got {path}")
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if (not isinstance(image, np.ndarray) or image.dtype != np.uint8
            or not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3))):
        desc = f"shape {list(image.shape)} and dtype {image.dtype}" if hasattr(image, "shape") else type(image).__name__
        raise ShapeError(f"image for {path} must be uint8 [H, W, 3] or [H, W], got {desc}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
