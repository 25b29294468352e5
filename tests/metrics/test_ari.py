"""ARI / FG-ARI against scikit-learn on random segmentations, and the edge cases by hand."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.metrics import ari, average_scores, fg_ari


def _sklearn_ari(true: np.ndarray, pred: np.ndarray, foreground: bool) -> float:
    keep = true > 0 if foreground else true >= 0
    if not keep.any():
        return math.nan
    return adjusted_rand_score(true[keep], pred[keep])


def _reference(true: torch.Tensor, pred_ids: torch.Tensor, per: str, foreground: bool) -> np.ndarray:
    t, p = true.numpy(), pred_ids.numpy()
    if per == "video":
        return np.array([_sklearn_ari(t[b].ravel(), p[b].ravel(), foreground) for b in range(t.shape[0])])
    return np.array([[_sklearn_ari(t[b, f].ravel(), p[b, f].ravel(), foreground) for f in range(t.shape[1])]
                     for b in range(t.shape[0])])


def _random_case(seed: int, shape: tuple[int, int, int, int]):
    g = torch.Generator().manual_seed(seed)
    b, t, h, w = shape
    # Labels drawn from a sparse set, so some ids in 0..max are empty; some pixels are ignored.
    labels = torch.tensor([-1, 0, 0, 1, 3, 4])[: 2 + seed % 5]
    true = labels[torch.randint(len(labels), shape, generator=g)]
    if seed % 4 == 0:  # blocky GT and a prediction that mostly agrees, to cover high ARI values too
        true = true[:, :, : max(h // 2, 1), : max(w // 2, 1)].repeat_interleave(2, 2).repeat_interleave(2, 3)
        true = true[:, :, :h, :w]
        true = torch.nn.functional.pad(true, (0, w - true.shape[3], 0, h - true.shape[2]), value=-1)
    k = 2 + seed % 6
    logits = torch.randn(b, t, k, h, w, generator=g)
    if seed % 4 == 0:
        logits += 4.0 * torch.nn.functional.one_hot(true.clamp(min=0) % k, k).permute(0, 1, 4, 2, 3)
    return true, logits


SHAPES = [(1, 1, 4, 4), (2, 3, 5, 7), (3, 2, 8, 8), (1, 4, 2, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("per", ["frame", "video"])
@pytest.mark.parametrize("foreground", [False, True])
def test_matches_sklearn_on_random_segmentations(shape, per, foreground):
    for seed in range(15):
        true, logits = _random_case(seed, shape)
        got = ari(true, logits, per=per, foreground=foreground)
        want = _reference(true, logits.argmax(2), per, foreground)
        assert got.dtype == torch.float64
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want, atol=1e-10, equal_nan=True)


def test_soft_masks_and_integer_ids_agree():
    true, logits = _random_case(3, (2, 3, 6, 6))
    np.testing.assert_array_equal(fg_ari(true, logits).numpy(), fg_ari(true, logits.argmax(2)).numpy())
    np.testing.assert_array_equal(ari(true, logits, per="video").numpy(),
                                  ari(true, logits.argmax(2), per="video").numpy())


def test_image_inputs_give_one_score_per_sample():
    true, logits = _random_case(5, (3, 1, 6, 6))
    for per in ("frame", "video"):
        got = ari(true[:, 0], logits[:, 0], per=per)
        assert got.shape == (3,)
        np.testing.assert_allclose(got.numpy(), ari(true, logits, per="video").numpy())


def test_hand_worked_value():
    # true {0,0,1,1}, pred {0,0,0,1}: sum C(n_ij,2)=1, sum C(a,2)=3, sum C(b,2)=2, C(4,2)=6,
    # expected = 3*2/6 = 1, max = 2.5 -> ARI = (1 - 1) / (2.5 - 1) = 0.
    true = torch.tensor([[[0, 0], [1, 1]]])
    pred = torch.tensor([[[0, 0], [0, 1]]])
    assert ari(true, pred).item() == pytest.approx(0.0, abs=1e-12)
    # Same partition up to relabelling -> 1.
    assert ari(true, 1 - true).item() == 1.0


def test_single_cluster_and_zero_denominator_give_one():
    true = torch.tensor([[[[1, 1, 0, 0], [1, 1, 0, 0]]]])  # one foreground object
    pred = torch.tensor([[[[3, 3, 2, 2], [3, 3, 2, 2]]]])  # FG in one slot, BG in another
    # DeepMind's TF reference returns NaN here (0/0); SAVi, OCLF, VideoSAUR and sklearn return 1.
    assert fg_ari(true, pred).item() == 1.0
    everything_one = torch.zeros(1, 1, 2, 4, dtype=torch.long)
    assert ari(everything_one, everything_one).item() == 1.0
    # All singletons on both sides is the other zero-denominator case.
    singletons = torch.arange(8).view(1, 1, 2, 4)
    assert ari(singletons, singletons.flip(-1)).item() == 1.0
    # One labelled pixel: n (n - 1) = 0.
    one_pixel = torch.full((1, 1, 2, 2), -1)
    one_pixel[0, 0, 0, 0] = 2
    assert fg_ari(one_pixel, torch.zeros(1, 1, 2, 2, dtype=torch.long)).item() == 1.0


def test_frames_without_labels_are_nan_and_skipped_by_the_average():
    true = torch.zeros(1, 3, 2, 2, dtype=torch.long)
    true[0, 1] = -1  # all ignore
    true[0, 2, 0, 0] = 1
    pred = torch.zeros(1, 3, 2, 2, dtype=torch.long)
    pred[0, 2, 0, 0] = 1
    scores = fg_ari(true, pred)
    assert torch.isnan(scores[0, 0]) and torch.isnan(scores[0, 1]) and scores[0, 2] == 1.0
    assert average_scores(scores).item() == 1.0
    assert average_scores(torch.tensor([0.5, float("nan"), 0.25])).item() == pytest.approx(0.375)
    assert torch.isnan(average_scores(torch.full((2,), float("nan"))))


def test_per_video_requires_consistent_slots_over_time():
    true = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]]).view(1, 2, 2, 2)
    pred = torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0]]).view(1, 2, 2, 2)  # slots swap objects at t=1
    assert ari(true, pred, per="frame").tolist() == [[1.0, 1.0]]
    assert ari(true, pred, per="video").item() < 0.5


def test_bad_inputs_name_the_argument():
    true = torch.zeros(2, 3, 4, 4, dtype=torch.long)
    with pytest.raises(ShapeError, match="segmentation"):
        ari(true.float(), true)
    with pytest.raises(ShapeError, match=r"segmentation.*\[B, T, H, W\]"):
        ari(torch.zeros(4, 4, dtype=torch.long), true)
    with pytest.raises(ShapeError, match=r"prediction.*\[B, T, K, H, W\]"):
        ari(true, torch.zeros(2, 3, 4, 4))
    with pytest.raises(ShapeError, match=r"prediction.*H=4"):
        ari(true, torch.zeros(2, 3, 5, 3, 4))
    with pytest.raises(ShapeError, match="prediction"):
        ari(true, true[:, :2])
    with pytest.raises(ShapeError, match=">= 0"):
        ari(true, true - 1)
    with pytest.raises(ShapeError, match="-1"):
        ari(true - 2, true)
    with pytest.raises(ConfigError, match="per"):
        ari(true, true, per="clip")
