"""The slot-attention video baseline: shapes, mask normalisation, gradients, learning, segment/rollout."""
from __future__ import annotations

import pytest
import torch

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError
from slotvideo.models.slot_attention_video import SlotAttentionVideo
from slotvideo.registry import lookup

TINY = dict(resolution=16, num_slots=3, slot_dim=16, hidden=16, feature_dim=16, encoder_channels=[8, 8],
            encoder_kernel=3, decoder_channels=[8, 8], decoder_kernel=3, broadcast_resolution=4,
            iters_first=2, iters=1, transition_hidden=16)


def tiny(**kw) -> SlotAttentionVideo:
    torch.manual_seed(0)
    return SlotAttentionVideo(SlotAttentionVideo.Config(**{**TINY, **kw}))


def balls(b: int = 2, t: int = 3, res: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Two coloured squares moving right on black, with their ground-truth ids."""
    video = torch.zeros(b, t, 3, res, res)
    seg = torch.zeros(b, t, res, res, dtype=torch.long)
    for i in range(b):
        for f in range(t):
            c = 2 + f + i
            video[i, f, 0, 2:6, c:c + 4] = 1.0
            seg[i, f, 2:6, c:c + 4] = 1
            video[i, f, 2, 10:14, c:c + 4] = 1.0
            seg[i, f, 10:14, c:c + 4] = 2
    return video, seg


def test_registered_and_shapes():
    assert lookup("model", "slot-attention-video") is SlotAttentionVideo
    model = tiny()
    video, _ = balls()
    out = model(Batch({"video": video}))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.slots.shape == (2, 3, 3, 16)
    assert out.masks.shape == (2, 3, 3, 16, 16)
    assert out.recon.shape == (2, 3, 3, 16, 16)
    assert out.extra["attention"].shape == (2, 3, 3, 16 * 16)
    torch.testing.assert_close(out.masks.sum(dim=2), torch.ones(2, 3, 16, 16))
    torch.testing.assert_close(out.extra["attention"].sum(dim=2), torch.ones(2, 3, 256))


def test_single_frame_video():
    out = tiny()(Batch({"video": balls(t=1)[0]}))
    assert out.masks.shape == (2, 1, 3, 16, 16)


def test_gradient_reaches_every_parameter():
    model = tiny()
    model(Batch({"video": balls()[0]})).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient for {missing}"


def test_a_few_steps_lower_the_loss():
    model = tiny(slot_init="learned", resolution=8, broadcast_resolution=8)  # the 16x16 clip, seen at 8x8
    batch = Batch({"video": balls(b=1, t=2)[0]})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model(batch).loss.item()
    for _ in range(20):
        opt.zero_grad()
        model(batch).loss.backward()
        opt.step()
    assert model(batch).loss.item() < 0.7 * first


def test_train_frames_takes_a_window_in_training_only():
    model = tiny(train_frames=2)
    video, _ = balls(t=4)
    assert model(Batch({"video": video})).masks.shape[1] == 2
    model.eval()
    assert model(Batch({"video": video})).masks.shape[1] == 4


def test_other_input_sizes_are_resized_and_masks_come_back_at_input_size():
    model = tiny().eval()
    video = torch.rand(1, 2, 3, 32, 24)
    masks = model.segment(video)
    assert masks.shape == (1, 2, 3, 32, 24)
    torch.testing.assert_close(masks.sum(dim=2), torch.ones(1, 2, 32, 24))
    seg = torch.zeros(1, 2, 32, 24, dtype=torch.long)
    seg[..., 4:12, 4:12] = 1
    seg[..., 20:28, 10:20] = 2
    metrics = model.evaluate_batch(Batch({"video": video, "segmentation": seg}))
    assert metrics["fg_ari"].shape == (1,)


def test_segment_and_rollout_shapes():
    model = tiny().eval()
    video, _ = balls(t=3)
    masks = model.segment(video)
    assert masks.shape == (2, 3, 3, 16, 16)
    torch.testing.assert_close(masks.sum(dim=2), torch.ones(2, 3, 16, 16))
    future = model.rollout(video, steps=4)
    assert future.recon.shape == (2, 4, 3, 16, 16)
    assert future.masks.shape == (2, 4, 3, 16, 16)
    assert future.slots.shape == (2, 4, 3, 16)
    with pytest.raises(ConfigError, match="steps"):
        model.rollout(video, steps=0)


def test_evaluate_batch_metrics():
    model = tiny().eval()
    video, seg = balls()
    metrics = model.evaluate_batch(Batch({"video": video, "segmentation": seg}))
    assert set(metrics) == {"mse", "fg_ari", "fg_ari_frame", "ari"}
    assert all(v.shape == (2,) for v in metrics.values())
    assert set(model.evaluate_batch(Batch({"video": video}))) == {"mse"}
    media = model.media(Batch({"video": video}))
    assert media["masks"].shape == (2, 3, 3, 16, 16) and media["recon"].shape == video.shape


def test_bad_input_and_config():
    model = tiny()
    with pytest.raises(ShapeError, match="video"):
        model(Batch({"video": torch.rand(2, 3, 4, 16, 16)}))
    with pytest.raises(ShapeError, match="video"):
        model.segment(torch.rand(3, 3, 16, 16))
    with pytest.raises(ConfigError, match="broadcast_resolution"):
        tiny(broadcast_resolution=6)
    with pytest.raises(ConfigError, match="decoder_channels"):
        tiny(broadcast_resolution=2, decoder_channels=[8])
    with pytest.raises(ConfigError, match="num_slots"):
        tiny(num_slots=0)
