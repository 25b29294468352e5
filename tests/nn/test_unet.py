import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.unet import UNet


def test_shape_any_leading_dims_and_gradients():
    torch.manual_seed(0)
    net = UNet(4, 2, 16, channels=(8, 16, 16), mlp_hidden=32)
    x = torch.randn(2, 3, 4, 16, 16, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 3, 2, 16, 16)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_every_output_pixel_sees_the_whole_image():
    # the bottleneck MLP mixes all positions: changing one corner pixel changes the opposite corner
    torch.manual_seed(0)
    net = UNet(1, 1, 8, channels=(4, 4), mlp_hidden=8).eval()
    x = torch.randn(1, 1, 8, 8)
    y = x.clone()
    y[..., 0, 0] += 5.0
    assert not torch.allclose(net(x)[..., 7, 7], net(y)[..., 7, 7])


def test_bad_inputs():
    with pytest.raises(ConfigError, match="divisible"):
        UNet(3, 1, 10, channels=(4, 4, 4))
    net = UNet(3, 1, 8, channels=(4, 4))
    with pytest.raises(ShapeError, match="UNet input"):
        net(torch.randn(1, 3, 16, 16))
    with pytest.raises(ShapeError):
        net(torch.randn(1, 2, 8, 8))
