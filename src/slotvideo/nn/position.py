"""Position encodings: sinusoidal time encodings (and, below, spatial encodings)."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def sinusoidal_encoding(positions: Tensor, dim: int, max_timescale: float = 10000.0) -> Tensor:
    """Transformer sinusoids ``[sin(p / s_i), cos(p / s_i)]`` for positions ``[...]`` -> ``[..., dim]``.

    ``s_i = max_timescale ** (2i / dim)``; the sines fill the first half, the cosines the second
    (the Transformer-XL layout). ``dim`` must be even.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal_encoding: dim must be even, got {dim}")
    inv_freq = torch.exp(-math.log(max_timescale) * torch.arange(0, dim, 2, dtype=torch.float32,
                                                                 device=positions.device) / dim)
    angles = positions.to(torch.float32).unsqueeze(-1) * inv_freq
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
