import pytest
import torch

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError
from slotvideo.models.monet import Monet, stick_breaking

SMALL = dict(resolution=16, num_slots=4, unet_channels=[8, 8], unet_hidden=16, encoder_channels=[8, 8],
             encoder_hidden=16, decoder_channels=[8, 8])


def small(**kw):
    torch.manual_seed(0)
    return Monet(Monet.Config(**{**SMALL, **kw}))


def test_stick_breaking_masks_sum_to_one_and_last_takes_the_remaining_scope():
    logits = [torch.randn(2, 1, 5, 5) * 3 for _ in range(3)]
    log_masks = stick_breaking(logits)
    masks = log_masks.exp()
    assert log_masks.shape == (2, 4, 1, 5, 5)
    torch.testing.assert_close(masks.sum(1), torch.ones(2, 1, 5, 5))
    # by hand: m_k = s_k * sigmoid(a_k), s_{k+1} = s_k * (1 - sigmoid(a_k)), m_last = s_last
    scope = torch.ones(2, 1, 5, 5)
    for k, a in enumerate(logits):
        torch.testing.assert_close(masks[:, k], scope * torch.sigmoid(a))
        scope = scope * (1 - torch.sigmoid(a))
    torch.testing.assert_close(masks[:, -1], scope)


def test_attention_masks_sum_to_one_and_the_scope_is_consumed():
    model = small()
    frames = torch.rand(3, 3, 16, 16)
    log_masks, log_scope = model.attention(frames)
    assert log_masks.shape == (3, 4, 1, 16, 16)
    torch.testing.assert_close(log_masks.exp().sum(1), torch.ones(3, 1, 16, 16))
    # what is left after the K-1 steps is exactly the last mask: nothing of the scope remains unassigned
    torch.testing.assert_close(log_masks[:, -1], log_scope)


def test_forward_shapes_latents_segment_and_gradients():
    model = small()
    video = torch.rand(2, 3, 3, 16, 16)
    out = model(Batch({"video": video}))
    assert out.slots.shape == (2, 3, 4, 16) and out.masks.shape == (2, 3, 4, 16, 16)
    assert out.recon.shape == video.shape and set(out.terms) == {"nll", "kl_z", "kl_mask"}
    out.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.eval()
    assert model.object_latents(video).shape == (2, 3, 4, 16)
    torch.testing.assert_close(model.object_latents(video), model(Batch({"video": video})).slots)
    masks = model.segment(video)
    torch.testing.assert_close(masks.sum(2), torch.ones(2, 3, 16, 16))


def test_frames_per_video_trains_on_a_subset_of_frames():
    model = small(frames_per_video=2)
    out = model(Batch({"video": torch.rand(2, 5, 3, 16, 16)}))
    assert out.slots.shape[:2] == (2, 2)


def test_background_and_foreground_sigmas_are_used():
    model = small(sigma_bg=0.05, sigma_fg=0.2)
    assert model.sigmas.tolist() == pytest.approx([0.05, 0.2, 0.2, 0.2])


def test_a_few_steps_lower_the_loss():
    model = small()
    video = torch.rand(1, 4, 3, 16, 16)
    video[..., 4:10, 4:10] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    batch = Batch({"video": video})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.eval()
    first = model(batch).loss.item()
    model.train()
    for _ in range(25):
        opt.zero_grad()
        model(batch).loss.backward()
        opt.step()
    model.eval()
    assert model(batch).loss.item() < first


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="model.resolution"):
        Monet(Monet.Config(**{**SMALL, "resolution": 18, "unet_channels": [8, 8, 8]}))
    with pytest.raises(ShapeError, match="video"):
        small().segment(torch.rand(1, 2, 3, 8, 8))
