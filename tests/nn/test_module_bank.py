import pytest
import torch
from torch import nn

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.module_bank import GroupedLinear, ModuleBank, select


def _reference_module(bank: ModuleBank, m: int, x: torch.Tensor) -> torch.Tensor:
    """Module m rebuilt as a plain nn.Linear stack from the bank's weights, run on its own."""
    y = x
    for i, lin in enumerate(bank.linears):
        ref = nn.Linear(lin.in_dim, lin.out_dim)
        with torch.no_grad():
            ref.weight.copy_(lin.weight[m].T)
            ref.bias.copy_(lin.bias[m])
        y = ref(y)
        if i < len(bank.activations):
            if str(i) in bank.norms:
                norm = bank.norms[str(i)]
                y = nn.functional.layer_norm(y, (norm.dim,), norm.weight[m], norm.bias[m])
            y = torch.relu(y)
    return y


def test_shape_any_leading_dims():
    bank = ModuleBank(5, 6, [8, 7], 3, norm_layers=(1,))
    assert bank(torch.randn(2, 4, 6)).shape == (2, 4, 5, 3)
    assert bank(torch.randn(6)).shape == (5, 3)
    assert bank.module(2, torch.randn(3, 6)).shape == (3, 3)


def test_each_module_matches_a_separately_built_mlp():
    torch.manual_seed(0)
    bank = ModuleBank(4, 6, [8, 8], 5, norm_layers=(1,))
    with torch.no_grad():  # non-trivial LayerNorm affines, different per module
        bank.norms["1"].weight.normal_()
        bank.norms["1"].bias.normal_()
    x = torch.randn(3, 2, 6)
    out = bank(x)
    for m in range(4):
        torch.testing.assert_close(out[..., m, :], _reference_module(bank, m, x), rtol=1e-5, atol=1e-5)


def test_modules_are_independent():
    bank = ModuleBank(3, 4, [6], 2)
    x = torch.randn(5, 4)
    bank(x)[:, 1].sum().backward()
    for lin in bank.linears:
        assert lin.weight.grad[1].abs().sum() > 0
        assert lin.weight.grad[0].abs().sum() == 0 and lin.weight.grad[2].abs().sum() == 0


def test_gradients_reach_every_parameter_and_input():
    bank = ModuleBank(3, 4, [6, 6], 2, norm_layers=(0,))
    x = torch.randn(5, 4, requires_grad=True)
    bank(x).square().sum().backward()
    for name, p in bank.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_grouped_linear_per_module_rows():
    lin = GroupedLinear(3, 4, 2)
    x = torch.randn(7, 3, 4)
    expected = torch.stack([x[:, m] @ lin.weight[m] + lin.bias[m] for m in range(3)], 1)
    torch.testing.assert_close(lin(x), expected)


def test_select_mixes_candidates():
    cand = torch.randn(2, 3, 4, 5)
    one_hot = torch.nn.functional.one_hot(torch.tensor([[0, 3, 1], [2, 2, 0]]), 4).float()
    torch.testing.assert_close(select(cand, one_hot), cand[torch.arange(2)[:, None], torch.arange(3), one_hot.argmax(-1)])
    soft = torch.full((2, 3, 4), 0.25)
    torch.testing.assert_close(select(cand, soft), cand.mean(-2))


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="num_modules"):
        ModuleBank(0, 4, [4], 4)
    with pytest.raises(ConfigError, match="norm_layers"):
        ModuleBank(2, 4, [4], 4, norm_layers=(3,))
    with pytest.raises(ShapeError, match="ModuleBank input"):
        ModuleBank(2, 4, [4], 4)(torch.randn(3, 5))
    with pytest.raises(ShapeError, match="selection weights"):
        select(torch.randn(2, 4, 5), torch.randn(2, 3))
