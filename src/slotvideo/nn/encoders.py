"""Image encoders: the Slot Attention CNN, SAVi's ResNet and a per-pixel MLP.

All take channel-first images ``[..., C, H, W]``; leading dims (batch, time, slots) are folded into one
batch dim for the convolutions and restored after, so video frames are encoded in one call.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from slotvideo.errors import ConfigError, check_range, check_shape
from slotvideo.nn.mlp import MLP, activation

NORMS = ("group", "batch", "layer", "none")


def map_images(fn: Callable[[Tensor], Tensor], x: Tensor, name: str = "images",
               channels: int | None = None) -> Tensor:
    """Apply ``fn`` (a ``[B, C, H, W]`` module) to ``x [..., C, H, W]`` with all leading dims folded into B."""
    check_shape(x, "... C H W", name, **({} if channels is None else {"C": channels}))
    y = fn(x.reshape(-1, *x.shape[-3:]))
    return y.reshape(*x.shape[:-3], *y.shape[1:])


def per_layer(value: int | Sequence[int], n: int, name: str) -> list[int]:
    """An int (same for every layer) or one entry per layer, checked to be one per layer."""
    values = [value] * n if isinstance(value, int) else list(value)
    if len(values) != n:
        raise ConfigError(f"{name} must be an int or have one entry per layer ({n}), got {len(values)}")
    for i, v in enumerate(values):
        check_range(v, f"{name}[{i}]", low=1, integer=True)
    return values


def same_padding(kernel_size: int, name: str) -> int:
    """Padding for TF-style 'SAME' output size ``ceil(H / stride)``; needs an odd kernel to be symmetric."""
    if kernel_size % 2 == 0:
        raise ConfigError(f"{name} must be odd for 'same' padding, got {kernel_size}")
    return kernel_size // 2


class SizePreservingCNN(nn.Module):
    """``(Conv kxk, 'same' padding -> activation) * len(channels)``: Slot Attention's encoder by default.

    With every stride 1 the output keeps the input resolution; a stride ``s`` divides it (rounding up).
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (64, 64, 64, 64),
                 kernel_sizes: int | Sequence[int] = 5, strides: int | Sequence[int] = 1,
                 activation: str = "relu", final_activation: bool = True) -> None:
        super().__init__()
        check_range(in_channels, "SizePreservingCNN in_channels", low=1, integer=True)
        channels = per_layer(list(channels), len(channels), "SizePreservingCNN channels")
        if not channels:
            raise ConfigError("SizePreservingCNN channels must name at least one layer")
        kernels = per_layer(kernel_sizes, len(channels), "SizePreservingCNN kernel_sizes")
        strides = per_layer(strides, len(channels), "SizePreservingCNN strides")
        self.in_channels, self.out_channels = in_channels, channels[-1]
        layers: list[nn.Module] = []
        width = in_channels
        for i, (c, k, s) in enumerate(zip(channels, kernels, strides)):
            layers.append(nn.Conv2d(width, c, k, stride=s, padding=same_padding(k, f"kernel_sizes[{i}]")))
            if final_activation or i < len(channels) - 1:
                layers.append(_activation(activation))
            width = c
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return map_images(self.net, images, "SizePreservingCNN input", self.in_channels)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of ``[B, C, H, W]`` (Flax's LayerNorm on NHWC)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


def norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)  # Flax default 32 groups, if they divide C
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return ChannelLayerNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be one of {list(NORMS)}, got {kind!r}")


class BasicBlock(nn.Module):
    """ResNet V1 basic block: ``relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))``.

    The second norm's scale starts at 0 (as in SAVi), so each block starts as the identity map and
    deep stacks train from the start; with ``norm="none"`` there is no scale to zero.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=bias)
        self.norm1 = norm2d(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=bias)
        self.norm2 = norm2d(norm, out_channels)
        if getattr(self.norm2, "weight", None) is not None:
            nn.init.zeros_(self.norm2.weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=bias),
                                          norm2d(norm, out_channels))
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        return self.relu(self.norm2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet V1 of basic blocks (SAVi's encoder; ResNet-18/34 layouts via ``blocks``).

    ``small_inputs`` replaces the 7x7/stride-2 stem and its 3x3/stride-2 max-pool by a 3x3/stride-1 conv,
    keeping resolution for 64x64-128x128 frames. Output stride = stem (1 or 4) x product of ``strides``.
    """

    def __init__(self, in_channels: int, stage_channels: Sequence[int] = (64, 128, 256, 512),
                 blocks: int | Sequence[int] = (2, 2, 2, 2), strides: int | Sequence[int] = (2, 2, 2, 1),
                 norm: str = "group", small_inputs: bool = True, stem_channels: int | None = None) -> None:
        super().__init__()
        check_range(in_channels, "ResNet in_channels", low=1, integer=True)
        if norm not in NORMS:
            raise ConfigError(f"ResNet norm must be one of {list(NORMS)}, got {norm!r}")
        stage_channels = per_layer(list(stage_channels), len(stage_channels), "ResNet stage_channels")
        if not stage_channels:
            raise ConfigError("ResNet stage_channels must name at least one stage")
        blocks = per_layer(blocks, len(stage_channels), "ResNet blocks")
        strides = per_layer(strides, len(stage_channels), "ResNet strides")
        stem = stage_channels[0] if stem_channels is None else stem_channels
        check_range(stem, "ResNet stem_channels", low=1, integer=True)
        self.in_channels, self.out_channels = in_channels, stage_channels[-1]
        self.stride = (1 if small_inputs else 4) * math.prod(strides)
        conv = (nn.Conv2d(in_channels, stem, 3, 1, 1, bias=norm == "none") if small_inputs
                else nn.Conv2d(in_channels, stem, 7, 2, 3, bias=norm == "none"))
        layers: list[nn.Module] = [conv, norm2d(norm, stem), nn.ReLU()]
        if not small_inputs:
            layers.append(nn.MaxPool2d(3, 2, 1))
        width = stem
        for c, n, s in zip(stage_channels, blocks, strides):
            for i in range(n):
                layers.append(BasicBlock(width, c, s if i == 0 else 1, norm))
                width = c
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return map_images(self.net, images, "ResNet input", self.in_channels)


class PixelMLP(nn.Module):
    """The same MLP at every pixel (= a stack of 1x1 convs): ``[..., C, H, W] -> [..., out, H, W]``.

    Run as :class:`MLP` on channel-last pixels rather than as 1x1 convs: same function, one MLP class.
    """

    def __init__(self, in_channels: int, hidden: int | Sequence[int], out_channels: int,
                 activation: str = "relu") -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.mlp = MLP(in_channels, [hidden] if isinstance(hidden, int) else hidden, out_channels,
                       activation=activation)

    def forward(self, features: Tensor) -> Tensor:
        check_shape(features, "... C H W", "PixelMLP input", C=self.in_channels)
        return self.mlp(features.movedim(-3, -1)).movedim(-1, -3)


_activation = activation
