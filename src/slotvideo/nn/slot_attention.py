"""Slot Attention (Locatello et al. 2020) and the single readout step it is built from.

The readout is "inverted" dot-product attention: the queries (slots) compete for each input through a
softmax over the SLOT axis, and each slot then takes the weighted MEAN of the inputs it won
(renormalised over inputs, with ``eps`` so an empty slot does not divide by zero). PARTS and the Slot
Transformer use the same step with queries computed elsewhere, so it is one module,
:class:`InvertedAttention`, that :class:`SlotAttention` iterates.

Why not ``F.scaled_dot_product_attention``: it normalises over keys and returns no weights, while this
step normalises over queries, renormalises over inputs and must return the attention maps (they are the
segmentation). With K queries and N >> K inputs the cost is in projecting the inputs anyway, which the
re-association in :func:`inverted_attention` removes.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape
from slotvideo.nn.mlp import MLP


class Readout(NamedTuple):
    updates: Tensor  # [..., K, Dv]: weighted mean of the values each query won
    attention: Tensor  # [..., K, N]: softmax over queries, sums to 1 over K for every input


class SlotAttentionOutput(NamedTuple):
    slots: Tensor  # [..., K, D]
    attention: Tensor  # [..., K, N], from the last iteration


class PreparedInputs(NamedTuple):
    """Inputs after LayerNorm, and (naive path only) their keys and values; reused across iterations."""

    normed: Tensor
    keys: Tensor | None = None
    values: Tensor | None = None


def _compete_and_average(logits: Tensor, values: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Softmax of ``logits [..., K, N]`` over slots, weights renormalised over inputs, their mean of ``values``.

    Returns ``(mean [..., K, Dv], attention, weights, weight_totals)``; the last two feed the backward of
    :class:`_InputSpaceReadout`.
    """
    attention = logits.softmax(dim=-2)
    weights = attention + eps
    totals = weights.sum(dim=-1, keepdim=True)
    weights = weights / totals
    return weights @ values, attention, weights, totals


class _InputSpaceReadout(torch.autograd.Function):
    """The readout with keys = values = inputs ``x [M, N, D]`` and queries ``q [M, K, D]`` in input space.

    The backward is written out because autograd's would (1) form the gradient of x from two rank-K
    products and add them, where one product of inner size 2K does it, and (2) compute ``x^T @ dlogits``,
    a transposed-operand product that CPU BLAS runs 10-20x slower than the equivalent below for K < 16.
    Checked against autograd on the naive path in the tests.
    """

    @staticmethod
    def forward(ctx, q: Tensor, x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        mean, attention, weights, totals = _compete_and_average(q @ x.transpose(-1, -2), x, eps)
        ctx.save_for_backward(q, x, attention, weights, totals)
        return mean, attention

    @staticmethod
    @once_differentiable
    def backward(ctx, d_mean: Tensor, d_attention: Tensor) -> tuple[Tensor, Tensor, None]:
        q, x, attention, weights, totals = ctx.saved_tensors
        # Under autocast the forward may have produced lower-precision outputs; do the backward in x's dtype.
        d_mean, d_attention = d_mean.to(x.dtype), d_attention.to(x.dtype)
        attention, weights, totals = attention.to(x.dtype), weights.to(x.dtype), totals.to(x.dtype)
        d_weights = d_mean @ x.transpose(-1, -2)
        d_attention = d_attention + (d_weights - (d_weights * weights).sum(-1, keepdim=True)) / totals
        d_logits = attention * (d_attention - (d_attention * attention).sum(-2, keepdim=True))
        d_x = torch.cat([d_logits, weights], -2).transpose(-1, -2) @ torch.cat([q, d_mean], -2)
        return d_logits @ x, d_x, None


def inverted_attention(queries: Tensor, inputs: Tensor, key_weight: Tensor, value_weight: Tensor,
                       eps: float = 1e-8) -> Readout:
    """Readout from projected ``queries [..., K, Dk]`` over normalised ``inputs [..., N, Din]``.

    ``key_weight [Dk, Din]`` and ``value_weight [Dv, Din]`` are bias-free ``nn.Linear`` weights. Instead
    of projecting all N inputs (``k = x Wk^T``, ``v = x Wv^T``: O(N Din Dk)), the K queries are moved into
    input space: ``q k^T = (q Wk) x^T`` and ``w v = (w x) Wv^T`` — O(K Din Dk) for the projections, and
    the N-sized products run at width Din. Equal to :func:`inverted_attention_naive` up to float rounding.
    Leading dims of queries and inputs broadcast. Supports one backward pass (no double backward).
    """
    q = (queries * key_weight.shape[0] ** -0.5) @ key_weight  # [..., K, Din]
    leading = torch.broadcast_shapes(q.shape[:-2], inputs.shape[:-2])
    dtype = torch.promote_types(q.dtype, inputs.dtype)
    q = q.to(dtype).expand(*leading, *q.shape[-2:]).reshape(-1, *q.shape[-2:])
    x = inputs.to(dtype).expand(*leading, *inputs.shape[-2:]).reshape(-1, *inputs.shape[-2:])
    mean, attention = _InputSpaceReadout.apply(q, x, eps)
    return Readout(torch.nn.functional.linear(mean.view(*leading, *mean.shape[-2:]), value_weight),
                   attention.view(*leading, *attention.shape[-2:]))


def inverted_attention_naive(queries: Tensor, keys: Tensor, values: Tensor, eps: float = 1e-8) -> Readout:
    """The textbook form of :func:`inverted_attention` with keys ``[..., N, Dk]`` and values ``[..., N, Dv]``."""
    mean, attention, _, _ = _compete_and_average((queries * keys.shape[-1] ** -0.5) @ keys.transpose(-1, -2),
                                                 values, eps)
    return Readout(mean, attention)


class InvertedAttention(nn.Module):
    """One readout step: ``q = Wq queries``, ``k, v = Wk LN(x), Wv LN(x)`` (no biases), softmax over queries.

    ``fast=True`` uses the re-association of :func:`inverted_attention` (no keys or values are ever
    formed); ``fast=False`` is the textbook path, kept to check it and for comparison.
    """

    def __init__(self, input_dim: int, query_dim: int, key_dim: int | None = None,
                 value_dim: int | None = None, eps: float = 1e-8, norm_inputs: bool = True,
                 fast: bool = True) -> None:
        super().__init__()
        key_dim = query_dim if key_dim is None else key_dim
        value_dim = query_dim if value_dim is None else value_dim
        for name, value in [("input_dim", input_dim), ("query_dim", query_dim), ("key_dim", key_dim),
                            ("value_dim", value_dim)]:
            check_range(value, f"InvertedAttention {name}", low=1, integer=True)
        check_range(eps, "InvertedAttention eps", low=0.0)
        self.input_dim, self.query_dim, self.eps, self.fast = input_dim, query_dim, eps, fast
        self.norm_inputs = nn.LayerNorm(input_dim) if norm_inputs else nn.Identity()
        self.to_q = nn.Linear(query_dim, key_dim, bias=False)
        self.to_k = nn.Linear(input_dim, key_dim, bias=False)
        self.to_v = nn.Linear(input_dim, value_dim, bias=False)

    def prepare(self, inputs: Tensor) -> PreparedInputs:
        """Work on the inputs that does not depend on the queries (done once per slot-attention call)."""
        check_shape(inputs, "... N D", "inputs", D=self.input_dim)
        normed = self.norm_inputs(inputs)
        if self.fast:
            return PreparedInputs(normed)
        return PreparedInputs(normed, self.to_k(normed), self.to_v(normed))

    def attend(self, queries: Tensor, prepared: PreparedInputs) -> Readout:
        check_shape(queries, "... K D", "queries", D=self.query_dim)
        try:
            torch.broadcast_shapes(queries.shape[:-2], prepared.normed.shape[:-2])
        except RuntimeError:
            raise ShapeError(f"queries {list(queries.shape)} and inputs {list(prepared.normed.shape)} must have "
                             "broadcastable leading dims [...]") from None
        q = self.to_q(queries)
        if prepared.keys is None:
            return inverted_attention(q, prepared.normed, self.to_k.weight, self.to_v.weight, self.eps)
        return inverted_attention_naive(q, prepared.keys, prepared.values, self.eps)

    def forward(self, queries: Tensor, inputs: Tensor) -> Readout:
        """``queries [..., K, query_dim]``, ``inputs [..., N, input_dim]`` -> updates and ``[..., K, N]`` maps."""
        return self.attend(queries, self.prepare(inputs))


def _glorot_uniform_(param: Tensor, fan_in: int, fan_out: int) -> None:
    # TF's glorot_uniform on the official [1, 1, D] variables (fan_in 1, fan_out D), not torch's reading.
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(param, -bound, bound)


class GaussianSlotInit(nn.Module):
    """Slots drawn i.i.d. from one learned Gaussian ``N(mu, exp(log_sigma)^2)``; any number of slots.

    Sampling happens in eval mode too (as in the paper): slot order is arbitrary by design.
    """

    def __init__(self, dim: int, num_slots: int) -> None:
        super().__init__()
        self.dim, self.num_slots = dim, num_slots
        self.mu = nn.Parameter(torch.empty(dim))
        self.log_sigma = nn.Parameter(torch.empty(dim))
        _glorot_uniform_(self.mu, 1, dim)
        _glorot_uniform_(self.log_sigma, 1, dim)

    def forward(self, leading: tuple[int, ...], num_slots: int | None = None) -> Tensor:
        shape = (*leading, self.num_slots if num_slots is None else num_slots, self.dim)
        noise = torch.randn(shape, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + self.log_sigma.exp() * noise


class LearnedSlotInit(nn.Module):
    """K learned slot vectors (SAVi's "learned" init): slot k always starts from the same point."""

    def __init__(self, dim: int, num_slots: int) -> None:
        super().__init__()
        self.dim, self.num_slots = dim, num_slots
        self.slots = nn.Parameter(torch.empty(num_slots, dim))
        _glorot_uniform_(self.slots, 1, dim)

    def forward(self, leading: tuple[int, ...], num_slots: int | None = None) -> Tensor:
        if num_slots is not None and num_slots != self.num_slots:
            raise ConfigError(f"num_slots must be {self.num_slots} with learned slot init, got {num_slots}")
        return self.slots.expand(*leading, -1, -1)


SLOT_INITS = {"gaussian": GaussianSlotInit, "learned": LearnedSlotInit}


class SlotAttention(nn.Module):
    """Iterative slot attention: readout, ``GRU(updates, slots)``, then ``slots + MLP(LN(slots))``.

    Works on ``inputs [..., N, input_dim]`` with any leading dims (fold time in: ``[B, T, N, D]``).
    Initial slots come from ``init`` (``"gaussian"``, ``"learned"``) or from the caller (``slots=``,
    e.g. the previous frame's slots, as in SAVi); with ``init="none"`` the caller must pass them.
    Returns the slots and the last iteration's attention ``[..., K, N]`` (softmax over slots).
    """

    def __init__(self, input_dim: int, slot_dim: int = 64, num_slots: int = 7, iterations: int = 3,
                 mlp_hidden: int = 128, init: str = "gaussian", eps: float = 1e-8,
                 key_dim: int | None = None, fast: bool = True) -> None:
        super().__init__()
        check_range(slot_dim, "SlotAttention slot_dim", low=1, integer=True)
        check_range(num_slots, "SlotAttention num_slots", low=1, integer=True)
        check_range(iterations, "SlotAttention iterations", low=1, integer=True)
        if init not in (*SLOT_INITS, "none"):
            raise ConfigError(f"SlotAttention init must be one of {[*SLOT_INITS, 'none']}, got {init!r}")
        self.slot_dim, self.num_slots, self.iterations = slot_dim, num_slots, iterations
        self.init = SLOT_INITS[init](slot_dim, num_slots) if init != "none" else None
        self.attention = InvertedAttention(input_dim, slot_dim, key_dim, slot_dim, eps=eps, fast=fast)
        self.norm_slots = nn.LayerNorm(slot_dim)
        self.gru = nn.GRUCell(slot_dim, slot_dim)
        self.mlp = MLP(slot_dim, [mlp_hidden], slot_dim, layer_norm_input=True)

    def initial_slots(self, leading: tuple[int, ...], num_slots: int | None = None) -> Tensor:
        if self.init is None:
            raise ConfigError("SlotAttention with init='none' needs initial slots passed as slots=")
        return self.init(tuple(leading), num_slots)

    def forward(self, inputs: Tensor, slots: Tensor | None = None, num_slots: int | None = None,
                iterations: int | None = None) -> SlotAttentionOutput:
        check_shape(inputs, "... N D", "SlotAttention inputs", D=self.attention.input_dim)
        leading = tuple(inputs.shape[:-2])
        if slots is None:
            slots = self.initial_slots(leading, num_slots).to(inputs.dtype)
        else:
            check_shape(slots, "... K D", "SlotAttention slots", D=self.slot_dim)
            if tuple(slots.shape[:-2]) != leading:
                raise ShapeError(f"SlotAttention slots must have leading dims {list(leading)} like the inputs, "
                                 f"got slots {list(slots.shape)}")
        iterations = self.iterations if iterations is None else iterations
        check_range(iterations, "SlotAttention iterations", low=1, integer=True)

        prepared = self.attention.prepare(inputs)
        for _ in range(iterations):
            readout = self.attention.attend(self.norm_slots(slots), prepared)
            slots = self.gru(readout.updates.reshape(-1, self.slot_dim),
                             slots.reshape(-1, self.slot_dim)).view_as(readout.updates)
            slots = slots + self.mlp(slots)
        return SlotAttentionOutput(slots, readout.attention)
