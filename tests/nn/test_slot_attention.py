import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.slot_attention import (InvertedAttention, SlotAttention, inverted_attention,
                                         inverted_attention_naive)


def _assert_all_grads(module):
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_shapes_over_batch_and_time():
    sa = SlotAttention(input_dim=12, slot_dim=8, num_slots=5, mlp_hidden=16)
    out = sa(torch.randn(2, 3, 20, 12))
    assert out.slots.shape == (2, 3, 5, 8)
    assert out.attention.shape == (2, 3, 5, 20)
    assert torch.allclose(out.attention.sum(dim=-2), torch.ones(2, 3, 20), atol=1e-6)
    assert sa(torch.randn(20, 12), num_slots=3).slots.shape == (3, 8)


def test_fast_equals_naive_forward_and_backward():
    torch.manual_seed(0)
    sa = SlotAttention(input_dim=10, slot_dim=6, num_slots=4, iterations=3, mlp_hidden=12)
    x = torch.randn(3, 2, 30, 10, dtype=torch.float64)
    sa = sa.double()
    results = []
    for fast in (True, False):
        sa.zero_grad()
        sa.attention.fast = fast
        torch.manual_seed(1)
        out = sa(x)
        (out.slots.square().sum() + out.attention[..., 0, :].sum()).backward()
        results.append((out, {n: p.grad.clone() for n, p in sa.named_parameters()}))
    (fast, g_fast), (naive, g_naive) = results
    assert torch.allclose(fast.slots, naive.slots, atol=1e-10)
    assert torch.allclose(fast.attention, naive.attention, atol=1e-10)
    for name in g_fast:
        assert torch.allclose(g_fast[name], g_naive[name], atol=1e-9), name


def test_fast_equals_naive_in_float32():
    torch.manual_seed(0)
    q, x = torch.randn(4, 3, 16), torch.randn(4, 200, 24)
    wk, wv = torch.randn(16, 24) / 5, torch.randn(20, 24) / 5
    fast = inverted_attention(q, x, wk, wv)
    naive = inverted_attention_naive(q, x @ wk.T, x @ wv.T)
    assert torch.allclose(fast.updates, naive.updates, atol=1e-5)
    assert torch.allclose(fast.attention, naive.attention, atol=1e-6)


def test_fast_readout_gradcheck_with_broadcast_queries():
    torch.manual_seed(0)
    q = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)  # shared by every batch element
    x = torch.randn(2, 7, 4, dtype=torch.float64, requires_grad=True)
    wk = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    wv = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)

    def both_outputs(q, x, wk, wv):
        out = inverted_attention(q, x, wk, wv, eps=1e-3)
        return out.updates, out.attention

    assert torch.autograd.gradcheck(both_outputs, (q, x, wk, wv))
    fast = inverted_attention(q, x, wk, wv)
    naive = inverted_attention_naive(q, x @ wk.T, x @ wv.T)
    grads = [torch.autograd.grad(r.updates.sum() + r.attention[..., 1, :].sum(), (q, x, wk, wv))
             for r in (fast, naive)]
    for g_fast, g_naive in zip(*grads):
        assert torch.allclose(g_fast, g_naive, atol=1e-10)


def test_fast_readout_under_autocast():
    readout = InvertedAttention(input_dim=8, query_dim=6)
    queries, inputs = torch.randn(2, 3, 6), torch.randn(2, 10, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = readout(queries, inputs)
    out.updates.float().sum().backward()
    assert torch.isfinite(inputs.grad).all() and inputs.grad.dtype == torch.float32


def test_readout_is_softmax_over_slots_then_weighted_mean():
    # A hand-worked case: identity projections, two slots, three inputs.
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]]) * 2 ** 0.5  # undo the 1/sqrt(d) scale
    x = torch.tensor([[3.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    out = inverted_attention(q, x, torch.eye(2), torch.eye(2), eps=0.0)
    logits = torch.tensor([[3.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    attn = logits.exp() / logits.exp().sum(0)
    assert torch.allclose(out.attention, attn)
    expected = (attn / attn.sum(1, keepdim=True)) @ x
    assert torch.allclose(out.updates, expected)


def test_eps_keeps_an_empty_slot_finite():
    q = torch.tensor([[50.0, 0.0], [-50.0, 0.0]])
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    out = inverted_attention(q, x, torch.eye(2), torch.eye(2))
    assert torch.isfinite(out.updates).all()
    assert torch.allclose(out.updates[1], x.mean(0))  # slot 1 lost every input: eps makes it the plain mean


def test_leading_dims_equal_loop_over_frames():
    torch.manual_seed(0)
    sa = SlotAttention(input_dim=8, slot_dim=8, num_slots=3, init="learned", mlp_hidden=8)
    x = torch.randn(2, 4, 15, 8)
    batched = sa(x)
    for t in range(4):
        frame = sa(x[:, t])
        assert torch.allclose(batched.slots[:, t], frame.slots, atol=1e-6)
        assert torch.allclose(batched.attention[:, t], frame.attention, atol=1e-6)


def test_external_initial_slots_are_used():
    sa = SlotAttention(input_dim=8, slot_dim=6, num_slots=3, init="none", mlp_hidden=8)
    x, slots = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 4, 6)
    out = sa(x, slots=slots, iterations=1)
    assert out.slots.shape == (2, 3, 4, 6)
    with pytest.raises(ConfigError, match="slots="):
        sa(x)
    with pytest.raises(ShapeError, match="leading dims"):
        sa(x, slots=torch.randn(2, 4, 6))
    with pytest.raises(ShapeError, match="SlotAttention slots"):
        sa(x, slots=torch.randn(2, 3, 4, 5))


@pytest.mark.parametrize("init", ["gaussian", "learned"])
def test_gradients_reach_every_parameter(init):
    sa = SlotAttention(input_dim=8, slot_dim=6, num_slots=3, init=init, mlp_hidden=8)
    x = torch.randn(2, 12, 8, requires_grad=True)
    out = sa(x)
    (out.slots.square().sum() + out.attention.square().sum()).backward()
    _assert_all_grads(sa)
    assert torch.isfinite(x.grad).all()


def test_inverted_attention_with_external_queries():
    readout = InvertedAttention(input_dim=10, query_dim=7, key_dim=5, value_dim=9)
    queries = torch.randn(2, 3, 4, 7)  # e.g. PARTS: [B, T, K, Dq] built from posterior + gradients
    inputs = torch.randn(2, 3, 25, 10)
    out = readout(queries, inputs)
    assert out.updates.shape == (2, 3, 4, 9) and out.attention.shape == (2, 3, 4, 25)
    out.updates.sum().backward()
    _assert_all_grads(readout)
    shared = readout(torch.randn(4, 7), inputs)  # the same queries for every frame broadcast
    assert shared.updates.shape == (2, 3, 4, 9)
    with pytest.raises(ShapeError, match="broadcastable"):
        readout(torch.randn(5, 4, 7), inputs)
    with pytest.raises(ShapeError, match="queries"):
        readout(torch.randn(4, 6), inputs)


def test_bad_config():
    with pytest.raises(ConfigError, match="iterations"):
        SlotAttention(8, iterations=0)
    with pytest.raises(ConfigError, match="init"):
        SlotAttention(8, init="zeros")
    with pytest.raises(ConfigError, match="num_slots"):
        SlotAttention(8, init="learned", num_slots=3)(torch.randn(5, 8), num_slots=4)
    with pytest.raises(ShapeError, match="SlotAttention inputs"):
        SlotAttention(8)(torch.randn(5, 9))
