"""Hungarian algorithm against SciPy; mBO and Hungarian mIoU against brute force on small cases."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment as scipy_lsa

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.metrics import hungarian_miou, linear_sum_assignment, mean_best_overlap


@pytest.mark.parametrize("maximize", [False, True])
def test_hungarian_matches_scipy_on_random_matrices(maximize):
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, m = rng.integers(1, 9, size=2)
        if trial % 3 == 0:  # integer costs: many ties, so only the optimal total is unique
            cost = rng.integers(0, 4, size=(n, m)).astype(np.float64)
        else:
            cost = rng.normal(size=(n, m)) * 10 ** rng.uniform(-2, 3)
        rows, cols = linear_sum_assignment(cost, maximize=maximize)
        ref_rows, ref_cols = scipy_lsa(cost, maximize=maximize)
        assert len(rows) == min(n, m)
        assert (np.diff(rows) > 0).all() and len(set(cols.tolist())) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum(), rel=1e-9, abs=1e-9)
        if trial % 3:  # continuous costs: the optimum is unique
            np.testing.assert_array_equal(rows, ref_rows)
            np.testing.assert_array_equal(cols, ref_cols)


def test_hungarian_larger_rectangular_and_torch_input():
    rng = np.random.default_rng(1)
    for n, m in [(40, 25), (25, 40), (60, 60)]:
        cost = rng.uniform(size=(n, m))
        rows, cols = linear_sum_assignment(torch.from_numpy(cost))
        ref_rows, ref_cols = scipy_lsa(cost)
        np.testing.assert_array_equal(cols, ref_cols)
        np.testing.assert_array_equal(rows, ref_rows)


def test_hungarian_hand_example_and_errors():
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    rows, cols = linear_sum_assignment(cost)  # 1 + 2 + 2 = 5 is the unique optimum
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 2]
    empty_rows, empty_cols = linear_sum_assignment(np.zeros((0, 3)))
    assert len(empty_rows) == len(empty_cols) == 0
    with pytest.raises(ShapeError, match="cost"):
        linear_sum_assignment(np.zeros(3))
    with pytest.raises(ShapeError, match="finite"):
        linear_sum_assignment(np.array([[np.inf, 1.0]]))


def _brute_force(true: np.ndarray, pred: np.ndarray, ignore_background: bool) -> tuple[float, float]:
    """mBO and Hungarian mIoU of one frame or video, from explicit masks and all slot permutations."""
    valid = true >= 0
    objects = [c for c in np.unique(true[valid]) if not (ignore_background and c == 0)]
    if not objects:
        return math.nan, math.nan
    slots = range(int(pred.max()) + 1)

    def iou(c, k):
        gt, pr = (true == c) & valid, (pred == k) & valid
        union = (gt | pr).sum()
        return (gt & pr).sum() / union if union else 0.0

    table = np.array([[iou(c, k) for k in slots] for c in objects])
    mbo = table.max(axis=1).mean()
    best = 0.0
    n = min(len(objects), len(slots))
    for chosen in itertools.permutations(range(len(slots)), n):
        for rows in itertools.combinations(range(len(objects)), n):
            best = max(best, sum(table[r, k] for r, k in zip(rows, chosen)))
    return mbo, best / len(objects)


@pytest.mark.parametrize("per", ["frame", "video"])
@pytest.mark.parametrize("ignore_background", [True, False])
def test_mbo_and_miou_match_brute_force(per, ignore_background):
    for seed in range(12):
        g = torch.Generator().manual_seed(seed)
        b, t, h, w = 2, 2, 4, 5
        n_slots = 2 + seed % 3
        labels = torch.tensor([-1, 0, 0, 1, 2, 4, 5])[: 3 + seed % 5]  # ignore pixels and empty ids
        true = labels[torch.randint(len(labels), (b, t, h, w), generator=g)]
        logits = torch.randn(b, t, n_slots, h, w, generator=g)
        logits += 3 * torch.nn.functional.one_hot(true.clamp(min=0) % n_slots, n_slots).permute(0, 1, 4, 2, 3)
        pred = logits.argmax(2)
        mbo = mean_best_overlap(true, logits, per=per, ignore_background=ignore_background)
        miou = hungarian_miou(true, logits, per=per, ignore_background=ignore_background)
        t_np, p_np = true.numpy(), pred.numpy()
        if per == "video":
            want = [_brute_force(t_np[i], p_np[i], ignore_background) for i in range(b)]
            assert mbo.shape == miou.shape == (b,)
        else:
            want = [_brute_force(t_np[i, f], p_np[i, f], ignore_background) for i in range(b) for f in range(t)]
            assert mbo.shape == miou.shape == (b, t)
        np.testing.assert_allclose(mbo.flatten().numpy(), [x[0] for x in want], atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(miou.flatten().numpy(), [x[1] for x in want], atol=1e-12, equal_nan=True)
        assert (miou.nan_to_num(0) <= mbo.nan_to_num(0) + 1e-12).all()  # one-to-one can only lose overlap


def test_hand_worked_overlaps():
    # Two objects, one slot covering both: best overlap 2/4 each; one-to-one leaves one object at 0.
    true = torch.tensor([[[1, 1, 2, 2], [0, 0, 0, 0]]])
    pred = torch.tensor([[[1, 1, 1, 1], [0, 0, 0, 0]]])
    assert mean_best_overlap(true, pred).item() == pytest.approx(0.5)
    assert hungarian_miou(true, pred).item() == pytest.approx(0.25)
    # With background counted, slot 0 covers it exactly.
    assert mean_best_overlap(true, pred, ignore_background=False).item() == pytest.approx(2 / 3)
    # No object at all -> NaN.
    assert torch.isnan(mean_best_overlap(torch.zeros_like(true), pred))
    assert torch.isnan(hungarian_miou(torch.zeros_like(true), pred))


def test_video_iou_is_taken_over_the_whole_volume():
    true = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]]).view(1, 2, 2, 2)
    pred = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]]).view(1, 2, 2, 2)  # slot 1 leaves its object at t=1
    assert mean_best_overlap(true, pred, per="frame").tolist() == [[1.0, 1.0]]
    assert mean_best_overlap(true, pred, per="video").item() == pytest.approx(2 / 6)


def test_matching_metrics_reject_bad_inputs():
    true = torch.zeros(1, 2, 3, 3, dtype=torch.long)
    with pytest.raises(ShapeError, match="prediction"):
        mean_best_overlap(true, torch.zeros(1, 2, 3, 3, 3, 3))
    with pytest.raises(ConfigError, match="per"):
        hungarian_miou(true, true, per="pixel")
