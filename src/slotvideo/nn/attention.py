"""Multi-head attention on ``scaled_dot_product_attention`` with padding masks and additive biases.

The module is split into ``project`` (q/k/v heads) and ``attend`` (masking, SDPA, output projection) so
that variants which need the projected queries before attending -- relative positions -- reuse both
halves instead of copying them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.errors import ShapeError, check_range, check_shape


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``[..., N, H*Dh]`` -> ``[..., H, N, Dh]``."""
    x = x.unflatten(-1, (num_heads, -1))
    return x.transpose(-3, -2)


def merge_heads(x: Tensor) -> Tensor:
    """``[..., H, N, Dh]`` -> ``[..., N, H*Dh]``."""
    return x.transpose(-3, -2).flatten(-2)


def attention_mask(key_padding_mask: Tensor | None, attn_bias: Tensor | None, dtype: torch.dtype,
                   ) -> Tensor | None:
    """One additive float mask ``[..., H|1, Nq|1, Nk]`` from a padding mask and an additive bias.

    Padded keys get the most negative finite value (set, not added, so a bias cannot push it to -inf):
    a query whose keys are *all* padded then averages the values instead of producing NaN, and
    ``exp(min - max)`` is exactly 0 wherever at least one key is real, so padded keys never leak.
    """
    if key_padding_mask is None:
        return None if attn_bias is None else attn_bias.to(dtype)
    pad = key_padding_mask[..., None, None, :]  # [..., 1, 1, Nk]
    if attn_bias is None:
        zero = torch.zeros((), dtype=dtype, device=pad.device)
        return zero.masked_fill(pad, torch.finfo(dtype).min)
    return attn_bias.to(dtype).masked_fill(pad, torch.finfo(dtype).min)


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float = 0.0,
           scale: float | None = None) -> Tensor:
    """SDPA on ``[..., H, N, Dh]`` heads with any number of leading dims (folded into one batch dim)."""
    lead = torch.broadcast_shapes(q.shape[:-3], k.shape[:-3], v.shape[:-3])
    q, k, v = (t.expand(*lead, *t.shape[-3:]).reshape(-1, *t.shape[-3:]) for t in (q, k, v))
    if mask is not None:
        # A mask without batch dims (e.g. a relative-position bias [H, N, N]) broadcasts as it is.
        if mask.dim() > 3:
            try:
                mask = torch.broadcast_to(mask, (*lead, *mask.shape[-3:])).reshape(-1, *mask.shape[-3:])
            except RuntimeError as e:
                raise ShapeError(f"key_padding_mask / attn_bias leading dims {list(mask.shape[:-3])} must "
                                 f"broadcast to the tokens' leading dims {list(lead)}") from e
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    return out.reshape(*lead, *out.shape[-3:])


class MultiHeadAttention(nn.Module):
    """Multi-head (self- or cross-) attention on ``[..., N, D]`` tokens.

    ``key_padding_mask`` is a bool ``[..., Nk]`` (True = padded, ignored as a key); ``attn_bias`` is an
    additive logit bias broadcastable to ``[..., H, Nq, Nk]`` (relative positions use it).
    """

    def __init__(self, dim: int, num_heads: int, head_dim: int | None = None, context_dim: int | None = None,
                 qkv_bias: bool = True, out_bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        check_range(dim, "MultiHeadAttention dim", low=1, integer=True)
        check_range(num_heads, "MultiHeadAttention num_heads", low=1, integer=True)
        check_range(dropout, "MultiHeadAttention dropout", low=0.0, high=1.0)
        if head_dim is None:
            if dim % num_heads:
                raise ShapeError(f"MultiHeadAttention dim ({dim}) must be divisible by num_heads ({num_heads}) "
                                 "unless head_dim is given")
            head_dim = dim // num_heads
        check_range(head_dim, "MultiHeadAttention head_dim", low=1, integer=True)
        context_dim = dim if context_dim is None else context_dim
        check_range(context_dim, "MultiHeadAttention context_dim", low=1, integer=True)
        self.dim, self.num_heads, self.head_dim, self.context_dim = dim, num_heads, head_dim, context_dim
        self.dropout = dropout
        inner = num_heads * head_dim
        self.to_q = nn.Linear(dim, inner, bias=qkv_bias)
        self.to_k = nn.Linear(context_dim, inner, bias=qkv_bias)
        self.to_v = nn.Linear(context_dim, inner, bias=qkv_bias)
        self.to_out = nn.Linear(inner, dim, bias=out_bias)

    def project(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Query heads from ``x``, key/value heads from ``context`` (``x`` itself for self-attention)."""
        check_shape(x, "... N D", "attention input", D=self.dim)
        context = x if context is None else context
        check_shape(context, "... M C", "attention context", C=self.context_dim)
        q = split_heads(self.to_q(x), self.num_heads)
        k = split_heads(self.to_k(context), self.num_heads)
        v = split_heads(self.to_v(context), self.num_heads)
        return q, k, v

    def attend(self, q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None,
               attn_bias: Tensor | None = None, scale: float | None = None) -> Tensor:
        """Attention of projected heads, merged and projected back to ``[..., Nq, dim]``."""
        if key_padding_mask is not None:
            check_shape(key_padding_mask, "... M", "key_padding_mask", M=k.shape[-2])
            if key_padding_mask.dtype != torch.bool:
                raise ShapeError(f"key_padding_mask must be a bool tensor (True = padded), got {key_padding_mask.dtype}")
        if attn_bias is not None:
            check_shape(attn_bias, "... M", "attn_bias", M=k.shape[-2])
        mask = attention_mask(key_padding_mask, attn_bias, q.dtype)
        out = attend(q, k, v, mask, self.dropout if self.training else 0.0, scale)
        return self.to_out(merge_heads(out))

    def forward(self, x: Tensor, context: Tensor | None = None, key_padding_mask: Tensor | None = None,
                attn_bias: Tensor | None = None) -> Tensor:
        q, k, v = self.project(x, context)
        return self.attend(q, k, v, key_padding_mask, attn_bias)
