"""Camera Balls: the camera moves by the recorded actions, objects leave and re-enter, ground truth is the view."""
from __future__ import annotations

import numpy as np
import pytest

from slotvideo.data.generated import GeneratedDataset, sample_rng
from slotvideo.data.synthetic import camera
from slotvideo.data.synthetic.camera import CameraBalls, camera_path
from slotvideo.errors import ConfigError
from slotvideo.registry import lookup


def test_registered_as_generator_and_dataset() -> None:
    assert lookup("generator", "camera-balls") is CameraBalls
    assert lookup("dataset", "camera-balls") is CameraBalls


def test_sample_shapes_and_dtypes() -> None:
    gen = CameraBalls(resolution=16, world=24, num_frames=5, num_balls=3, radius=2.0)
    s = GeneratedDataset(gen, 2)[1]
    assert s["video"].shape == (5, 3, 16, 16) and s["video"].dtype.is_floating_point
    assert s["segmentation"].shape == (5, 16, 16) and int(s["segmentation"].max()) <= 3
    assert s["actions"].shape == (5, 2) and s["positions"].shape == (5, 3, 2) and s["visible"].shape == (5, 3)
    assert float(s["actions"].abs().max()) <= gen.max_action + 1e-6


def test_deterministic_per_index() -> None:
    gen = CameraBalls(resolution=16, world=24, num_frames=4, num_balls=2, radius=2.0)
    a, b = gen.sample(3, "train", 7), gen.sample(3, "train", 7)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_actions_are_the_view_shift() -> None:
    """With still balls, frame t+1's positions are frame t's minus the recorded action."""
    gen = CameraBalls(resolution=16, world=32, num_frames=6, num_balls=3, radius=2.0, speed=0.0, max_action=3.0)
    s = gen.sample(0, "train", 0)
    np.testing.assert_allclose(s["positions"][1:] - s["positions"][:-1], np.broadcast_to(-s["actions"][:-1, None, :], (5, 3, 2)), atol=1e-4)


def test_camera_stays_in_world_and_records_actual_moves() -> None:
    corners, actions = camera_path(sample_rng(0, "train", 0), 50, 16, 24, 4.0)
    assert corners.min() >= 0 and corners.max() <= 8
    np.testing.assert_allclose(corners[1:] - corners[:-1], actions[:-1], atol=1e-5)


def test_objects_leave_and_reenter_the_view() -> None:
    gen = CameraBalls(resolution=16, world=40, num_frames=30, num_balls=4, radius=2.0, max_action=3.0)
    changes = 0
    for i in range(6):
        visible = gen.sample(0, "train", i)["visible"]
        changes += int((visible[1:] != visible[:-1]).sum())
    assert changes > 0


def test_segmentation_matches_visibility() -> None:
    s = CameraBalls(resolution=16, world=32, num_frames=8, num_balls=3, radius=2.0).sample(0, "val", 2)
    for t in range(8):
        present = set(np.unique(s["segmentation"][t]).tolist()) - {0}
        assert present == {k + 1 for k in np.flatnonzero(s["visible"][t])}


@pytest.mark.parametrize("params", [{"world": 8}, {"max_action": -1.0}, {"num_balls": 0}])
def test_bad_params(params: dict) -> None:
    with pytest.raises(ConfigError):
        CameraBalls.from_params({"resolution": 16, **params})


def test_module_exports() -> None:
    assert camera.CameraBalls.name == "camera-balls"
