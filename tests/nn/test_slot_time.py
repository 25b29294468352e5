"""Per-slot sequence models over time: shapes, gradients, and that slots never mix."""
import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.slot_time import SlotTimeLSTM, SlotTimeTransformer, frame_times


def transformer(**kw):
    return SlotTimeTransformer(8, num_layers=2, num_heads=2, attention_dim=8, mlp_hidden=(8,), time_frequencies=2,
                               max_frames=10, attn_dropout=0.0, **kw).eval()


MODELS = [transformer, lambda: SlotTimeLSTM(8, hidden=8, num_layers=2, max_frames=10)]


@pytest.mark.parametrize("make", MODELS)
def test_shape_and_leading_dims(make):
    m = make()
    x = torch.randn(3, 2, 5, 4, 8)
    assert m(x).shape == x.shape
    assert torch.allclose(m(x)[1], m(x[1]), atol=1e-5)


@pytest.mark.parametrize("make", MODELS)
def test_gradient_reaches_inputs_and_weights(make):
    m = make()
    x = torch.randn(2, 5, 3, 8, requires_grad=True)
    m(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("make", MODELS)
def test_mixes_only_along_time_within_a_slot(make):
    m = make()
    x = torch.randn(2, 6, 4, 8)
    y = x.clone()
    y[:, :, 2] += torch.randn(2, 6, 8)  # perturb slot 2 at every step
    a, b = m(x), m(y)
    others = [0, 1, 3]
    assert torch.allclose(a[:, :, others], b[:, :, others], atol=1e-6)
    assert not torch.allclose(a[:, :, 2], b[:, :, 2])


def test_transformer_mixes_time_both_ways_without_a_mask():
    m = transformer()
    x = torch.randn(1, 6, 2, 8)
    y = x.clone()
    y[:, -1] += 1.0  # the last step changes the first: no causal mask
    assert not torch.allclose(m(x)[:, 0], m(y)[:, 0])


def test_time_encoding_scale_is_fixed_by_max_frames():
    assert torch.allclose(frame_times(3, 10), frame_times(10, 10)[:3])
    assert torch.allclose(frame_times(2, 10, start=3), frame_times(10, 10)[3:5])
    with pytest.raises(ShapeError, match="max_frames"):
        frame_times(11, 10)


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="attention_dim"):
        SlotTimeTransformer(8, num_heads=3, attention_dim=8)
    with pytest.raises(ShapeError, match="SlotTimeTransformer input"):
        transformer()(torch.randn(2, 5, 3, 7))
