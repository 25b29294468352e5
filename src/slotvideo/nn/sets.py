"""DeepSets set encoder (Zaheer et al. 2017) in the form SetCon uses for its set-level loss.

    z = f_out(LayerNorm(sum_k f_in(s_k)))

The sum makes ``z`` invariant to the order of the slots, so a loss on ``z`` constrains the *set* of
slots and not a fixed slot-to-slot correspondence. Both ``f`` are two-layer MLPs (SetCon appendix:
hidden 128, ReLU, separate parameters).
"""
from __future__ import annotations

from torch import Tensor, nn

from slotvideo.errors import check_range, check_shape
from slotvideo.nn.mlp import MLP


class DeepSets(nn.Module):
    """``[..., K, in_dim]`` slots -> ``[..., out_dim]`` set representation."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, activation: str = "relu") -> None:
        super().__init__()
        check_range(hidden, "DeepSets hidden", low=1, integer=True)
        self.in_dim = in_dim
        self.mlp_in = MLP(in_dim, [hidden], hidden, activation=activation)
        self.norm = nn.LayerNorm(hidden)
        self.mlp_out = MLP(hidden, [hidden], out_dim, activation=activation)

    def forward(self, slots: Tensor) -> Tensor:
        check_shape(slots, "... K D", "DeepSets slots", D=self.in_dim)
        return self.mlp_out(self.norm(self.mlp_in(slots).sum(dim=-2)))
