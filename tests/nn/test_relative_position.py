import pytest
import torch

from slotvideo.errors import ConfigError
from slotvideo.nn.position import sinusoidal_encoding
from slotvideo.nn.relative_position import RelativeMultiHeadAttention


def _brute_force(m: RelativeMultiHeadAttention, x: torch.Tensor, aloe: bool) -> torch.Tensor:
    """Per-(i, j) double loop of the Transformer-XL logit; ``aloe`` follows the literal rel_shift quirk."""
    a = m.attn
    h, dh = a.num_heads, a.head_dim
    n = x.shape[0]
    q = a.to_q(x).view(n, h, dh) * dh ** -0.5
    k = a.to_k(x).view(n, h, dh)
    v = a.to_v(x).view(n, h, dh)

    def rel_key(offset: int) -> torch.Tensor:
        r = sinusoidal_encoding(torch.tensor([offset]), m.dim)[0]
        return m.to_r(r).view(h, dh)

    out = torch.zeros(n, h, dh)
    for head in range(h):
        logits = torch.zeros(n, n)
        for i in range(n):
            for j in range(n):
                content = (q[i, head] + m.r_w_bias[head]) @ k[j, head]
                if not aloe or j <= i:
                    position = (q[i, head] + m.r_r_bias[head]) @ rel_key(i - j)[head]
                elif j == i + 1:
                    position = torch.tensor(0.0)
                else:  # wrap-around: query i+1's logit for distance N+1-(j-i)
                    position = (q[i + 1, head] + m.r_r_bias[head]) @ rel_key(n + 1 - (j - i))[head]
                logits[i, j] = content + position
        out[:, head] = logits.softmax(-1) @ v[:, head]
    return a.to_out(out.flatten(-2))


@pytest.mark.parametrize("aloe", [False, True])
def test_matches_brute_force_double_loop(aloe):
    torch.manual_seed(0)
    m = RelativeMultiHeadAttention(8, 2, aloe_rel_shift=aloe).eval()
    with torch.no_grad():  # non-trivial biases so both bias terms matter
        m.r_w_bias.normal_()
        m.r_r_bias.normal_()
    x = torch.randn(2, 6, 8)
    got = m(x)
    for b in range(2):
        torch.testing.assert_close(got[b], _brute_force(m, x[b], aloe), atol=1e-5, rtol=1e-5)


def test_exact_mode_is_translation_equivariant_in_its_position_term():
    torch.manual_seed(0)
    m = RelativeMultiHeadAttention(8, 2).eval()
    q = torch.randn(1, 2, 1, 4).expand(1, 2, 5, 4)  # identical queries: the logit may depend on i - j only
    bias = m.position_bias(q)[0, 0]
    for d in range(-4, 5):
        diag = torch.diagonal(bias, offset=-d)
        torch.testing.assert_close(diag, diag[:1].expand_as(diag))


def test_shapes_masks_and_gradients():
    torch.manual_seed(0)
    m = RelativeMultiHeadAttention(8, 2, dropout=0.1)
    x = torch.randn(2, 3, 5, 8, requires_grad=True)
    pad = torch.zeros(2, 3, 5, dtype=torch.bool)
    pad[:, :, -1] = True
    out = m(x, key_padding_mask=pad)
    assert out.shape == (2, 3, 5, 8)
    out.square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    m.eval()
    y = x.detach().clone()
    y[..., -1, :] = 50.0
    torch.testing.assert_close(m(x.detach(), key_padding_mask=pad)[..., :-1, :],
                               m(y, key_padding_mask=pad)[..., :-1, :])


def test_odd_width_is_rejected():
    with pytest.raises(ConfigError, match="even"):
        RelativeMultiHeadAttention(9, 3)
