import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.mlp import MLP, activation


def test_shape_any_leading_dims():
    mlp = MLP(6, [8, 5], 3, activation="gelu", layer_norm_input=True, dropout=0.1)
    assert mlp(torch.randn(2, 4, 7, 6)).shape == (2, 4, 7, 3)
    assert mlp(torch.randn(6)).shape == (3,)


def test_layers_in_order():
    mlp = MLP(4, [8], 2, activation="elu", final_activation="silu", layer_norm_input=True)
    kinds = [type(m).__name__ for m in mlp.net]
    assert kinds == ["LayerNorm", "Linear", "ELU", "Linear", "SiLU"]
    assert MLP(4, [], 2).net[0].in_features == 4  # no hidden layer: a single Linear


def test_gradients_reach_every_parameter():
    mlp = MLP(5, [7, 7], 2, layer_norm_input=True)
    x = torch.randn(3, 5, requires_grad=True)
    mlp(x).square().sum().backward()
    for name, p in mlp.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all()


def test_activation_factory():
    x = torch.linspace(-2, 2, 9)
    assert torch.equal(activation("relu")(x), torch.relu(x))
    assert torch.allclose(activation("silu")(x), x * torch.sigmoid(x))
    with pytest.raises(ConfigError, match="activation"):
        activation("swishy")


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="dropout"):
        MLP(4, [4], 4, dropout=1.5)
    with pytest.raises(ConfigError, match="hidden"):
        MLP(4, [0], 4)
    with pytest.raises(ShapeError, match="MLP input"):
        MLP(4, [4], 4)(torch.randn(3, 5))
