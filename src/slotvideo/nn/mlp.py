"""The multi-layer perceptron every model here uses, and the activation names configs may use."""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from slotvideo.errors import ConfigError, check_range, check_shape

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module from its config name (``relu``, ``elu``, ``gelu``, ``silu``)."""
    if name not in _ACTIVATIONS:
        raise ConfigError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


class MLP(nn.Module):
    """``[LayerNorm] -> (Linear -> act -> dropout) * len(hidden) -> Linear [-> final act]`` on ``[..., in_dim]``.

    ``layer_norm_input`` normalises the input first, as the pre-LN residual MLPs of Slot Attention and
    transformers do; dropout follows each hidden activation, never the output.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu",
                 final_activation: str | None = None, layer_norm_input: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        check_range(in_dim, "MLP in_dim", low=1, integer=True)
        check_range(out_dim, "MLP out_dim", low=1, integer=True)
        check_range(dropout, "MLP dropout", low=0.0, high=1.0)
        if isinstance(hidden, int):
            hidden = [hidden]
        for i, h in enumerate(hidden):
            check_range(h, f"MLP hidden[{i}]", low=1, integer=True)
        self.in_dim, self.out_dim = in_dim, out_dim
        layers: list[nn.Module] = [nn.LayerNorm(in_dim)] if layer_norm_input else []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), _activation_module(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_dim))
        if final_activation is not None:
            layers.append(_activation_module(final_activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, "... D", "MLP input", D=self.in_dim)
        return self.net(x)


# The constructor's ``activation`` argument shadows the factory's name inside ``__init__``.
_activation_module = activation
