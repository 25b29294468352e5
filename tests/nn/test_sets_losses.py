import math

import pytest
import torch

from slotvideo.errors import ShapeError
from slotvideo.nn.losses import info_nce, set_contrastive_loss
from slotvideo.nn.sets import DeepSets


def test_deepsets_shape_permutation_invariance_and_gradients():
    torch.manual_seed(0)
    enc = DeepSets(16, 32, 8)
    slots = torch.randn(2, 3, 5, 16)
    z = enc(slots)
    assert z.shape == (2, 3, 8)
    torch.testing.assert_close(enc(slots[..., torch.randperm(5), :]), z, atol=1e-5, rtol=1e-5)
    z.square().sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    with pytest.raises(ShapeError, match="DeepSets slots"):
        enc(torch.randn(2, 5, 15))


def _brute_info_nce(anchors, positives, negatives, mask, temperature, in_batch):
    losses = []
    for i in range(anchors.shape[0]):
        pos = math.exp(float(anchors[i] @ positives[i]) / temperature)
        denom = pos
        if in_batch:
            for j in range(positives.shape[0]):
                if j != i:
                    denom += math.exp(float(anchors[i] @ positives[j]) / temperature)
        for m in range(negatives.shape[0]):
            if not mask[i, m]:
                denom += math.exp(float(anchors[i] @ negatives[m]) / temperature)
        losses.append(-math.log(pos / denom))
    return torch.tensor(losses)


@pytest.mark.parametrize("in_batch", [True, False])
def test_info_nce_matches_brute_force(in_batch):
    torch.manual_seed(0)
    a, p, n = torch.randn(5, 4), torch.randn(5, 4), torch.randn(3, 4)
    mask = torch.rand(5, 3) > 0.6
    got = info_nce(a, p, n, temperature=0.7, negatives_mask=mask, in_batch=in_batch, reduction="none")
    expected = _brute_info_nce(a, p, n, mask, 0.7, in_batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(info_nce(a, p, n, temperature=0.7, negatives_mask=mask, in_batch=in_batch),
                               expected.mean(), atol=1e-5, rtol=1e-5)


def test_set_contrastive_loss_matches_equation_2():
    torch.manual_seed(0)
    b, t, d, tau = 2, 3, 4, 0.5
    z_p, z_s = torch.randn(b, t, d, requires_grad=True), torch.randn(b, t, d)
    got = set_contrastive_loss(z_p, z_s, temperature=tau, reduction="none")
    assert got.shape == (b, t)
    zp = z_p.detach()

    def g(u, v):
        return math.exp(float(u @ v) / tau)

    for i in range(b):
        for s in range(t):
            anchor = zp[i, s]
            denom = sum(g(anchor, z_s[j, r]) for j in range(b) for r in range(t))
            denom += sum(g(anchor, zp[j, r]) for j in range(b) for r in range(t) if (j, r) != (i, s))
            expected = -math.log(g(anchor, z_s[i, s]) / denom)
            assert abs(float(got[i, s].detach()) - expected) < 1e-4
    loss = set_contrastive_loss(z_p, z_s, temperature=tau)
    torch.testing.assert_close(loss, got.mean())
    loss.backward()
    assert torch.isfinite(z_p.grad).all() and z_p.grad.abs().sum() > 0
    with pytest.raises(ShapeError, match="z_target"):
        set_contrastive_loss(z_p, z_s[:, :2])
