"""The GRU-type gating layer of GTrXL (Parisotto et al. 2019), used in place of residual additions.

    r = sigma(W_r y + U_r x)
    z = sigma(W_z y + U_z x - b_g)
    h = tanh(W_g y + U_g (r * x))
    g(x, y) = (1 - z) * x + z * h

``x`` is the residual stream, ``y`` the sublayer output. With ``b_g = 2`` the update gate starts near
``sigma(-2) ~ 0.12``, so a freshly built gated block is close to the identity map -- the property that
lets GTrXL train deep stacks (seed-model-details.md section 9).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from slotvideo.errors import check_range, check_shape


class GRUGate(nn.Module):
    """``gate(x, y)`` on ``[..., D]``: six bias-free ``D x D`` matrices and a learnable gate bias ``b_g``."""

    def __init__(self, dim: int, gate_bias: float = 2.0) -> None:
        super().__init__()
        check_range(dim, "GRUGate dim", low=1, integer=True)
        self.dim = dim
        self.w_r = nn.Linear(dim, dim, bias=False)
        self.u_r = nn.Linear(dim, dim, bias=False)
        self.w_z = nn.Linear(dim, dim, bias=False)
        self.u_z = nn.Linear(dim, dim, bias=False)
        self.w_g = nn.Linear(dim, dim, bias=False)
        self.u_g = nn.Linear(dim, dim, bias=False)
        self.b_g = nn.Parameter(torch.full((dim,), float(gate_bias)))
        # Xavier-uniform weights as in the RLlib reimplementation.
        for layer in (self.w_r, self.u_r, self.w_z, self.u_z, self.w_g, self.u_g):
            nn.init.xavier_uniform_(layer.weight)

    def gate(self, x: Tensor, y: Tensor) -> Tensor:
        check_shape(x, "... D", "GRUGate x (residual stream)", D=self.dim)
        check_shape(y, "... D", "GRUGate y (sublayer output)", D=self.dim)
        r = torch.sigmoid(self.w_r(y) + self.u_r(x))
        z = torch.sigmoid(self.w_z(y) + self.u_z(x) - self.b_g)
        h = torch.tanh(self.w_g(y) + self.u_g(r * x))
        return (1 - z) * x + z * h

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.gate(x, y)
