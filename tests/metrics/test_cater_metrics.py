"""CATER localization metrics against hand-worked points and a NumPy re-statement of the official eval."""
import numpy as np
import pytest
import torch

from slotvideo.errors import ConfigError, DataError, ShapeError
from slotvideo.metrics import (
    average_clip_scores,
    cater_localization,
    class_to_cell,
    grid_l1_distance,
    position_to_class,
    top_k_accuracy,
)


def test_position_to_class_on_hand_worked_points():
    # Reference 2.2: col = floor(x) + 3, row = floor(y) + 3, class = row * 6 + col.
    points = torch.tensor([[-3.0, -3.0], [2.9, -3.0], [-3.0, 2.9], [0.5, -0.5], [0.0, 0.0], [-0.01, 2.0]])
    assert position_to_class(points).tolist() == [0, 5, 30, 15, 21, 32]
    # Scene positions are (x, y, z); z plays no part.
    assert position_to_class(torch.tensor([[0.5, -0.5, 0.34]])).tolist() == [15]
    # 8x8: scale by 4/3, then +4: (0.667, -0.667) -> col 4, row 3 -> 3*8+4.
    assert position_to_class(torch.tensor([0.5, -0.5]), grid=8).item() == 28
    # 4x4: scale by 2/3, then +2: (1.933, -2.0) -> col 3, row 0.
    assert position_to_class(torch.tensor([2.9, -3.0]), grid=4).item() == 3


def test_position_off_the_plane_raises_or_clips():
    with pytest.raises(DataError, match="position"):
        position_to_class(torch.tensor([3.0, 0.0]))
    assert position_to_class(torch.tensor([3.0, 5.0]), clip=True).item() == 35
    assert position_to_class(torch.tensor([-7.0, -3.5]), clip=True).item() == 0
    with pytest.raises(ShapeError, match="position"):
        position_to_class(torch.tensor([1.0]))
    with pytest.raises(ConfigError, match="grid"):
        position_to_class(torch.zeros(2), grid=5)


def test_cells_and_l1_distance_by_hand():
    row, col = class_to_cell(torch.tensor([0, 5, 30, 15, 35]))
    assert row.tolist() == [0, 0, 5, 2, 5] and col.tolist() == [0, 5, 0, 3, 5]
    logits = torch.full((3, 36), -1.0)
    logits[0, 35] = 1.0  # label 0 -> (5, 5) away: 10
    logits[1, 14] = 1.0  # label 7 = (1, 1), pred 14 = (2, 2): 2
    logits[2, 20] = 1.0  # exact: 0
    labels = torch.tensor([0, 7, 20])
    assert grid_l1_distance(logits, labels).tolist() == [10.0, 2.0, 0.0]
    out = cater_localization(logits, labels)
    assert out == pytest.approx({"top1": 1 / 3, "top5": 1 / 3, "l1": 4.0})


def _official_style(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The official numbers written independently: argsort ranks, then Manhattan distance of cells."""
    ranked = np.argsort(-scores, axis=1, kind="stable")
    side = int(np.sqrt(scores.shape[1]))
    pred = ranked[:, 0]
    return {
        "top1": float(np.mean(ranked[:, :1] == labels[:, None])),
        "top5": float(np.mean((ranked[:, :5] == labels[:, None]).any(axis=1))),
        "l1": float(np.mean(np.abs(pred % side - labels % side) + np.abs(pred // side - labels // side))),
    }


def test_matches_official_style_on_random_scores():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(17, 36, generator=g) * 3
        labels = torch.randint(36, (17,), generator=g)
        got = cater_localization(logits, labels)
        assert got == pytest.approx(_official_style(logits.double().numpy(), labels.numpy()))
    assert top_k_accuracy(logits, labels, 36).tolist() == [1.0] * 17


def test_clip_scores_are_averaged_per_video():
    g = torch.Generator().manual_seed(1)
    clip_logits = torch.randn(7, 36, generator=g)
    video_ids = torch.tensor([4, 2, 4, 9, 2, 4, 9])
    scores, ids = average_clip_scores(clip_logits, video_ids)
    assert ids.tolist() == [2, 4, 9]
    probs = clip_logits.double().softmax(-1)
    for row, vid in enumerate(ids.tolist()):
        torch.testing.assert_close(scores[row], probs[video_ids == vid].mean(0))
    # [B, S, C] clip logits give the same per-video scores as the flat form.
    stacked = clip_logits[:6].view(3, 2, 36)
    labels = torch.tensor([3, 8, 30])
    flat_scores, _ = average_clip_scores(clip_logits[:6], torch.tensor([0, 0, 1, 1, 2, 2]))
    assert cater_localization(stacked, labels) == pytest.approx(_official_style(flat_scores.numpy(), labels.numpy()))


def test_bad_inputs_name_the_argument():
    with pytest.raises(ShapeError, match="labels"):
        top_k_accuracy(torch.zeros(3, 36), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ShapeError, match="labels"):
        top_k_accuracy(torch.zeros(3, 36), torch.tensor([0, 1, 36]))
    with pytest.raises(ShapeError, match="logits"):
        top_k_accuracy(torch.zeros(36), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ShapeError, match="square"):
        grid_l1_distance(torch.zeros(2, 35), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ConfigError, match="k"):
        top_k_accuracy(torch.zeros(2, 36), torch.zeros(2, dtype=torch.long), k=0)
    with pytest.raises(ShapeError, match="video_ids"):
        average_clip_scores(torch.zeros(3, 36), torch.zeros(2, dtype=torch.long))
