"""Transformer-XL relative position self-attention (Dai et al. 2019), as Aloe uses it.

The attention logit of query ``i`` and key ``j`` is

    (q_i / sqrt(Dh) + u) . k_j  +  (q_i / sqrt(Dh) + v) . W_r R_{i-j}

with ``R`` the sinusoid of the offset ``i - j`` (width = model width, max timescale 10000), ``u`` and ``v``
the per-layer ``r_w_bias`` / ``r_r_bias`` and ``W_r`` a bias-free projection. Queries are scaled
*before* the biases are added, as in Aloe. The content term runs inside SDPA (queries ``q + u``,
scale 1); the position term enters it as an additive bias.

By default every pair gets its true offset ``i - j`` (positive and negative). ``aloe_rel_shift=True``
instead reproduces the literal Transformer-XL ``rel_shift`` that Aloe applies to *un-masked* attention
(seed-model-details.md section 1.4): exact for keys at or before the query, but key ``i+1`` gets a zero
logit and keys ``j >= i+2`` get query ``i+1``'s logit for distance ``N+1-(j-i)``. Use it only to load
Aloe checkpoints.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.errors import ConfigError, check_range
from slotvideo.nn.attention import MultiHeadAttention, split_heads
from slotvideo.nn.position import sinusoidal_encoding


def exact_relative_logits(logits: Tensor) -> Tensor:
    """``[..., N, 2N-1]`` logits whose column ``c`` holds offset ``N-1-c`` -> ``[..., N, N]`` at offset ``i-j``.

    Entry ``(i, j)`` sits at column ``N-1-i+j``, i.e. at flat index ``(N-1) + i*(2N-2) + j``: after
    dropping the first ``N-1`` flat entries, rows of length ``2N-2`` start exactly at the wanted columns.
    """
    n = logits.shape[-2]
    flat = logits.flatten(-2)[..., n - 1: n - 1 + n * (2 * n - 2)]
    return flat.unflatten(-1, (n, 2 * n - 2))[..., :n] if n > 1 else logits


def aloe_rel_shift(logits: Tensor) -> Tensor:
    """The literal Transformer-XL shift of ``[..., N, N]`` logits whose column ``c`` holds distance ``N-1-c``.

    Pad one zero column in front, read the ``N x (N+1)`` block as ``(N+1) x N``, drop the first row.
    """
    n = logits.shape[-1]
    padded = F.pad(logits, (1, 0))
    return padded.reshape(*logits.shape[:-2], n + 1, n)[..., 1:, :].reshape(logits.shape)


class RelativeMultiHeadAttention(nn.Module):
    """Self-attention over ``[..., N, D]`` with Transformer-XL relative positions along ``N``."""

    def __init__(self, dim: int, num_heads: int, head_dim: int | None = None, dropout: float = 0.0,
                 position_dropout: float | None = None, max_timescale: float = 10000.0,
                 aloe_rel_shift: bool = False, qkv_bias: bool = False, out_bias: bool = True) -> None:
        super().__init__()
        if dim % 2:
            raise ConfigError(f"RelativeMultiHeadAttention dim must be even (sinusoid width), got {dim}")
        self.attn = MultiHeadAttention(dim, num_heads, head_dim, qkv_bias=qkv_bias, out_bias=out_bias,
                                       dropout=dropout)
        position_dropout = dropout if position_dropout is None else position_dropout
        check_range(position_dropout, "RelativeMultiHeadAttention position_dropout", low=0.0, high=1.0)
        check_range(max_timescale, "RelativeMultiHeadAttention max_timescale", low=1.0)
        heads, head_dim = self.attn.num_heads, self.attn.head_dim
        self.dim, self.max_timescale, self.aloe_rel_shift = dim, max_timescale, aloe_rel_shift
        self.to_r = nn.Linear(dim, heads * head_dim, bias=False)
        self.r_w_bias = nn.Parameter(torch.empty(heads, head_dim))
        self.r_r_bias = nn.Parameter(torch.empty(heads, head_dim))
        # Aloe initialises both biases with TF's default (Glorot uniform).
        nn.init.xavier_uniform_(self.r_w_bias)
        nn.init.xavier_uniform_(self.r_r_bias)
        self.position_dropout = nn.Dropout(position_dropout)

    def relative_keys(self, n: int, device: torch.device) -> Tensor:
        """Projected sinusoids ``[H, P, Dh]``: offsets ``N-1 .. -(N-1)`` (exact) or ``N-1 .. 0`` (Aloe)."""
        low = 0 if self.aloe_rel_shift else -(n - 1)
        offsets = torch.arange(n - 1, low - 1, -1, device=device)
        r = self.position_dropout(sinusoidal_encoding(offsets, self.dim, self.max_timescale))
        return split_heads(self.to_r(r.to(self.to_r.weight.dtype)), self.attn.num_heads)

    def position_bias(self, q: Tensor) -> Tensor:
        """The position term ``(q_i + v) . W_r R_{i-j}`` for scaled query heads ``[..., H, N, Dh]`` -> ``[..., H, N, N]``."""
        r = self.relative_keys(q.shape[-2], q.device)
        logits = (q + self.r_r_bias[:, None, :]) @ r.transpose(-1, -2)
        return aloe_rel_shift(logits) if self.aloe_rel_shift else exact_relative_logits(logits)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None, attn_bias: Tensor | None = None,
                ) -> Tensor:
        """``attn_bias`` (broadcastable to ``[..., H, N, N]``) is added to the position term."""
        q, k, v = self.attn.project(x)
        q = q * self.attn.head_dim ** -0.5
        bias = self.position_bias(q)
        if attn_bias is not None:
            bias = bias + attn_bias
        return self.attn.attend(q + self.r_w_bias[:, None, :], k, v, key_padding_mask, bias, scale=1.0)
