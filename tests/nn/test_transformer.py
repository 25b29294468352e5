import pytest
import torch

from slotvideo.errors import ConfigError
from slotvideo.nn.gates import GRUGate
from slotvideo.nn.transformer import TransformerBlock, TransformerEncoder

VARIANTS = {
    "plain": {},
    "gated": {"gated": True},
    "relative": {"relative_position": True},
    "aloe": {"relative_position": True, "aloe_rel_shift": True, "qkv_bias": False},
    "cross": {"cross_attention": True, "context_dim": 6},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_shapes_and_all_parameters_get_finite_gradients(name):
    torch.manual_seed(0)
    kwargs = VARIANTS[name]
    enc = TransformerEncoder(2, 16, 4, mlp_hidden=32, dropout=0.1, final_norm=True, **kwargs)
    x = torch.randn(2, 3, 5, 16)
    context = torch.randn(2, 3, 4, 6) if "context_dim" in kwargs else None
    out = enc(x, key_padding_mask=torch.zeros(2, 3, 5, dtype=torch.bool), context=context)
    assert out.shape == x.shape
    (out * torch.randn_like(out)).sum().backward()  # a plain sum of a LayerNorm output has zero gradient
    for pname, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", ["plain", "gated", "relative"])
def test_changing_a_padded_token_changes_nothing(name):
    torch.manual_seed(0)
    enc = TransformerEncoder(2, 16, 4, mlp_hidden=32, **VARIANTS[name]).eval()
    x = torch.randn(3, 6, 16)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[0, 3:] = True
    pad[2, 5] = True
    y = x.clone()
    y[pad] = 10 * torch.randn(int(pad.sum()), 16)
    a, b = enc(x, key_padding_mask=pad), enc(y, key_padding_mask=pad)
    torch.testing.assert_close(a[~pad], b[~pad])


def test_gtrxl_gate_starts_near_identity():
    torch.manual_seed(0)
    gate = GRUGate(32)
    x, y = torch.randn(512, 32), torch.randn(512, 32).relu()
    z = torch.sigmoid(gate.w_z(y) + gate.u_z(x) - gate.b_g)
    assert z.mean() < 0.25  # sigma(-2) ~ 0.12 plus the spread of the random projections
    assert (gate(x, y) - x).norm() / x.norm() < 0.4
    with torch.no_grad():
        gate.b_g.fill_(60.0)  # a closed gate is exactly the identity
    torch.testing.assert_close(gate(x, y), x)
    block = TransformerBlock(32, 4, gated=True)
    xs = torch.randn(4, 10, 32)
    assert (block(xs) - xs).norm() / xs.norm() < 0.5


def test_over_time_per_slot_does_not_mix_slots():
    torch.manual_seed(0)
    enc = TransformerEncoder(2, 16, 4, mlp_hidden=32, relative_position=True).eval()
    slots = torch.randn(2, 5, 3, 16)  # [B, T, K, D]
    out = enc(slots.transpose(1, 2)).transpose(1, 2)  # slots into the batch, attention over T
    for k in range(3):
        torch.testing.assert_close(out[:, :, k], enc(slots[:, :, k]), atol=1e-5, rtol=1e-5)
    poked = slots.clone()
    poked[:, 2, 0] += 5.0
    out2 = enc(poked.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(out2[:, :, 1:], out[:, :, 1:])
    assert not torch.allclose(out2[:, :, 0], out[:, :, 0])


def test_dropout_only_in_training():
    torch.manual_seed(0)
    enc = TransformerEncoder(1, 16, 4, dropout=0.5)
    x = torch.randn(2, 5, 16)
    assert not torch.allclose(enc(x), enc(x))
    enc.eval()
    torch.testing.assert_close(enc(x), enc(x))


def test_bad_configurations_are_named():
    with pytest.raises(ConfigError, match="aloe_rel_shift"):
        TransformerBlock(16, 4, aloe_rel_shift=True)
    block = TransformerBlock(16, 4, cross_attention=True)
    with pytest.raises(ConfigError, match="context"):
        block(torch.randn(2, 3, 16))
    with pytest.raises(ConfigError, match="context"):
        TransformerBlock(16, 4)(torch.randn(2, 3, 16), context=torch.randn(2, 4, 16))
