"""VIM Random Walk datasets: recorded moves equal displacements, compositions sum, OOD objects."""
import colorsys

import numpy as np
import pytest

from slotvideo.data import DIRECTIONS, open_dataset
from slotvideo.data.synthetic import RandomWalk, RandomWalkCompositional, RandomWalkOOD
from slotvideo.errors import ConfigError


def _inside(pos, radius, res=32):
    return ((pos >= radius - 0.5) & (pos <= res - 0.5 - radius)).all()


def test_moves_match_displacements_and_stay_in_frame():
    g = RandomWalk(num_frames=20)
    counts = np.zeros(4, dtype=int)
    for i in range(20):
        s = g.sample(0, "train", i)
        pos, moves = s["positions"], s["moves"].astype(int)
        assert moves.shape == (19, 3) and (moves >= 0).all()
        np.testing.assert_array_equal(pos[1:] - pos[:-1], 3 * DIRECTIONS[moves])
        assert _inside(pos, 3.0)
        counts += np.bincount(moves.ravel(), minlength=4)
    assert counts.min() > 0.15 * counts.sum()  # all four directions, roughly uniform


def test_masks_follow_the_balls():
    s = RandomWalk(antialias=False).sample(2, "val", 0)
    for t in range(15):
        for k in range(3):
            r, c = s["positions"][t, k].astype(int)
            if s["visible"][t, k] and s["segmentation"][t, r, c] == k + 1:
                assert tuple(s["video"][t, r, c]) != (0, 0, 0)
    assert s["visible"][0].all()  # balls start without overlapping


def test_compositional_moves_sum_to_the_displacement():
    g = RandomWalkCompositional(num_atomic=4, min_atomic=1)
    lengths = set()
    for i in range(20):
        s = g.sample(0, "train", i)
        moves = s["moves"].astype(int)
        assert moves.shape == (14, 3, 4)
        used = moves >= 0
        assert (used[..., :1]).all() and (used[..., 1:] <= used[..., :-1]).all()  # -1 padding only at the end
        total = (DIRECTIONS[np.where(used, moves, 0)] * used[..., None]).sum(2)
        np.testing.assert_array_equal(s["positions"][1:] - s["positions"][:-1], 3 * total)
        assert _inside(s["positions"], 3.0)
        lengths |= set(used.sum(-1).ravel().tolist())
    assert lengths == {1, 2, 3, 4}
    sample = open_dataset("random-walk-compositional", "train", num=2)[0]
    assert sample["moves"].shape == (14, 3, 2)


def test_ood_objects_have_other_shapes_colours_and_sizes_but_same_dynamics():
    g = RandomWalkOOD()
    sizes, sats = [], []
    for i in range(10):
        s = g.sample(0, "test", i)
        moves = s["moves"].astype(int)
        np.testing.assert_array_equal(s["positions"][1:] - s["positions"][:-1], 3 * DIRECTIONS[moves])
        assert _inside(s["positions"], 2.0)  # within the bounds of the smallest allowed object
        seg, video = s["segmentation"][0], s["video"][0]
        for k in range(3):
            mask = seg == k + 1
            assert mask.any()
            sizes.append(int(mask.sum()))
            core = video[mask].max(0) / 255
            sats.append(colorsys.rgb_to_hsv(*core)[1])
    assert max(sizes) > 2 * min(sizes)  # sizes vary
    assert max(sats) < 0.75  # never the fully saturated training colours
    disc = RandomWalkOOD(shapes="disc", radius_min=3.0, radius_max=3.0, antialias=False).sample(0, "test", 0)
    square = RandomWalkOOD(shapes="square", radius_min=3.0, radius_max=3.0, antialias=False).sample(0, "test", 0)
    assert (disc["segmentation"][0] == 1).sum() != (square["segmentation"][0] == 1).sum()


@pytest.mark.parametrize("cls, params, key", [
    (RandomWalk, {"step": 40}, "step"),
    (RandomWalk, {"radius": 12.0}, "radius"),
    (RandomWalk, {"num_objects": 200}, "num_objects"),
    (RandomWalkCompositional, {"min_atomic": 3, "num_atomic": 2}, "min_atomic"),
    (RandomWalkOOD, {"shapes": "square,blob"}, "shapes"),
    (RandomWalkOOD, {"radius_min": 6.0, "radius_max": 5.0}, "radius_min"),
])
def test_impossible_settings(cls, params, key):
    with pytest.raises(ConfigError, match=key):
        cls.from_params(params)
