"""A bank of M independently parametrized MLPs applied to the same inputs in one batched call.

RIMs, SCOFF and VIM all need "every module applied to every slot": each of the M modules (schemata,
mechanisms) has its own weights, and every slot gets all M candidate outputs so that an attention
step can then choose between them. Instead of a Python loop over modules, the weights of layer l
are stacked into one ``[M, in, out]`` tensor and applied with a single ``einsum``
(the "group linear layer" of the RIMs code, seed-model-details.md 11.1), so the cost is one
batched matmul per layer whatever M is.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from slotvideo.errors import ConfigError, check_range, check_shape
from slotvideo.nn.mlp import activation as make_activation


class GroupedLinear(nn.Module):
    """M independent affine maps: ``[..., M, in] -> [..., M, out]`` (or ``[..., in]`` shared by all M).

    Initialised like ``nn.Linear`` (uniform in +-1/sqrt(in)) module by module, so a bank of M starts
    exactly as M separately built linear layers would.
    """

    def __init__(self, num_modules: int, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        check_range(num_modules, "GroupedLinear num_modules", low=1, integer=True)
        check_range(in_dim, "GroupedLinear in_dim", low=1, integer=True)
        check_range(out_dim, "GroupedLinear out_dim", low=1, integer=True)
        self.num_modules, self.in_dim, self.out_dim = num_modules, in_dim, out_dim
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(num_modules, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_modules, out_dim).uniform_(-bound, bound)) if bias else None

    def forward(self, x: Tensor, shared: bool = False) -> Tensor:
        """``shared=True``: ``x [..., in]`` goes to every module; otherwise ``x [..., M, in]``, one row each."""
        if shared:
            check_shape(x, "... D", "GroupedLinear input", D=self.in_dim)
            y = torch.einsum("...i,mio->...mo", x, self.weight)
        else:
            check_shape(x, "... M D", "GroupedLinear input", M=self.num_modules, D=self.in_dim)
            y = torch.einsum("...mi,mio->...mo", x, self.weight)
        return y if self.bias is None else y + self.bias


class GroupedLayerNorm(nn.Module):
    """LayerNorm over the last dim of ``[..., M, D]`` with a separate affine (gain, bias) per module."""

    def __init__(self, num_modules: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(num_modules, dim))
        self.bias = nn.Parameter(torch.zeros(num_modules, dim))

    def forward(self, x: Tensor) -> Tensor:
        return torch.nn.functional.layer_norm(x, (self.dim,), eps=self.eps) * self.weight + self.bias


class ModuleBank(nn.Module):
    """M independent MLPs ``in_dim -> hidden... -> out_dim`` all applied to ``x [..., in_dim]``.

    Returns ``[..., M, out_dim]``: module m's output for every input row. Each hidden layer is
    ``Linear -> [LayerNorm] -> activation``; ``norm_layers`` lists the (0-based) hidden layers that get a
    per-module LayerNorm (VIM's Table 4 normalises the second 128-wide layer). The output layer has no
    activation unless ``final_activation`` names one.
    """

    def __init__(self, num_modules: int, in_dim: int, hidden: Sequence[int], out_dim: int,
                 activation: str = "relu", norm_layers: Sequence[int] = (),
                 final_activation: str | None = None) -> None:
        super().__init__()
        check_range(num_modules, "ModuleBank num_modules", low=1, integer=True)
        check_range(in_dim, "ModuleBank in_dim", low=1, integer=True)
        check_range(out_dim, "ModuleBank out_dim", low=1, integer=True)
        hidden = list(hidden)
        for i, h in enumerate(hidden):
            check_range(h, f"ModuleBank hidden[{i}]", low=1, integer=True)
        for i in norm_layers:
            if not 0 <= i < len(hidden):
                raise ConfigError(f"ModuleBank norm_layers entries must be in [0, {len(hidden) - 1}], got {i}")
        self.num_modules, self.in_dim, self.out_dim = num_modules, in_dim, out_dim
        widths = [in_dim, *hidden, out_dim]
        self.linears = nn.ModuleList(GroupedLinear(num_modules, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleDict({str(i): GroupedLayerNorm(num_modules, hidden[i]) for i in norm_layers})
        self.activations = nn.ModuleList(make_activation(activation) for _ in hidden)
        self.final_activation = make_activation(final_activation) if final_activation else None

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, "... D", "ModuleBank input", D=self.in_dim)
        y = self.linears[0](x, shared=True)
        for i, act in enumerate(self.activations):
            if str(i) in self.norms:
                y = self.norms[str(i)](y)
            y = self.linears[i + 1](act(y))
        return y if self.final_activation is None else self.final_activation(y)

    def module(self, index: int, x: Tensor) -> Tensor:
        """Module ``index`` alone on ``x [..., in_dim]`` -> ``[..., out_dim]`` (e.g. to replay a rule)."""
        check_range(index, "ModuleBank module index", low=0, high=self.num_modules - 1, integer=True)
        return self(x)[..., index, :]


def select(candidates: Tensor, weights: Tensor) -> Tensor:
    """Mix candidates ``[..., M, D]`` with selection weights ``[..., M]`` (one-hot or relaxed) -> ``[..., D]``."""
    sizes = check_shape(candidates, "... M D", "candidates")
    check_shape(weights, "... M", "selection weights", M=sizes["M"])
    return (weights.unsqueeze(-2) @ candidates).squeeze(-2)
