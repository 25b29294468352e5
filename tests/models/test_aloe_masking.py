"""Each masking scheme masks what Figure 2 / section 2.1 of the Aloe paper says, on small [T, K] grids."""
import pytest
import torch

from slotvideo.errors import ConfigError
from slotvideo.models.aloe_masking import SCHEMES, min_frames, sample_masks

B, T, K = 64, 9, 4


def draw(scheme, **kw):
    torch.manual_seed(0)
    return sample_masks(scheme, B, T, K, **kw)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_targets_are_always_masked_and_shapes(scheme):
    keep, target = draw(scheme, target_frames=2, buffer_frames=1)
    assert keep.shape == target.shape == (B, T, K) and keep.dtype == target.dtype == torch.bool
    assert not (keep & target).any()
    assert target.any(dim=(1, 2)).all() or scheme == "uniform"


def test_one_per_frame_masks_exactly_one_slot_in_every_frame():
    keep, target = draw("one_per_frame")
    assert ((~keep).sum(-1) == 1).all()
    assert torch.equal(target, ~keep)


def test_uniform_masks_at_the_given_rate_and_targets_all_masked():
    keep, target = draw("uniform", mask_prob=0.3)
    assert torch.equal(target, ~keep)
    assert abs((~keep).float().mean().item() - 0.3) < 0.05
    assert ((~keep).sum(-1) > 1).any()   # unlike (a), several objects per frame can be masked


def _frame_kinds(keep, target):
    """Per video and frame: 'c' context (all kept), 't' target frame, 'm' masked non-target frame."""
    rows = []
    for b in range(keep.shape[0]):
        row = ""
        for t in range(keep.shape[1]):
            if keep[b, t].all():
                row += "c"
            elif target[b, t].any():
                row += "t"
            else:
                assert not keep[b, t].any(), "a frame is either all context or all masked"
                row += "m"
        rows.append(row)
    return rows


@pytest.mark.parametrize("scheme", ["predict_objects", "predict_scene"])
def test_prediction_context_strictly_before_buffer_then_targets(scheme):
    keep, target = draw(scheme, target_frames=2, buffer_frames=3)
    starts = set()
    for row in _frame_kinds(keep, target):
        c = row.index("m")
        starts.add(c)
        assert c >= 1
        assert row[:c] == "c" * c
        assert row[c:c + 3] == "mmm"                 # the buffer
        assert row[c + 3:c + 5] == "tt"              # the targets
        assert set(row[c + 5:]) <= {"m"}             # never context after the targets
    assert len(starts) > 1                           # the split point is random


@pytest.mark.parametrize("scheme", ["infill_objects", "infill_scene"])
def test_infilling_context_surrounds_buffered_targets(scheme):
    keep, target = draw(scheme, target_frames=2, buffer_frames=1)
    for row in _frame_kinds(keep, target):
        c = row.index("m")
        assert c >= 1
        assert row == "c" * c + "m" + "tt" + "m" + "c" * (T - c - 4)
        assert row.endswith("c")


@pytest.mark.parametrize("kind", ["predict", "infill"])
def test_object_targets_one_slot_per_target_frame_scene_targets_all(kind):
    keep, target = draw(f"{kind}_objects", target_frames=2, buffer_frames=1)
    frames_with_targets = target.any(-1)
    assert (target.sum(-1)[frames_with_targets] == 1).all()
    keep_s, target_s = draw(f"{kind}_scene", target_frames=2, buffer_frames=1)
    frames_with_targets = target_s.any(-1)
    assert (target_s.sum(-1)[frames_with_targets] == K).all()
    assert (frames_with_targets.sum(-1) == 2).all()


def test_too_short_videos_and_unknown_schemes_are_refused():
    assert min_frames("predict_scene", 2, 3) == 6 and min_frames("infill_scene", 2, 3) == 10
    with pytest.raises(ConfigError, match="needs videos of >= 10 frames"):
        sample_masks("infill_scene", 1, 9, 2, target_frames=2, buffer_frames=3)
    with pytest.raises(ConfigError, match="scheme must be one of"):
        sample_masks("bert", 1, 9, 2)
    # the smallest allowed video works and keeps a context frame on both sides
    keep, target = sample_masks("infill_scene", 3, 10, 2, target_frames=2, buffer_frames=3)
    assert keep[:, 0].all() and keep[:, -1].all() and target[:, 4:6].all()
