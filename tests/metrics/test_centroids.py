import pytest
import torch

from slotvideo.errors import ShapeError
from slotvideo.metrics import mask_centroids


def test_mask_centroids():
    masks = torch.zeros(1, 2, 5, 6)
    masks[0, 0, 1, 2] = 1.0
    masks[0, 1, 3:5, 4] = 0.5
    torch.testing.assert_close(mask_centroids(masks), torch.tensor([[[1.0, 2.0], [3.5, 4.0]]]))


def test_mask_centroids_match_a_brute_force_loop_over_pixels():
    masks = torch.rand(2, 3, 5, 7)
    expected = torch.zeros(2, 3, 2)
    for b in range(2):
        for k in range(3):
            total = 0.0
            for i in range(5):
                for j in range(7):
                    w = float(masks[b, k, i, j])
                    expected[b, k, 0] += w * i
                    expected[b, k, 1] += w * j
                    total += w
            expected[b, k] /= total
    torch.testing.assert_close(mask_centroids(masks), expected)


def test_mask_centroids_of_an_empty_mask_are_finite_and_a_bad_shape_is_named():
    assert torch.equal(mask_centroids(torch.zeros(1, 2, 4, 4)), torch.zeros(1, 2, 2))
    with pytest.raises(ShapeError, match="masks"):
        mask_centroids(torch.zeros(4, 4))
