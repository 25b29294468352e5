import math

import pytest
import torch

from slotvideo.errors import ShapeError
from slotvideo.nn.attention import MultiHeadAttention


def _reference(attn: MultiHeadAttention, x, context, pad, bias):
    """Attention written out with an explicit softmax, one (batch, head) at a time."""
    h, dh = attn.num_heads, attn.head_dim
    q = attn.to_q(x).view(*x.shape[:-1], h, dh)
    k = attn.to_k(context).view(*context.shape[:-1], h, dh)
    v = attn.to_v(context).view(*context.shape[:-1], h, dh)
    out = torch.zeros(*x.shape[:-1], h, dh)
    for b in range(x.shape[0]):
        for head in range(h):
            logits = q[b, :, head] @ k[b, :, head].T / math.sqrt(dh)
            if bias is not None:
                logits = logits + bias[b, head]
            if pad is not None:
                logits = logits.masked_fill(pad[b][None, :], float("-inf"))
            out[b, :, head] = logits.softmax(-1) @ v[b, :, head]
    return attn.to_out(out.flatten(-2))


def test_shapes_with_leading_dims_and_cross_attention():
    torch.manual_seed(0)
    self_attn = MultiHeadAttention(16, 4)
    assert self_attn(torch.randn(2, 3, 5, 16)).shape == (2, 3, 5, 16)
    cross = MultiHeadAttention(16, 2, head_dim=5, context_dim=7, qkv_bias=False)
    assert cross(torch.randn(2, 3, 5, 16), torch.randn(2, 3, 9, 7)).shape == (2, 3, 5, 16)
    assert cross.to_q.bias is None


def test_matches_explicit_softmax_with_mask_and_bias():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2, context_dim=6).eval()
    x, context = torch.randn(3, 4, 8), torch.randn(3, 5, 6)
    pad = torch.tensor([[False] * 5, [False, False, True, False, True], [True] * 4 + [False]])
    bias = torch.randn(3, 2, 4, 5)
    got = attn(x, context, key_padding_mask=pad, attn_bias=bias)
    torch.testing.assert_close(got, _reference(attn, x, context, pad, bias), atol=1e-5, rtol=1e-5)


def test_padded_keys_are_ignored_and_fully_padded_rows_stay_finite():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 6, 8)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, 4:] = True
    y = x.clone()
    y[0, 4:] = 100 * torch.randn(2, 8)
    a, b = attn(x, key_padding_mask=pad), attn(y, key_padding_mask=pad)
    torch.testing.assert_close(a[0, :4], b[0, :4])
    torch.testing.assert_close(a[1], b[1])
    assert torch.isfinite(attn(x, key_padding_mask=torch.ones(2, 6, dtype=torch.bool))).all()


def test_all_parameters_get_finite_gradients():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2, context_dim=4, dropout=0.1)
    out = attn(torch.randn(2, 3, 8), torch.randn(2, 5, 4), key_padding_mask=torch.tensor([[False] * 5, [False, True] * 2 + [False]]))
    out.square().sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_bad_inputs_name_the_tensor():
    attn = MultiHeadAttention(8, 2)
    with pytest.raises(ShapeError, match="attention input"):
        attn(torch.randn(2, 3, 7))
    with pytest.raises(ShapeError, match="key_padding_mask"):
        attn(torch.randn(2, 3, 8), key_padding_mask=torch.zeros(2, 3))
    with pytest.raises(ShapeError, match="key_padding_mask"):
        attn(torch.randn(2, 3, 8), key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ShapeError, match="divisible"):
        MultiHeadAttention(10, 3)
