import math

import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.position import (FourierSpatialBasis, SoftPositionEmbed, coordinate_grid, fourier_features,
                                   fourier_time_encoding, sinusoidal_encoding)


def test_coordinate_grid_layout():
    g = coordinate_grid(3, 5, low=-1.0, high=1.0)
    assert g.shape == (3, 5, 2)
    assert torch.allclose(g[0, :, 0], torch.linspace(-1, 1, 5))  # x runs along W
    assert torch.allclose(g[:, 0, 1], torch.linspace(-1, 1, 3))  # y runs along H
    assert torch.equal(g[..., 0][0], g[..., 0][2])
    with pytest.raises(ConfigError, match="height"):
        coordinate_grid(0, 4)


def test_soft_position_embed_adds_a_linear_map_of_the_grid():
    pe = SoftPositionEmbed(6)
    feats = torch.randn(2, 3, 6, 4, 5)
    out = pe(feats)
    assert out.shape == feats.shape
    g = coordinate_grid(4, 5)
    x, y = g[..., 0], g[..., 1]
    expected = (pe.proj.weight[:, 0, None, None] * x + pe.proj.weight[:, 1, None, None] * y
                + pe.proj.weight[:, 2, None, None] * (1 - x) + pe.proj.weight[:, 3, None, None] * (1 - y)
                + pe.proj.bias[:, None, None])
    assert torch.allclose(out - feats, expected.expand_as(feats), atol=1e-6)
    with pytest.raises(ShapeError, match="SoftPositionEmbed features"):
        pe(torch.randn(2, 5, 4, 5))


def test_soft_position_embed_gradients():
    pe = SoftPositionEmbed(3)
    pe(torch.randn(2, 3, 4, 4)).sum().backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in pe.parameters())


def test_fourier_features_values():
    c = torch.tensor([[0.25, -0.5]])
    f = fourier_features(c, 2)
    assert f.shape == (1, 8)
    expected_sin = [math.sin(math.pi * 0.25), math.sin(2 * math.pi * 0.25),
                    math.sin(-math.pi * 0.5), math.sin(-2 * math.pi * 0.5)]
    assert torch.allclose(f[0, :4], torch.tensor(expected_sin), atol=1e-6)
    assert torch.allclose(f[0, 4:] ** 2 + f[0, :4] ** 2, torch.ones(4))


def test_fourier_spatial_basis_concatenates():
    basis = FourierSpatialBasis(3)
    assert basis.extra_channels == 2 + 12
    out = basis(torch.zeros(2, 4, 5, 6, 7))
    assert out.shape == (2, 4, 5 + 14, 6, 7)
    assert torch.allclose(out[0, 0, 5:7].permute(1, 2, 0), coordinate_grid(6, 7, -1.0, 1.0))
    linear = FourierSpatialBasis(0)
    assert linear(torch.zeros(1, 3, 4)).shape == (3, 3, 4)
    with pytest.raises(ConfigError):
        FourierSpatialBasis(0, include_coordinates=False)


def test_time_encodings():
    t = torch.linspace(-1, 1, 5)
    assert fourier_time_encoding(t, 4).shape == (5, 8)
    s = sinusoidal_encoding(torch.arange(6), 8)
    assert s.shape == (6, 8) and torch.allclose(s[0], torch.tensor([0.0] * 4 + [1.0] * 4))
