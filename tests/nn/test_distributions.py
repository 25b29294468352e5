import math

import pytest
import torch
import torch.nn.functional as F
from torch import distributions as td

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.distributions import (DiagonalGaussian, categorical_kl, gaussian_mixture_log_likelihood,
                                        gumbel_softmax)


def test_from_params_splits_and_scales():
    params = torch.randn(3, 4, 10)
    g = DiagonalGaussian.from_params(params, scale="softplus", min_std=1e-3)
    assert g.mean.shape == g.std.shape == (3, 4, 5)
    torch.testing.assert_close(g.mean, params[..., :5])
    torch.testing.assert_close(g.std, F.softplus(params[..., 5:]) + 1e-3)
    torch.testing.assert_close(DiagonalGaussian.from_params(params, scale="exp").std, params[..., 5:].exp())
    with pytest.raises(ConfigError, match="scale"):
        DiagonalGaussian.from_params(params, scale="var")
    with pytest.raises(ShapeError, match="even"):
        DiagonalGaussian.from_params(torch.randn(3, 5))


def test_log_prob_entropy_and_kl_match_torch_distributions():
    torch.manual_seed(0)
    p = DiagonalGaussian(torch.randn(4, 6), torch.rand(4, 6) + 0.1)
    q = DiagonalGaussian(torch.randn(4, 6), torch.rand(4, 6) + 0.1)
    tp, tq = td.Normal(p.mean, p.std), td.Normal(q.mean, q.std)
    x = torch.randn(4, 6)
    torch.testing.assert_close(p.log_prob(x), tp.log_prob(x))
    torch.testing.assert_close(p.entropy(), tp.entropy())
    torch.testing.assert_close(p.kl(q), td.kl_divergence(tp, tq))
    torch.testing.assert_close(p.kl_standard_normal(), td.kl_divergence(tp, td.Normal(0.0, 1.0)))
    torch.testing.assert_close(p.kl(DiagonalGaussian.standard(p.mean)), p.kl_standard_normal())


def test_rsample_statistics_and_gradients():
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0], requires_grad=True)
    std = torch.tensor([0.5, 2.0], requires_grad=True)
    g = DiagonalGaussian(mean.expand(20000, 2), std.expand(20000, 2))
    s = g.rsample()
    torch.testing.assert_close(s.mean(0), mean.detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(s.std(0), std.detach(), atol=0.05, rtol=0)
    (s.square().mean() + g.kl_standard_normal().sum()).backward()
    assert torch.isfinite(mean.grad).all() and (mean.grad != 0).all()
    assert torch.isfinite(std.grad).all() and (std.grad != 0).all()
    assert g.detach().mean.requires_grad is False


def _brute_mixture(x, means, log_w, sigma, per_channel):
    """Per-pixel mixture with Python loops and math.log/exp (float64)."""
    k_slots, c_ch, h_px, w_px = means.shape
    out = torch.zeros(c_ch, h_px, w_px) if per_channel else torch.zeros(h_px, w_px)
    for i in range(h_px):
        for j in range(w_px):
            channels = range(c_ch) if per_channel else [None]
            for c in channels:
                total = 0.0
                for k in range(k_slots):
                    s = float(sigma[k])
                    chans = [c] if per_channel else range(c_ch)
                    lik = math.exp(float(log_w[k, 0, i, j]))
                    for cc in chans:
                        d = float(x[cc, i, j] - means[k, cc, i, j])
                        lik *= math.exp(-0.5 * (d / s) ** 2) / (s * math.sqrt(2 * math.pi))
                    total += lik
                if per_channel:
                    out[c, i, j] = math.log(total)
                else:
                    out[i, j] = math.log(total)
    return out


@pytest.mark.parametrize("per_channel", [False, True])
def test_mixture_matches_brute_force(per_channel):
    torch.manual_seed(0)
    x, means, logits = torch.rand(3, 3, 4), torch.rand(4, 3, 3, 4), torch.randn(4, 1, 3, 4)
    sigma = torch.tensor([0.3, 0.5, 0.5, 0.5])  # MONet-style: background slot gets its own sigma
    got = gaussian_mixture_log_likelihood(x, means, mask_logits=logits, sigma=sigma, per_channel=per_channel)
    expected = _brute_mixture(x, means, logits.log_softmax(0), sigma, per_channel)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_mixture_matches_mixture_same_family_and_accepts_log_masks():
    torch.manual_seed(0)
    b, k, c, h, w = 2, 3, 3, 5, 4
    x, means, logits = torch.rand(b, c, h, w), torch.rand(b, k, c, h, w), torch.randn(b, k, 1, h, w)
    sigma = 0.1
    got = gaussian_mixture_log_likelihood(x, means, mask_logits=logits, sigma=sigma)
    assert got.shape == (b, h, w)
    # torch: batch [b, h, w], components over K, event over C.
    pix_means = means.permute(0, 3, 4, 1, 2)  # [b, h, w, K, C]
    mix = td.MixtureSameFamily(td.Categorical(logits=logits[:, :, 0].permute(0, 2, 3, 1)),
                               td.Independent(td.Normal(pix_means, sigma), 1))
    torch.testing.assert_close(got, mix.log_prob(x.permute(0, 2, 3, 1)), atol=1e-4, rtol=1e-5)
    # per channel: each channel is its own 1-D mixture
    got_c = gaussian_mixture_log_likelihood(x, means, log_masks=logits.log_softmax(1), sigma=sigma, per_channel=True)
    mix_c = td.MixtureSameFamily(td.Categorical(logits=logits.expand(b, k, c, h, w).permute(0, 2, 3, 4, 1)),
                                 td.Normal(means.permute(0, 2, 3, 4, 1), sigma))
    torch.testing.assert_close(got_c, mix_c.log_prob(x), atol=1e-4, rtol=1e-5)


def test_mixture_gradients_and_errors():
    torch.manual_seed(0)
    means = torch.rand(2, 3, 3, 4, 4, requires_grad=True)
    logits = torch.randn(2, 3, 1, 4, 4, requires_grad=True)
    ll = gaussian_mixture_log_likelihood(torch.rand(2, 3, 4, 4), means, mask_logits=logits, sigma=0.05)
    ll.sum().backward()
    assert torch.isfinite(means.grad).all() and torch.isfinite(logits.grad).all()
    # far from every component the log-likelihood stays finite (logsumexp, not log(sum(exp)))
    far = gaussian_mixture_log_likelihood(torch.full((3, 2, 2), 50.0), torch.zeros(2, 3, 2, 2),
                                          mask_logits=torch.zeros(2, 1, 2, 2), sigma=0.01)
    assert torch.isfinite(far).all()
    with pytest.raises(ConfigError, match="exactly one"):
        gaussian_mixture_log_likelihood(torch.rand(3, 4, 4), torch.rand(2, 3, 4, 4))
    with pytest.raises(ShapeError, match="mask_logits"):
        gaussian_mixture_log_likelihood(torch.rand(3, 4, 4), torch.rand(2, 3, 4, 4), mask_logits=torch.rand(2, 3, 4, 4))
    with pytest.raises(ConfigError, match="sigma"):
        gaussian_mixture_log_likelihood(torch.rand(3, 4, 4), torch.rand(2, 3, 4, 4),
                                        mask_logits=torch.rand(2, 1, 4, 4), sigma=0.0)


def test_gumbel_softmax_hard_soft_and_gradients():
    torch.manual_seed(0)
    logits = torch.randn(5, 4, requires_grad=True)
    hard = gumbel_softmax(logits, tau=0.5, hard=True)
    assert ((hard == 0) | (hard == 1)).all() and (hard.sum(-1) == 1).all()
    (hard * torch.arange(4.0)).sum().backward()  # straight-through: the soft sample's gradient
    assert logits.grad.abs().sum() > 0
    logits.grad = None
    soft = gumbel_softmax(logits, tau=1.0)
    torch.testing.assert_close(soft.sum(-1), torch.ones(5))
    assert (soft > 0).all() and (soft < 1).all()
    (soft * torch.arange(4.0)).sum().backward()
    assert logits.grad.abs().sum() > 0
    # the argmax of a Gumbel-perturbed sample is distributed as softmax(logits)
    probe = torch.tensor([0.5, -1.0, 1.5])
    counts = gumbel_softmax(probe.expand(40000, 3), hard=True).mean(0)
    torch.testing.assert_close(counts, probe.softmax(0), atol=0.015, rtol=0)


def test_categorical_kl_matches_torch():
    torch.manual_seed(0)
    q, p = torch.randn(3, 4, 6), torch.randn(3, 4, 6)
    expected = td.kl_divergence(td.Categorical(logits=q), td.Categorical(logits=p))
    torch.testing.assert_close(categorical_kl(q, p), expected)
    torch.testing.assert_close(categorical_kl(q.transpose(1, 2), p.transpose(1, 2), dim=1), expected)
    q_zero = torch.tensor([0.0, float("-inf"), 1.0])  # q rules out category 1
    assert torch.isfinite(categorical_kl(q_zero, torch.zeros(3)))
