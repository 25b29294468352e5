"""The six masking schemes of Aloe's self-supervised loss (section 2.1, Figure 2).

On a ``[T, K]`` grid of object tokens (frame ``t``, slot ``i``) a scheme draws two boolean tensors:
``keep`` (the paper's ``m_ti = 1``: the token enters the transformer unchanged; ``False`` replaces it by the
learned mask vector) and ``target`` (``tau_ti = 1``: its latent is predicted and scored). Targets are always
masked tokens.

* ``one_per_frame`` (a): exactly one slot per frame is masked and is the target (no slot ambiguity).
* ``uniform`` (b): every token is masked independently with probability ``mask_prob``; ``tau = 1 - m``.
* With a buffer of ``buffer_frames`` frames between context and ``target_frames`` target frames (buffer
  tokens are masked and are not targets):

  - ``predict_objects`` (c) / ``predict_scene`` (d): the context is strictly before the targets: frames
    ``[0, c)`` are kept, ``[c, c + b)`` is the buffer, ``[c + b, c + b + n)`` are the target frames, and any
    later frames are masked too (never seen, never scored);
  - ``infill_objects`` (e) / ``infill_scene`` (f): the context surrounds the targets: ``[0, c)`` kept, buffer,
    target frames, buffer, then kept again to the end.

  ``*_objects`` scores one random slot per target frame (the other slots there are masked, not scored);
  ``*_scene`` scores every slot of the target frames. The start ``c >= 1`` is drawn uniformly per video
  (so there is always context; for infilling there is context after the second buffer too).

Vectorised over the batch: no loop over videos, frames or slots.
"""
from __future__ import annotations

import torch
from torch import Tensor

from slotvideo.errors import ConfigError, check_range

SCHEMES = ("one_per_frame", "uniform", "predict_objects", "predict_scene", "infill_objects", "infill_scene")


def min_frames(scheme: str, target_frames: int, buffer_frames: int) -> int:
    """The fewest frames a video needs for ``scheme`` (one context frame on each required side)."""
    if scheme.startswith("predict"):
        return 1 + buffer_frames + target_frames
    if scheme.startswith("infill"):
        return 2 + 2 * buffer_frames + target_frames
    return 1


def check_scheme(scheme: str, frames: int | None = None, target_frames: int = 1, buffer_frames: int = 0,
                 mask_prob: float = 0.15, key: str = "masking") -> None:
    """Raise a ConfigError naming ``key`` when the scheme or its sizes are impossible."""
    if scheme not in SCHEMES:
        raise ConfigError(f"{key}: scheme must be one of {list(SCHEMES)}, got {scheme!r}")
    check_range(target_frames, f"{key} target_frames", low=1, integer=True)
    check_range(buffer_frames, f"{key} buffer_frames", low=0, integer=True)
    check_range(mask_prob, f"{key} mask_prob", low=0.0, high=1.0)
    if frames is not None and frames < min_frames(scheme, target_frames, buffer_frames):
        raise ConfigError(f"{key}: scheme {scheme!r} with target_frames={target_frames} and buffer_frames="
                          f"{buffer_frames} needs videos of >= {min_frames(scheme, target_frames, buffer_frames)} "
                          f"frames, got {frames}")


def sample_masks(scheme: str, batch: int, frames: int, objects: int, *, mask_prob: float = 0.15,
                 target_frames: int = 1, buffer_frames: int = 0, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``keep``, ``target``: bool ``[batch, frames, objects]`` for one of :data:`SCHEMES`."""
    check_scheme(scheme, frames, target_frames, buffer_frames, mask_prob)
    shape = (batch, frames, objects)
    slot = torch.arange(objects, device=device)

    def one_slot_per_frame() -> Tensor:
        pick = torch.randint(objects, (batch, frames, 1), device=device, generator=generator)
        return slot == pick                                            # [B, T, K]

    if scheme == "one_per_frame":
        target = one_slot_per_frame()
        return ~target, target
    if scheme == "uniform":
        target = torch.rand(shape, device=device, generator=generator) < mask_prob
        return ~target, target

    n, b = target_frames, buffer_frames
    predict = scheme.startswith("predict")
    last_start = frames - b - n if predict else frames - 2 * b - n - 1      # c in [1, last_start]
    start = torch.randint(1, last_start + 1, (batch, 1), device=device, generator=generator)
    t = torch.arange(frames, device=device)[None]                          # [1, T]
    in_target = (t >= start + b) & (t < start + b + n)                     # [B, T]
    context = t < start
    if not predict:
        context = context | (t >= start + 2 * b + n)
    keep = context[:, :, None].expand(shape)
    if scheme.endswith("scene"):
        target = in_target[:, :, None].expand(shape)
    else:
        target = in_target[:, :, None] & one_slot_per_frame()
    return keep.clone(), target.clone()
