"""Multi-Object GridWorld (SetCon A.3): one-pixel moves, reflection at the border, colours, occlusion."""
import colorsys

import numpy as np
import pytest

from slotvideo.data import DIRECTIONS, open_dataset
from slotvideo.data.synthetic import GridWorld
from slotvideo.errors import ConfigError


def _samples(n=40, **params):
    g = GridWorld.from_params(params)
    return [g.sample(0, "train", i) for i in range(n)]


def test_sample_contract_shapes_and_dtypes():
    s = open_dataset("gridworld", "train", num=3)[0]
    assert s["video"].shape == (8, 3, 5, 5) and str(s["video"].dtype) == "torch.float32"
    assert s["segmentation"].shape == (8, 5, 5) and str(s["segmentation"].dtype) == "torch.int64"
    assert s["positions"].shape == (8, 3, 2) and s["visible"].shape == (8, 3)
    assert s["moves"].shape == (7, 3) and str(s["moves"].dtype) == "torch.int64"
    assert 0.0 <= float(s["video"].min()) and float(s["video"].max()) <= 1.0


def test_moves_are_one_pixel_and_reflect_at_the_border():
    for s in _samples():
        pos, moves = s["positions"].astype(int), s["moves"].astype(int)
        step = pos[1:] - pos[:-1]
        assert (np.abs(step).sum(-1) == 1).all()  # exactly one pixel (Manhattan) per step
        np.testing.assert_array_equal(step, DIRECTIONS[moves])
        assert ((pos >= 0) & (pos < 5)).all()
        # The heading only changes by reversing, and only when the object sits on the border it faced.
        changed = moves[1:] != moves[:-1]
        assert (moves[1:][changed] == (moves[:-1][changed] ^ 1)).all()
        t, k = np.nonzero(changed)
        ahead = pos[t + 1, k] + DIRECTIONS[moves[t, k]]
        assert ((ahead < 0) | (ahead >= 5)).any(-1).all()
        assert len({tuple(p) for p in pos[0]}) == 3  # distinct start cells


def test_masks_match_positions_colours_and_occlusion():
    occluded = 0
    for s in _samples():
        video, seg, pos, vis = s["video"], s["segmentation"], s["positions"].astype(int), s["visible"]
        colors = {}
        for t in range(8):
            cells = {tuple(p) for p in pos[t]}
            assert set(zip(*np.nonzero(seg[t]))) == cells  # objects cover exactly their cells
            assert ((video[t].max(-1) > 0) == (seg[t] > 0)).all()  # black background elsewhere
            for k in range(3):
                owner = seg[t, pos[t, k, 0], pos[t, k, 1]]
                assert vis[t, k] == (owner == k + 1)
                if owner == k + 1:
                    colors.setdefault(k, tuple(video[t, pos[t, k, 0], pos[t, k, 1]]))
                    assert colors[k] == tuple(video[t, pos[t, k, 0], pos[t, k, 1]])
            occluded += int((~vis[t]).sum())
            assert vis[t].sum() == len(cells)  # one visible object per occupied cell
        assert len(set(colors.values())) == len(colors)  # each colour once per sequence
    assert occluded > 0  # overlaps do happen and hide an object


def test_colours_are_equally_spaced_hues_fixed_across_the_dataset():
    palettes = []
    for s in _samples(10):
        vis = s["visible"]
        t = int(np.argmax(vis.all(1)))
        cols = s["video"][t][s["segmentation"][t] > 0]
        palettes.append(frozenset(map(tuple, cols)))
    assert len(set(palettes)) == 1
    hues = sorted(colorsys.rgb_to_hsv(*(np.array(c) / 255))[0] for c in palettes[0])
    gaps = np.diff(hues + [hues[0] + 1])
    np.testing.assert_allclose(gaps, 1 / 3, atol=0.01)
    free = [frozenset(map(tuple, s["video"][0][s["segmentation"][0] > 0])) for s in _samples(10, fixed_colors=False)]
    assert len(set(free)) > 1


def test_same_seed_same_bytes_and_seeds_differ():
    g = GridWorld()
    a, b, c = g.sample(3, "train", 7), g.sample(3, "train", 7), g.sample(4, "train", 7)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert a["video"].tobytes() != c["video"].tobytes()


@pytest.mark.parametrize("params, key, allowed", [
    ({"num_objects": 26}, "num_objects", "[1, 25]"),
    ({"num_colors": 2}, "num_colors", "[3, inf]"),
    ({"size": 1}, "size", "[2, 127]"),
    ({"num_frames": -1}, "num_frames", "[1, inf]"),
    ({"num_frames": "many"}, "num_frames", "integer"),
])
def test_impossible_settings_name_the_param_and_range(params, key, allowed):
    with pytest.raises(ConfigError, match=key) as e:
        GridWorld.from_params(params)
    assert allowed in str(e.value)
