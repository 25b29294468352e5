"""COCO RLE decoding/encoding against vectors produced by pycocotools (mask.encode, frPyObjects) and a
brute-force column-major run-length reference."""
import numpy as np
import pytest

from slotvideo.data import rle
from slotvideo.errors import DataError

# pycocotools 2.x: mask.encode(np.asfortranarray(m)) of the masks below.
SMALL = np.zeros((6, 7), np.uint8)
SMALL[1:4, 2:6] = 1
SMALL[5, 0] = 1
SMALL_COUNTS = "5172L000005"
RANDOM = np.array([[1, 1, 0, 0, 1, 0, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0, 1, 0], [0, 1, 1, 0, 1, 1, 0, 0, 0],
                   [0, 1, 0, 1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 0, 0, 0, 0, 0]], np.uint8)
RANDOM_COUNTS = "02231L22LO2O41JO5"  # starts with an empty 0-run; has negative deltas (L, O, J)


def _runs_brute_force(mask: np.ndarray) -> list[int]:
    runs, current, value = [], 0, 0
    for pixel in mask.T.reshape(-1):  # column-major, as COCO
        if pixel != value:
            runs.append(current)
            current, value = 0, pixel
        current += 1
    runs.append(current)
    return runs


@pytest.mark.parametrize("mask,counts", [(SMALL, SMALL_COUNTS), (RANDOM, RANDOM_COUNTS)])
def test_matches_pycocotools_strings(mask, counts):
    assert rle.encode(mask)["counts"] == counts
    decoded = rle.decode({"size": list(mask.shape), "counts": counts})
    assert decoded.dtype == bool and np.array_equal(decoded, mask.astype(bool))


def test_clevrer_sized_mask_with_long_runs():
    mask = np.zeros((320, 480), np.uint8)
    mask[100:200, 50:300] = 1
    mask[10, 470] = 1
    enc = rle.encode(mask)
    # Head and tail of pycocotools' string for this mask (multi-character runs, negative deltas).
    assert enc["counts"].startswith("Tg?T3l6000") and enc["counts"].endswith("00VQe1mLck]N")
    assert enc["size"] == [320, 480]
    assert np.array_equal(rle.decode(enc), mask.astype(bool))


def test_uncompressed_counts():
    # pycocotools frPyObjects({'size': [4, 5], 'counts': [3, 4, 2, 11]}) -> counts b'3427'
    expected = rle.decode({"size": [4, 5], "counts": "3427"})
    assert np.array_equal(rle.decode({"size": [4, 5], "counts": [3, 4, 2, 11]}), expected)
    assert rle.encode(expected, compressed=False)["counts"] == [3, 4, 2, 11]


def test_random_masks_round_trip_and_brute_force_runs():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((rng.integers(1, 30), rng.integers(1, 30))) < rng.random()
        enc = rle.encode(mask, compressed=False)
        assert enc["counts"] == _runs_brute_force(mask.astype(np.uint8))
        assert np.array_equal(rle.decode(rle.encode(mask)), mask)
        assert np.array_equal(rle.counts_from_string(rle.counts_to_string(enc["counts"])), enc["counts"])


@pytest.mark.parametrize("bad,match", [
    ({"size": [4, 5], "counts": [3, 4]}, "cover 7 pixels"),
    ({"size": [4], "counts": "3427"}, "size"),
    ({"size": [4, 5], "counts": "34\x7f"}, "invalid character"),
    ({"size": [4, 5], "counts": 12}, "counts"),
])
def test_malformed_rle_raises_with_location(bad, match):
    with pytest.raises(DataError, match=match) as info:
        rle.decode(bad, where="proposal_00001.json frame 3")
    assert "proposal_00001.json" in str(info.value)
