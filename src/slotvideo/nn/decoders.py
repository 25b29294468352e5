"""Spatial broadcast decoder (Watters et al. 2019): each slot is decoded alone to RGB + a mask logit.

Two layouts, both from the reference code:
- size-preserving (IODINE, OP3, MONet-style): broadcast to the full resolution, stride-1 'same' convs;
- upsampling (Slot Attention): broadcast to a small grid (e.g. 8x8), then stride-2 transposed convs.
The masks compete through a softmax over slots, and the reconstruction is the mask-weighted sum.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from slotvideo.errors import ConfigError, check_range, check_shape
from slotvideo.nn.encoders import per_layer, same_padding
from slotvideo.nn.mlp import activation as make_activation
from slotvideo.nn.position import FourierSpatialBasis, SoftPositionEmbed

POSITIONS = ("soft", "linear", "fourier")


@dataclass
class Decoded:
    """What :class:`SpatialBroadcastDecoder` returns.

    ``rgb [..., K, C, H, W]`` and ``mask_logits [..., K, 1, H, W]`` per slot; ``masks [..., K, H, W]``
    (softmax over K, the predicted-mask contract of DESIGN.md); ``recon [..., C, H, W]``.
    """

    rgb: Tensor
    mask_logits: Tensor
    masks: Tensor
    recon: Tensor


def compose(rgb: Tensor, mask_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Softmax the mask logits over slots and mix: ``rgb [..., K, C, H, W]``, ``mask_logits [..., K, 1, H, W]``
    -> ``masks [..., K, H, W]``, ``recon [..., C, H, W]``."""
    sizes = check_shape(rgb, "... K C H W", "rgb")
    check_shape(mask_logits, "... K 1 H W", "mask_logits", K=sizes["K"], H=sizes["H"], W=sizes["W"])
    masks = mask_logits.softmax(dim=-4)
    return masks.squeeze(-3), (masks * rgb).sum(dim=-4)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ConfigError(f"{name} must be an int or (height, width), got {value!r}")
    for v in pair:
        check_range(v, name, low=1, integer=True)
    return pair  # type: ignore[return-value]


def doublings(resolution: int, broadcast_resolution: int) -> int | None:
    """How many times a stride-2 upsampling doubles ``broadcast_resolution`` to ``resolution``; None when
    ``resolution`` is not ``broadcast_resolution`` times a power of two."""
    ratio = resolution // broadcast_resolution if resolution % broadcast_resolution == 0 else 0
    return ratio.bit_length() - 1 if ratio >= 1 and not ratio & (ratio - 1) else None


def check_broadcast_config(resolution: int, broadcast_resolution: int, num_layers: int,
                           broadcast_name: str = "model.broadcast_resolution") -> None:
    """A model config's upsampling decoder must fit: ``model.resolution`` is the broadcast side (the field
    ``broadcast_name``) times a power of two, with one transposed conv (one ``model.decoder_channels``
    entry) per doubling."""
    num_up = doublings(resolution, broadcast_resolution)
    if num_up is None:
        raise ConfigError(f"model.resolution ({resolution}) must be {broadcast_name} ({broadcast_resolution}) "
                          "times a power of two")
    if num_up > num_layers:
        raise ConfigError(f"model.decoder_channels needs at least {num_up} layers to upsample "
                          f"{broadcast_resolution} to {resolution}, got {num_layers}")


class SpatialBroadcastDecoder(nn.Module):
    """Decode latents ``[..., K, latent_dim]`` to per-slot RGB and mask logits at ``resolution``.

    ``broadcast_resolution=None`` broadcasts at full resolution and keeps it (stride-1 convs); otherwise
    the first ``log2(resolution / broadcast_resolution)`` layers of ``channels`` are stride-2 transposed
    convs (the ratio must be the same power of two on both axes). Positions: ``"soft"`` adds
    :class:`SoftPositionEmbed`, ``"linear"`` concatenates x, y in [-1, 1], ``"fourier"`` also
    concatenates ``num_frequencies`` octaves of sin/cos. A last ``final_kernel_size`` conv gives
    ``out_channels`` + 1 channels: RGB first, the mask logit last.

    All slots of all frames go through the convs as one batch; ``chunk_size`` (slots per conv call)
    bounds peak memory, and ``checkpoint=True`` recomputes each chunk in backward so training memory is
    bounded too.

    When the first layer is a stride-1 conv (no upsampling), it is not run on the broadcast grid: a latent
    is the same at every pixel, so ``conv([z, pos]) = sum over kernel taps of (W_tap z) * inside_tap + conv(pos)``
    exactly, where ``inside_tap`` marks the pixels whose tap falls inside the zero-padded frame. That is one
    ``[M*C, k*k] @ [k*k, H*W]`` product plus one conv of the position features shared by all slots, instead
    of a conv over ``M`` copies of ``latent_dim + extra`` channels (the decoder's costliest layer). Same
    parameters, same result to float rounding (tests/nn/test_decoders.py checks both paths).
    """

    def __init__(self, latent_dim: int, resolution: int | Sequence[int], out_channels: int = 3,
                 channels: Sequence[int] = (64, 64, 64, 64), kernel_sizes: int | Sequence[int] = 5,
                 broadcast_resolution: int | Sequence[int] | None = None, position: str = "soft",
                 num_frequencies: int = 4, activation: str = "relu", final_kernel_size: int = 3,
                 rgb_activation: str | None = None, chunk_size: int | None = None,
                 checkpoint: bool = False) -> None:
        super().__init__()
        check_range(latent_dim, "SpatialBroadcastDecoder latent_dim", low=1, integer=True)
        check_range(out_channels, "SpatialBroadcastDecoder out_channels", low=1, integer=True)
        self.latent_dim, self.out_channels = latent_dim, out_channels
        self.resolution = _pair(resolution, "SpatialBroadcastDecoder resolution")
        self.broadcast_resolution = (self.resolution if broadcast_resolution is None
                                     else _pair(broadcast_resolution, "SpatialBroadcastDecoder broadcast_resolution"))
        num_up = self._num_upsamplings()
        channels = per_layer(list(channels), len(channels), "SpatialBroadcastDecoder channels")
        if len(channels) < num_up:
            raise ConfigError(f"SpatialBroadcastDecoder channels needs >= {num_up} layers to upsample "
                              f"{self.broadcast_resolution} to {self.resolution}, got {len(channels)}")
        kernels = per_layer(kernel_sizes, len(channels), "SpatialBroadcastDecoder kernel_sizes")
        if rgb_activation not in (None, "sigmoid"):
            raise ConfigError("SpatialBroadcastDecoder rgb_activation must be None or 'sigmoid', "
                              f"got {rgb_activation!r}")
        self.rgb_activation = rgb_activation
        if chunk_size is not None:
            check_range(chunk_size, "SpatialBroadcastDecoder chunk_size", low=1, integer=True)
        self.chunk_size, self.checkpoint = chunk_size, checkpoint

        if position == "soft":
            self.position: nn.Module = SoftPositionEmbed(latent_dim)
            width = latent_dim
        elif position in ("linear", "fourier"):
            self.position = FourierSpatialBasis(num_frequencies if position == "fourier" else 0)
            width = latent_dim + self.position.extra_channels
        else:
            raise ConfigError(f"SpatialBroadcastDecoder position must be one of {list(POSITIONS)}, got {position!r}")

        layers: list[nn.Module] = []
        for i, (c, k) in enumerate(zip(channels, kernels)):
            pad = same_padding(k, f"SpatialBroadcastDecoder kernel_sizes[{i}]")
            layers.append(nn.ConvTranspose2d(width, c, k, 2, pad, output_padding=1) if i < num_up
                          else nn.Conv2d(width, c, k, 1, pad))
            layers.append(make_activation(activation))
            width = c
        pad = same_padding(final_kernel_size, "SpatialBroadcastDecoder final_kernel_size")
        layers.append(nn.Conv2d(width, out_channels + 1, final_kernel_size, 1, pad))
        self.net = nn.Sequential(*layers)
        self.separable_first = num_up == 0
        if self.separable_first:    # [k*k, h*w]: 1 where a kernel tap falls inside the zero-padded frame
            self.register_buffer("inside", self._inside_taps(self.net[0]), persistent=False)

    def _inside_taps(self, conv: nn.Conv2d) -> Tensor:
        h, w = self.broadcast_resolution
        kh, kw = conv.kernel_size
        taps = torch.eye(kh * kw).reshape(kh * kw, 1, kh, kw)
        return F.conv2d(torch.ones(1, 1, h, w), taps, padding=conv.padding).reshape(kh * kw, h * w)

    def _num_upsamplings(self) -> int:
        counts = {doublings(r, b) for r, b in zip(self.resolution, self.broadcast_resolution)}
        if len(counts) != 1 or None in counts:
            raise ConfigError(f"SpatialBroadcastDecoder resolution {self.resolution} must be the broadcast_resolution "
                              f"{self.broadcast_resolution} times one power of two on both axes")
        return counts.pop()

    def _decode_flat(self, latents: Tensor) -> Tensor:
        """``[M, D] -> [M, out_channels + 1, H, W]``."""
        if self.separable_first:
            return self.net[1:](self.first_layer(latents))
        return self.net(self.position(self.broadcast(latents)))

    def broadcast(self, latents: Tensor) -> Tensor:
        """``[M, D] -> [M, D, h, w]``: each latent tiled over the broadcast grid."""
        return latents[:, :, None, None].expand(-1, -1, *self.broadcast_resolution)

    def first_layer(self, latents: Tensor) -> Tensor:
        """The first conv on the position-augmented broadcast grid, ``[M, D] -> [M, C, h, w]``, computed
        without building the grid (class docstring)."""
        conv: nn.Conv2d = self.net[0]  # type: ignore[assignment]
        h, w = self.broadcast_resolution
        d = self.latent_dim
        if isinstance(self.position, FourierSpatialBasis):       # concatenated: [W_z | W_pos]
            weight_z, weight_pos = conv.weight[:, :d], conv.weight[:, d:]
            positions = self.position.basis(h, w, latents.device, latents.dtype)
        else:                                                    # added (soft): W acts on both
            weight_z = weight_pos = conv.weight
            positions = self.position.embedding(h, w, latents.device, latents.dtype)
        fixed = F.conv2d(positions[None], weight_pos, conv.bias, padding=conv.padding)     # [1, C, h, w]
        per_tap = torch.einsum("m d, c d t -> m c t", latents, weight_z.flatten(2))      # [M, C, k*k]
        return (per_tap @ self.inside.to(per_tap.dtype)).reshape(latents.shape[0], -1, h, w) + fixed

    def forward(self, latents: Tensor, chunk_size: int | None = None) -> Decoded:
        check_shape(latents, "... K D", "SpatialBroadcastDecoder latents", D=self.latent_dim)
        chunk_size = self.chunk_size if chunk_size is None else chunk_size
        flat = latents.reshape(-1, self.latent_dim)
        chunks = flat.split(chunk_size) if chunk_size else (flat,)
        if self.checkpoint and torch.is_grad_enabled():
            out = [checkpoint(self._decode_flat, c, use_reentrant=False) for c in chunks]
        else:
            out = [self._decode_flat(c) for c in chunks]
        decoded = torch.cat(out).reshape(*latents.shape[:-1], self.out_channels + 1, *self.resolution)
        rgb, mask_logits = decoded.split([self.out_channels, 1], dim=-3)
        if self.rgb_activation == "sigmoid":
            rgb = rgb.sigmoid()
        masks, recon = compose(rgb, mask_logits)
        return Decoded(rgb, mask_logits, masks, recon)
