"""Position encodings: sinusoidal and Fourier time encodings, coordinate grids and spatial encodings."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from slotvideo.errors import ConfigError, check_range, check_shape


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


def coordinate_grid(height: int, width: int, low: float = 0.0, high: float = 1.0,
                    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Coordinate grid ``[H, W, 2]``: channel 0 is x (along W), channel 1 is y (along H).

    Both run from ``low`` to ``high`` inclusive (``linspace``), as in the Slot Attention code; a size-1
    axis sits at ``low``.
    """
    check_range(height, "coordinate_grid height", low=1, integer=True)
    check_range(width, "coordinate_grid width", low=1, integer=True)
    ys = torch.linspace(low, high, height, device=device, dtype=dtype)
    xs = torch.linspace(low, high, width, device=device, dtype=dtype)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y], dim=-1)


def fourier_features(coords: Tensor, num_frequencies: int) -> Tensor:
    """``[sin(2^i pi c), cos(2^i pi c)]`` for i < num_frequencies, per coordinate: ``[..., C] -> [..., C * 2F]``.

    Octave frequencies (NeRF-style) resolve detail at every scale of a coordinate in [-1, 1]; the layout
    is all sines (coordinate-major, frequency-minor) then all cosines.
    """
    freqs = math.pi * 2.0 ** torch.arange(num_frequencies, device=coords.device, dtype=coords.dtype)
    angles = (coords.unsqueeze(-1) * freqs).flatten(-2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def fourier_time_encoding(times: Tensor, num_frequencies: int) -> Tensor:
    """Fourier features of times already scaled to [-1, 1] (e.g. frame index over clip length): ``[...] -> [..., 2F]``.

    Unlike :func:`sinusoidal_encoding` (geometric timescales for integer positions up to ~10^4), these are
    octave frequencies for a bounded, continuous time axis.
    """
    return fourier_features(times.unsqueeze(-1), num_frequencies)


def _check_feature_map(features: Tensor, name: str, channels: int | None = None) -> tuple[int, int]:
    sizes = check_shape(features, "... C H W", name, **({} if channels is None else {"C": channels}))
    return sizes["H"], sizes["W"]


class SoftPositionEmbed(nn.Module):
    """Slot Attention's learned position embedding: ``Linear([x, y, 1-x, 1-y])`` ADDED to features.

    Convention: channel-first features ``[..., dim, H, W]`` (what our CNN encoders return and the
    broadcast decoder convolves); coordinates are in [0, 1].
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        check_range(dim, "SoftPositionEmbed dim", low=1, integer=True)
        self.dim = dim
        self.proj = nn.Linear(4, dim)

    def embedding(self, height: int, width: int, device: torch.device | None = None,
                  dtype: torch.dtype = torch.float32) -> Tensor:
        """The embedding alone, ``[dim, H, W]``."""
        grid = coordinate_grid(height, width, 0.0, 1.0, device=device, dtype=dtype)
        return self.proj(torch.cat([grid, 1.0 - grid], dim=-1)).permute(2, 0, 1)

    def forward(self, features: Tensor) -> Tensor:
        height, width = _check_feature_map(features, "SoftPositionEmbed features", self.dim)
        return features + self.embedding(height, width, features.device, features.dtype)


class FourierSpatialBasis(nn.Module):
    """Fixed spatial features CONCATENATED to channel-first features ``[..., C, H, W] -> [..., C + extra, H, W]``.

    ``extra = 4 * num_frequencies`` (sin/cos of x and y, see :func:`fourier_features`) ``+ 2`` when
    ``include_coordinates`` adds the raw linear coordinates. Coordinates span ``[low, high]``
    (default [-1, 1]). ``num_frequencies=0`` with coordinates gives the plain linear coordinate
    channels of the IODINE / MONet decoders.
    """

    def __init__(self, num_frequencies: int, include_coordinates: bool = True,
                 low: float = -1.0, high: float = 1.0) -> None:
        super().__init__()
        check_range(num_frequencies, "FourierSpatialBasis num_frequencies", low=0, integer=True)
        if num_frequencies == 0 and not include_coordinates:
            raise ConfigError("FourierSpatialBasis needs num_frequencies >= 1 or include_coordinates=True")
        self.num_frequencies = num_frequencies
        self.include_coordinates = include_coordinates
        self.low, self.high = low, high
        self.extra_channels = 4 * num_frequencies + (2 if include_coordinates else 0)

    def basis(self, height: int, width: int, device: torch.device | None = None,
              dtype: torch.dtype = torch.float32) -> Tensor:
        """The features alone, ``[extra_channels, H, W]``."""
        grid = coordinate_grid(height, width, self.low, self.high, device=device, dtype=dtype)
        parts = [grid] if self.include_coordinates else []
        if self.num_frequencies:
            parts.append(fourier_features(grid, self.num_frequencies))
        return torch.cat(parts, dim=-1).permute(2, 0, 1)

    def forward(self, features: Tensor) -> Tensor:
        height, width = _check_feature_map(features, "FourierSpatialBasis features")
        basis = self.basis(height, width, features.device, features.dtype)
        return torch.cat([features, basis.expand(*features.shape[:-3], -1, -1, -1)], dim=-3)
