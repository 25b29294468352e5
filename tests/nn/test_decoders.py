import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.decoders import SpatialBroadcastDecoder, check_broadcast_config, compose


@pytest.mark.parametrize("position", ["soft", "linear", "fourier"])
def test_size_preserving_shapes(position):
    dec = SpatialBroadcastDecoder(6, (10, 12), channels=(8, 8), kernel_sizes=3, position=position)
    out = dec(torch.randn(2, 3, 4, 6))  # [B, T, K, D]
    assert out.rgb.shape == (2, 3, 4, 3, 10, 12)
    assert out.mask_logits.shape == (2, 3, 4, 1, 10, 12)
    assert out.masks.shape == (2, 3, 4, 10, 12)
    assert out.recon.shape == (2, 3, 3, 10, 12)
    assert torch.allclose(out.masks.sum(dim=-3), torch.ones(2, 3, 10, 12), atol=1e-6)


def test_upsampling_layout_like_slot_attention():
    dec = SpatialBroadcastDecoder(8, 32, out_channels=1, channels=(8, 8, 8, 8), broadcast_resolution=4,
                                  rgb_activation="sigmoid")
    kinds = [type(m).__name__ for m in dec.net if not isinstance(m, torch.nn.ReLU)]
    assert kinds == ["ConvTranspose2d"] * 3 + ["Conv2d"] * 2
    out = dec(torch.randn(2, 5, 8))
    assert out.rgb.shape == (2, 5, 1, 32, 32) and out.recon.shape == (2, 1, 32, 32)
    assert (out.rgb >= 0).all() and (out.rgb <= 1).all()


def test_compose_against_explicit_mixture():
    rgb, logits = torch.randn(2, 3, 3, 4, 4), torch.randn(2, 3, 1, 4, 4)
    masks, recon = compose(rgb, logits)
    w = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    assert torch.allclose(masks, w[:, :, 0], atol=1e-6)
    assert torch.allclose(recon, sum(w[:, k] * rgb[:, k] for k in range(3)), atol=1e-6)
    with pytest.raises(ShapeError, match="mask_logits"):
        compose(rgb, torch.randn(2, 4, 1, 4, 4))


def test_chunked_equals_unchunked_and_checkpointed_gradients():
    torch.manual_seed(0)
    dec = SpatialBroadcastDecoder(5, 8, channels=(6, 6), kernel_sizes=3, broadcast_resolution=4)
    z = torch.randn(2, 3, 5, requires_grad=True)
    full = dec(z)
    chunked = dec(z, chunk_size=4)
    assert torch.allclose(full.recon, chunked.recon, atol=1e-6)
    assert torch.allclose(full.rgb, chunked.rgb, atol=1e-6)
    g_full = torch.autograd.grad(full.recon.square().sum(), z)[0]
    dec.checkpoint = True
    g_ckpt = torch.autograd.grad(dec(z, chunk_size=4).recon.square().sum(), z)[0]
    assert torch.allclose(g_full, g_ckpt, atol=1e-5)


def test_batched_equals_loop_over_slots():
    dec = SpatialBroadcastDecoder(4, 6, channels=(5,), kernel_sizes=3, position="fourier", num_frequencies=2)
    z = torch.randn(2, 3, 4)
    out = dec(z)
    for k in range(3):
        single = dec(z[:, k:k + 1])
        assert torch.allclose(out.rgb[:, k], single.rgb[:, 0], atol=1e-6)


def test_gradients_reach_every_parameter():
    dec = SpatialBroadcastDecoder(4, 8, channels=(6, 6), kernel_sizes=3, broadcast_resolution=2)
    dec(torch.randn(2, 3, 4)).recon.square().sum().backward()
    for name, p in dec.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_check_broadcast_config_names_the_fields():
    check_broadcast_config(32, 8, 2)                       # 8 -> 16 -> 32: two transposed convs
    check_broadcast_config(32, 32, 1)                      # no upsampling
    with pytest.raises(ConfigError, match=r"model.resolution \(24\) must be model.broadcast_resolution \(5\)"):
        check_broadcast_config(24, 5, 4)
    with pytest.raises(ConfigError, match="model.my_side"):
        check_broadcast_config(24, 16, 4, "model.my_side")   # ratio 1.5
    with pytest.raises(ConfigError, match="decoder_channels needs at least 2 layers"):
        check_broadcast_config(32, 8, 1)


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="power of two"):
        SpatialBroadcastDecoder(4, 24, broadcast_resolution=5)
    with pytest.raises(ConfigError, match=">= 3 layers"):
        SpatialBroadcastDecoder(4, 32, channels=(8, 8), broadcast_resolution=4)
    with pytest.raises(ConfigError, match="position"):
        SpatialBroadcastDecoder(4, 8, position="learned")
    with pytest.raises(ShapeError, match="latents"):
        SpatialBroadcastDecoder(4, 8)(torch.randn(2, 3, 5))
    with pytest.raises(ShapeError, match="latents"):
        SpatialBroadcastDecoder(4, 8)(torch.randn(4))


@pytest.mark.parametrize("position", ["soft", "linear", "fourier"])
@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_separable_first_layer_equals_conv_on_broadcast_grid(position, kernel):
    """The first conv computed per kernel tap (no broadcast grid) equals the conv over the position-augmented
    grid, in values and in the gradients of the latents and of every parameter."""
    torch.manual_seed(0)
    dec = SpatialBroadcastDecoder(6, (7, 9), channels=(5, 4), kernel_sizes=(kernel, 3), position=position)
    assert dec.separable_first
    latents = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    dec = dec.double()
    fast = dec._decode_flat(latents)
    grads_fast = torch.autograd.grad(fast.square().sum(), [latents, *dec.parameters()])
    slow = dec.net(dec.position(dec.broadcast(latents)))     # the plain conv over [M, D (+ extra), H, W]
    grads_slow = torch.autograd.grad(slow.square().sum(), [latents, *dec.parameters()])
    assert fast.shape == slow.shape == (4, 4, 7, 9)
    assert torch.allclose(fast, slow, atol=1e-10)
    for a, b in zip(grads_fast, grads_slow):
        assert torch.allclose(a, b, atol=1e-9)


def test_upsampling_layout_keeps_the_broadcast_grid():
    dec = SpatialBroadcastDecoder(8, 16, channels=(8, 8), broadcast_resolution=4)
    assert not dec.separable_first
