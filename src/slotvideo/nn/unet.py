"""The U-Net of MONet's attention network (Burgess et al. 2019), as its re-implementations build it.

seed-model-details.md section 5.1: blocks of ``Conv3x3 (no bias) -> InstanceNorm(affine) -> ReLU``; the
down path halves the resolution after every block but the last (nearest neighbour), a small MLP
(``flat -> hidden -> hidden -> flat``, ReLU) runs on the flattened bottleneck so every pixel sees the
whole image, and the up path mirrors the down path with skip connections (concatenated), doubling the
resolution after every block but the last. A 1x1 conv gives ``out_channels`` logits per pixel.

The bottleneck MLP has a fixed input size, so the network is built for one ``resolution``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.errors import ConfigError, check_range, check_shape
from slotvideo.nn.encoders import map_images, per_layer


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.InstanceNorm2d(out_channels, affine=True), nn.ReLU())


class UNet(nn.Module):
    """``[..., in_channels, H, W] -> [..., out_channels, H, W]`` for ``H = W = resolution``.

    ``channels`` gives one entry per block; ``len(channels) - 1`` halvings must divide ``resolution``.
    """

    def __init__(self, in_channels: int, out_channels: int, resolution: int,
                 channels: Sequence[int] = (32, 32, 64, 64, 64), mlp_hidden: int = 128) -> None:
        super().__init__()
        check_range(in_channels, "UNet in_channels", low=1, integer=True)
        check_range(out_channels, "UNet out_channels", low=1, integer=True)
        check_range(resolution, "UNet resolution", low=1, integer=True)
        check_range(mlp_hidden, "UNet mlp_hidden", low=1, integer=True)
        channels = per_layer(list(channels), len(channels), "UNet channels")
        if not channels:
            raise ConfigError("UNet channels must name at least one block")
        halvings = len(channels) - 1
        if resolution % (2 ** halvings):
            raise ConfigError(f"UNet resolution ({resolution}) must be divisible by 2**(len(channels)-1) = "
                              f"{2 ** halvings}")
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.bottleneck_size = resolution // 2 ** halvings
        self.down = nn.ModuleList()
        width = in_channels
        for c in channels:
            self.down.append(_block(width, c))
            width = c
        flat = channels[-1] * self.bottleneck_size ** 2
        self.mlp = nn.Sequential(nn.Linear(flat, mlp_hidden), nn.ReLU(), nn.Linear(mlp_hidden, mlp_hidden), nn.ReLU(),
                                 nn.Linear(mlp_hidden, flat), nn.ReLU())
        # Up block i sees the path from below (the MLP output, or up block i+1's output, which is made
        # as wide as skip i) concatenated with skip i, and outputs the width of skip i-1.
        self.up = nn.ModuleList()
        for i in reversed(range(len(channels))):
            self.up.append(_block(2 * channels[i], channels[max(i - 1, 0)]))
        self.head = nn.Conv2d(channels[0], out_channels, 1)

    def _net(self, x: Tensor) -> Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            skips.append(x)
            if i < len(self.down) - 1:
                x = F.interpolate(x, scale_factor=0.5, mode="nearest")
        x = self.mlp(x.flatten(1)).view_as(x)
        for j, block in enumerate(self.up):
            i = len(self.down) - 1 - j
            x = block(torch.cat([x, skips[i]], dim=1))
            if i > 0:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.head(x)

    def forward(self, images: Tensor) -> Tensor:
        r = self.resolution
        check_shape(images, f"... {self.in_channels} {r} {r}", "UNet input")
        return map_images(self._net, images, "UNet input", self.in_channels)
