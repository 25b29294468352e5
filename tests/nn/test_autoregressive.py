"""Summary token, autoregressive Gaussian and teacher-forced token decoder: shapes, gradients, dependencies."""
import pytest
import torch

from slotvideo.errors import ShapeError
from slotvideo.nn.autoregressive import AutoregressiveGaussian, SummaryToken, TokenDecoder, gaussian


def test_summary_token_shape_gradient_and_padding():
    m = SummaryToken(8, num_heads=2).eval()
    x = torch.randn(3, 2, 5, 8, requires_grad=True)
    s = m(x)
    assert s.shape == (3, 2, 8)
    # a random projection: the plain sum of a LayerNorm output is constant, so its gradient is zero
    (s * torch.randn_like(s)).sum().backward()
    assert x.grad.abs().sum() > 0 and m.token.grad is not None
    pad = torch.tensor([False, False, True, True, True])
    y = x.detach().clone()
    y[..., 2:, :] += 5.0  # padded tokens do not matter
    assert torch.allclose(m(x.detach(), pad.expand(3, 2, 5)), m(y, pad.expand(3, 2, 5)), atol=1e-5)


def test_autoregressive_gaussian_shapes_gradients_and_inputs():
    m = AutoregressiveGaussian(latent_dim=4, state_dim=6, hidden=8)
    state = torch.randn(2, 3, 6, requires_grad=True)
    first = torch.randn(2, 3, 4)
    params, z = m(state, first, steps=5)
    assert params.shape == (2, 3, 5, 8) and z.shape == (2, 3, 5, 4)
    params.sum().backward()
    assert state.grad.abs().sum() > 0 and all(p.grad is not None for p in m.parameters())
    # sample=False feeds the means back: deterministic, and each step's mean is the fed-back input
    p1, z1 = m(state.detach(), first, 5, sample=False)
    p2, z2 = m(state.detach(), first, 5, sample=False)
    assert torch.equal(p1, p2) and torch.allclose(z1, gaussian(p1).mean)
    with pytest.raises(ShapeError, match="first"):
        m(state, torch.randn(2, 4), 5)


def test_token_decoder_is_causal_and_ignores_padding():
    m = TokenDecoder(vocab_size=10, state_dim=6, embed_dim=4, hidden=8)
    state = torch.randn(2, 6, requires_grad=True)
    tokens = torch.tensor([[3, 4, 5, 0, 0], [2, 9, 1, 7, 6]])
    logits = m(state, tokens)
    assert logits.shape == (2, 5, 10)
    changed = tokens.clone()
    changed[:, 3] = 8  # logits up to position 3 only see tokens before it
    assert torch.allclose(m(state, changed)[:, :4], logits[:, :4], atol=1e-6)
    loss = TokenDecoder.loss(logits, tokens)
    assert loss.shape == (2,)
    ce = torch.nn.functional.cross_entropy(logits[0, :3], tokens[0, :3], reduction="sum")
    assert torch.allclose(loss[0], ce, atol=1e-5)
    loss.sum().backward()
    assert state.grad.abs().sum() > 0
    with pytest.raises(ShapeError, match="vocab"):
        m(state.detach(), torch.tensor([[1, 12]]).expand(2, 2))
