"""Multi-label AP / mAP (CATER tasks 1-2) against scikit-learn's average_precision_score."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from slotvideo.errors import ShapeError
from slotvideo.metrics import average_precision, mean_average_precision


@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn_per_class(ties: bool) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        n = int(torch.randint(1, 80, (1,), generator=g))
        scores = torch.randint(0, 4, (n, 9), generator=g).float() if ties else torch.randn(n, 9, generator=g)
        labels = (torch.rand(n, 9, generator=g) < 0.3).long()
        ap = average_precision(scores, labels)
        for j in range(9):
            if labels[:, j].sum() == 0:
                assert math.isnan(ap[j])
            else:
                assert ap[j].item() == pytest.approx(average_precision_score(labels[:, j], scores[:, j]), abs=1e-12)
        present = labels.sum(0) > 0
        if present.any():
            expected = np.mean([average_precision_score(labels[:, j], scores[:, j]) for j in range(9) if present[j]])
            assert mean_average_precision(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_hand_example_and_edge_cases() -> None:
    # one class, ranking pos, neg, pos: precision 1 at recall 1/2, 2/3 at recall 1 -> AP = (1 + 2/3) / 2
    scores = torch.tensor([[0.9], [0.8], [0.1]])
    assert average_precision(scores, torch.tensor([[1], [0], [1]]))[0].item() == pytest.approx(5 / 6)
    # all tied: precision of the single threshold is the positive rate
    assert average_precision(torch.zeros(4, 1), torch.tensor([[1], [0], [0], [1]]))[0].item() == pytest.approx(0.5)
    # perfect ranking and a class without positives (left out of the mean, as the official -1)
    s = torch.tensor([[0.9, 0.3], [0.1, 0.2]])
    y = torch.tensor([[1, 0], [0, 0]])
    assert mean_average_precision(s, y) == 1.0
    assert math.isnan(mean_average_precision(s, torch.zeros(2, 2)))
    assert math.isnan(mean_average_precision(torch.zeros(0, 3), torch.zeros(0, 3)))


def test_bad_input_is_named() -> None:
    with pytest.raises(ShapeError, match="labels"):
        average_precision(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ShapeError, match="binary"):
        average_precision(torch.zeros(3, 2), torch.full((3, 2), 2))
    with pytest.raises(ShapeError, match="floating"):
        average_precision(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2))


def test_nanmean_gathers_rankings_over_batches() -> None:
    from slotvideo.eval.evaluate import NanMean
    from slotvideo.metrics.average_precision import RANKING, ranking

    g = torch.Generator().manual_seed(2)
    scores, labels = torch.randn(10, 5, generator=g), (torch.rand(10, 5, generator=g) < 0.4).long()
    acc = NanMean()
    for part in (slice(0, 3), slice(3, 10)):     # mAP of the split, not a mean of per-batch mAPs
        acc.add({"top1": torch.ones(part.stop - part.start), RANKING + "map": ranking(scores[part], labels[part])},
                part.stop - part.start)
    means, counts, samples = acc.reduce()
    assert means["map"] == pytest.approx(mean_average_precision(scores, labels), abs=1e-6)
    assert counts["map"] == samples == 10 and means["top1"] == 1.0
    # several processes: rankings are not reduced (left out), the per-sample means still are
    means, _, _ = acc.reduce(lambda t: t, names=["top1"])
    assert "map" not in means
