import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.encoders import BasicBlock, PixelMLP, ResNet, SizePreservingCNN


def _assert_all_grads(module):
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_size_preserving_cnn_shapes():
    cnn = SizePreservingCNN(3, channels=(8, 8, 6), kernel_sizes=(5, 3, 3))
    assert cnn(torch.randn(2, 4, 3, 12, 10)).shape == (2, 4, 6, 12, 10)
    assert cnn(torch.randn(3, 12, 10)).shape == (6, 12, 10)
    strided = SizePreservingCNN(3, channels=(8, 8), strides=(2, 2))
    assert strided(torch.randn(1, 3, 15, 16)).shape == (1, 8, 4, 4)  # ceil(15/4), 'same' like TF


def test_size_preserving_cnn_gradients_and_errors():
    cnn = SizePreservingCNN(3, channels=(4, 4), kernel_sizes=3, activation="elu")
    cnn(torch.randn(2, 3, 6, 6)).square().sum().backward()
    _assert_all_grads(cnn)
    with pytest.raises(ConfigError, match="odd"):
        SizePreservingCNN(3, kernel_sizes=4)
    with pytest.raises(ConfigError, match="strides"):
        SizePreservingCNN(3, channels=(4, 4), strides=(1, 1, 1))
    with pytest.raises(ShapeError, match="SizePreservingCNN input"):
        cnn(torch.randn(2, 4, 6, 6))


@pytest.mark.parametrize("norm", ["group", "batch", "layer", "none"])
def test_resnet_shapes_and_gradients(norm):
    net = ResNet(3, stage_channels=(8, 16), blocks=(1, 2), strides=(1, 2), norm=norm)
    x = torch.randn(2, 2, 3, 16, 16)
    y = net(x)
    assert y.shape == (2, 2, 16, 8, 8) and net.stride == 2 and net.out_channels == 16
    y.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_resnet_big_input_stem_and_default_layout():
    net = ResNet(3, stage_channels=(8, 8), blocks=1, strides=(1, 2), small_inputs=False)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 8, 4, 4) and net.stride == 8
    resnet18 = ResNet(3)
    assert sum(isinstance(m, BasicBlock) for m in resnet18.modules()) == 8
    assert resnet18(torch.randn(1, 3, 16, 16)).shape == (1, 512, 2, 2)


def test_resnet_blocks_start_as_identity_maps():
    block = BasicBlock(4, 4, 1, "group")
    x = torch.randn(2, 4, 5, 5).relu()
    assert torch.allclose(block(x), x)  # second norm scale 0, so only the shortcut remains


def test_resnet_bad_config():
    with pytest.raises(ConfigError, match="norm"):
        ResNet(3, norm="instance")
    with pytest.raises(ConfigError, match="blocks"):
        ResNet(3, stage_channels=(8, 8), blocks=(1, 1, 1))


def test_pixel_mlp_equals_1x1_convs():
    mlp = PixelMLP(4, [6], 3)
    x = torch.randn(2, 5, 4, 7, 7)
    y = mlp(x)
    assert y.shape == (2, 5, 3, 7, 7)
    lin1, lin2 = mlp.mlp.net[0], mlp.mlp.net[2]
    h = torch.nn.functional.conv2d(x.flatten(0, 1), lin1.weight[:, :, None, None], lin1.bias).relu()
    ref = torch.nn.functional.conv2d(h, lin2.weight[:, :, None, None], lin2.bias)
    assert torch.allclose(y.flatten(0, 1), ref, atol=1e-5)
    y.sum().backward()
    _assert_all_grads(mlp)
    with pytest.raises(ShapeError, match="PixelMLP input"):
        mlp(torch.randn(2, 3, 7, 7))
