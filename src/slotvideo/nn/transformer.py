"""Pre-LayerNorm transformer blocks and stacks on ``[..., N, D]`` tokens.

One block covers the variants the five systems need:

* plain pre-LN (Aloe's ``layer_norm='input'``): ``x + dropout(f(LN(x)))`` per sublayer;
* GTrXL gating (``gated=True``): ``gate(x, relu(dropout(f(LN(x)))))`` with a GRU-type gate whose bias
  starts at 2, so the block starts near the identity;
* Transformer-XL relative positions along ``N`` for self-attention (``relative_position=True``);
* optional cross-attention from the tokens to a memory (``cross_attention=True``).

Any leading dims are batch: to run a transformer over time separately per slot, move the slot axis
into the batch (``[B, T, K, D] -> [B, K, T, D]``).
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from slotvideo.errors import ConfigError, check_range
from slotvideo.nn.attention import MultiHeadAttention
from slotvideo.nn.gates import GRUGate
from slotvideo.nn.mlp import MLP
from slotvideo.nn.relative_position import RelativeMultiHeadAttention


class _Sublayer(nn.Module):
    """The pre-LN wrapper of one sublayer: normalise, run, dropout, then add or gate into the stream."""

    def __init__(self, dim: int, dropout: float, gated: bool, gate_bias: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.gate = GRUGate(dim, gate_bias) if gated else None

    def merge(self, x: Tensor, y: Tensor) -> Tensor:
        y = self.dropout(y)
        if self.gate is None:
            return x + y
        return self.gate(x, y.relu())


class TransformerBlock(nn.Module):
    """Self-attention [+ cross-attention] + MLP, each pre-LN with a residual add or a GTrXL gate."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int | Sequence[int] | None = None,
                 head_dim: int | None = None, dropout: float = 0.0, attn_dropout: float | None = None,
                 qkv_bias: bool = True, activation: str = "relu", gated: bool = False, gate_bias: float = 2.0,
                 relative_position: bool = False, aloe_rel_shift: bool = False, max_timescale: float = 10000.0,
                 cross_attention: bool = False, context_dim: int | None = None) -> None:
        super().__init__()
        check_range(dim, "TransformerBlock dim", low=1, integer=True)
        check_range(dropout, "TransformerBlock dropout", low=0.0, high=1.0)
        attn_dropout = dropout if attn_dropout is None else attn_dropout
        if aloe_rel_shift and not relative_position:
            raise ConfigError("TransformerBlock aloe_rel_shift=True needs relative_position=True")
        if context_dim is not None and not cross_attention:
            raise ConfigError("TransformerBlock context_dim is only used with cross_attention=True")
        mlp_hidden = 4 * dim if mlp_hidden is None else mlp_hidden
        hidden = [mlp_hidden] if isinstance(mlp_hidden, int) else list(mlp_hidden)
        self.dim = dim
        if relative_position:
            self.self_attn: nn.Module = RelativeMultiHeadAttention(
                dim, num_heads, head_dim, dropout=attn_dropout, position_dropout=dropout,
                max_timescale=max_timescale, aloe_rel_shift=aloe_rel_shift, qkv_bias=qkv_bias)
        else:
            self.self_attn = MultiHeadAttention(dim, num_heads, head_dim, qkv_bias=qkv_bias, dropout=attn_dropout)
        self.attn_sub = _Sublayer(dim, dropout, gated, gate_bias)
        self.cross_attn = None
        if cross_attention:
            self.cross_attn = MultiHeadAttention(dim, num_heads, head_dim, context_dim=context_dim,
                                                 qkv_bias=qkv_bias, dropout=attn_dropout)
            self.cross_sub = _Sublayer(dim, dropout, gated, gate_bias)
        self.mlp = MLP(dim, hidden, dim, activation=activation, dropout=dropout)
        self.mlp_sub = _Sublayer(dim, dropout, gated, gate_bias)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None, context: Tensor | None = None,
                context_padding_mask: Tensor | None = None, attn_bias: Tensor | None = None) -> Tensor:
        """``x [..., N, D]`` -> ``[..., N, D]``; masks are bool, True = padded; ``attn_bias`` is additive."""
        y = self.self_attn(self.attn_sub.norm(x), key_padding_mask=key_padding_mask, attn_bias=attn_bias)
        x = self.attn_sub.merge(x, y)
        if self.cross_attn is not None:
            if context is None:
                raise ConfigError("TransformerBlock was built with cross_attention=True; pass context=[..., M, C]")
            y = self.cross_attn(self.cross_sub.norm(x), context, key_padding_mask=context_padding_mask)
            x = self.cross_sub.merge(x, y)
        elif context is not None:
            raise ConfigError("TransformerBlock got a context but was built with cross_attention=False")
        return self.mlp_sub.merge(x, self.mlp(self.mlp_sub.norm(x)))


class TransformerEncoder(nn.Module):
    """A stack of ``num_layers`` :class:`TransformerBlock` s with an optional final LayerNorm.

    Block options (heads, gating, relative positions, cross-attention, ...) are passed through.
    """

    def __init__(self, num_layers: int, dim: int, num_heads: int, final_norm: bool = False, **block_kwargs) -> None:
        super().__init__()
        check_range(num_layers, "TransformerEncoder num_layers", low=1, integer=True)
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, **block_kwargs) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(dim) if final_norm else None

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None, context: Tensor | None = None,
                context_padding_mask: Tensor | None = None, attn_bias: Tensor | None = None) -> Tensor:
        for block in self.blocks:
            x = block(x, key_padding_mask, context, context_padding_mask, attn_bias)
        return x if self.final_norm is None else self.final_norm(x)
