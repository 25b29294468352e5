"""Bouncing Balls: exact elastic physics, no overlaps, masks matching positions, fixed colours."""
import numpy as np
import pytest

from slotvideo.data.synthetic import BouncingBalls
from slotvideo.data.synthetic.bouncing_balls import disc_sdf, simulate
from slotvideo.errors import ConfigError


def test_balls_never_overlap_each_other_or_the_walls():
    g = BouncingBalls(num_balls=6, radius=3.0, speed=4.0, num_frames=20, antialias=False)
    collisions = 0
    for i in range(30):
        s = g.sample(0, "train", i)
        p = s["positions"].astype(np.float64)
        assert (p >= 2.5 - 1e-4).all() and (p <= 28.5 + 1e-4).all()  # whole disc inside [-0.5, 31.5]
        d = np.linalg.norm(p[:, :, None] - p[:, None, :], axis=-1) + np.eye(6) * 100
        assert d.min() >= 6.0 - 1e-3
        collisions += int((d < 6.5).sum())
        # Hard discs therefore never share a pixel: at most one disc covers each pixel centre.
        assert ((disc_sdf(p, 3.0, 32, 32) <= 0).sum(1) <= 1).all()
        assert s["visible"].all()
    assert collisions > 0  # the test exercises contacts


def test_head_on_collision_swaps_velocities_and_walls_reflect():
    # Two balls on a line moving towards each other at 1 px/frame; they touch at t = 1.
    p = np.array([[10.0, 5.0], [10.0, 11.0]])
    v = np.array([[0.0, 1.0], [0.0, -1.0]])
    out = simulate(p, v, 4, low=2.5, high=28.5, radius=2.0)
    np.testing.assert_allclose(out[:, 0, 1], [5, 6, 5, 4], atol=1e-9)
    np.testing.assert_allclose(out[:, 1, 1], [11, 10, 11, 12], atol=1e-9)
    # One ball bouncing off the right wall (high = 28.5) keeps its speed.
    out = simulate(np.array([[10.0, 27.5]]), np.array([[0.0, 2.0]]), 3, low=2.5, high=28.5, radius=3.0)
    np.testing.assert_allclose(out[:, 0, 1], [27.5, 27.5, 25.5], atol=1e-9)


def test_glancing_collision_conserves_momentum_and_energy():
    p = np.array([[15.0, 10.0], [17.0, 16.0]])
    v = np.array([[0.0, 1.5], [-0.3, -1.0]])
    out = simulate(p, v, 9, low=-100.0, high=100.0, radius=2.0)  # far walls: only the collision acts
    v_after = out[-1] - out[-2]
    np.testing.assert_allclose(v_after.sum(0), v.sum(0), atol=1e-9)
    np.testing.assert_allclose((v_after ** 2).sum(), (v ** 2).sum(), atol=1e-9)
    assert not np.allclose(v_after, v)


def test_masks_match_positions_and_colours():
    g = BouncingBalls(antialias=False)
    for i in range(5):
        s = g.sample(1, "train", i)
        seg, video, pos = s["segmentation"], s["video"], s["positions"]
        for t in range(12):
            for k in range(3):
                r, c = np.rint(pos[t, k]).astype(int)
                assert seg[t, r, c] == k + 1
                rows, cols = np.nonzero(seg[t] == k + 1)
                np.testing.assert_allclose([rows.mean(), cols.mean()], pos[t, k], atol=0.5)
                assert abs(len(rows) - np.pi * 9) < 8
                assert len({tuple(x) for x in video[t][seg[t] == k + 1]}) == 1  # one flat colour
        assert ((video.max(-1) > 0) == (seg > 0)).all()


def test_antialiased_edges_and_segmentation_of_the_core():
    s = BouncingBalls().sample(0, "train", 0)
    levels = np.unique(s["video"])
    assert len(levels) > 10  # soft edges
    hard = BouncingBalls(antialias=False).sample(0, "train", 0)
    np.testing.assert_array_equal(s["positions"], hard["positions"])
    assert (s["segmentation"] != hard["segmentation"]).mean() < 0.02


def test_colours_fixed_across_dataset_and_splits():
    g = BouncingBalls(antialias=False)

    def colours(s):
        return [tuple(s["video"][0][s["segmentation"][0] == k + 1][0]) for k in range(3)]

    base = colours(g.sample(0, "train", 0))
    assert len(set(base)) == 3
    assert colours(g.sample(0, "train", 5)) == base and colours(g.sample(0, "test", 2)) == base
    assert colours(g.sample(1, "train", 0)) != base  # another dataset seed, another offset
    free = BouncingBalls(antialias=False, fixed_colors=False)
    assert colours(free.sample(0, "train", 0)) != colours(free.sample(0, "train", 1))


@pytest.mark.parametrize("params, key", [
    ({"radius": 20.0}, "radius"), ({"num_balls": 40}, "num_balls"), ({"num_frames": 0}, "num_frames"),
    ({"resolution": 2}, "resolution"), ({"speed": -1.0}, "speed"), ({"antialias": "maybe"}, "antialias"),
])
def test_impossible_settings(params, key):
    with pytest.raises(ConfigError, match=rf"'{key}' must be"):
        BouncingBalls.from_params(params)


def test_locate_labels_the_target_balls_cell_horizon_frames_on():
    from slotvideo.data.synthetic.bouncing_balls import cell_class
    from slotvideo.metrics.cater import class_to_cell
    import torch
    base = dict(resolution=16, num_frames=6, num_balls=3, radius=2.0, speed=1.5)
    for horizon in (0, 3):
        g = BouncingBalls(**base, task="locate", horizon=horizon, target=1)
        longer = BouncingBalls(**{**base, "num_frames": 6 + horizon})
        for i in range(20):
            s, full = g.sample(0, "val", i), longer.sample(0, "val", i)
            # the same scenes: the clip is the first frames of the longer simulation, the label its last frame
            np.testing.assert_array_equal(s["video"], full["video"][:6])
            np.testing.assert_array_equal(s["positions"], full["positions"][:6])
            y, x = full["positions"][-1, 1]
            row, col = class_to_cell(torch.tensor(int(s["label"])), 6)
            assert row * 16 / 6 - 0.5 <= y < (row + 1) * 16 / 6 - 0.5 and col * 16 / 6 - 0.5 <= x < (col + 1) * 16 / 6 - 0.5
    # horizon 0: the cell of the target's centre in the last frame, where its own mask is drawn
    g = BouncingBalls(**base, task="locate", antialias=False)
    for i in range(40):
        s = g.sample(0, "train", i)
        ys, xs = np.nonzero(s["segmentation"][-1] == 1)       # ball 0 is segment 1
        assert np.abs(np.array([ys.mean(), xs.mean()]) - s["positions"][-1, 0]).max() < 0.5
        assert cell_class(s["positions"][-1, 0], 16, 6) == s["label"]
    # edges of the frame fall in the edge cells; the grid covers it
    assert cell_class(np.array([[-0.5, -0.5], [15.49, 15.49], [7.4, 8.1]]), 16, 6).tolist() == [0, 35, 2 * 6 + 3]
    assert "label" not in BouncingBalls(**base).sample(0, "train", 0)


@pytest.mark.parametrize("params, key", [({"task": "classify"}, "task"), ({"task": "locate", "horizon": -1}, "horizon"),
                                         ({"target": 3}, "target"), ({"grid": 0}, "grid")])
def test_locate_rejects_bad_settings(params, key):
    with pytest.raises(ConfigError, match=rf"'{key}' must"):
        BouncingBalls(**params)
