"""COCO run-length encoded masks in plain NumPy (no pycocotools), as CLEVRER's derender proposals store them.

A COCO RLE is ``{"size": [H, W], "counts": ...}``. The runs cover the mask in **column-major** order
(down each column, then the next column) and alternate 0-runs and 1-runs, starting with a (possibly
empty) 0-run. ``counts`` is either

* *uncompressed*: a list of run lengths, or
* *compressed*: a string where each run is a little-endian sequence of 5-bit groups, each written as
  ``chr(48 + group)``; bit ``0x20`` of a character says "more groups follow", bit ``0x10`` of the last
  one is the sign. From the fourth run on, the stored value is the difference to the run two places
  earlier (runs of the same colour tend to be alike), so stored values can be negative.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DataError


def _size(rle: Mapping[str, Any], where: str) -> tuple[int, int]:
    size = rle.get("size") if isinstance(rle, Mapping) else None
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in size)):
        raise DataError(f"{where}: RLE 'size' must be [height, width] with non-negative integers, got {size!r}")
    return int(size[0]), int(size[1])


def counts_from_string(text: str | bytes, where: str = "RLE") -> np.ndarray:
    """Run lengths (int64 ``[R]``) of a compressed COCO ``counts`` string."""
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    runs: list[int] = []
    p = 0
    while p < len(data):
        value, shift, more = 0, 0, True
        while more:
            if p >= len(data):
                raise DataError(f"{where}: compressed RLE counts end in the middle of a run")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise DataError(f"{where}: compressed RLE counts hold an invalid character {chr(data[p])!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and c & 0x10:
                value -= 1 << shift  # sign-extend from the last group's top bit
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return np.asarray(runs, dtype=np.int64)


def counts_to_string(runs: Sequence[int] | np.ndarray) -> str:
    """Compressed COCO ``counts`` string of run lengths (the inverse of :func:`counts_from_string`)."""
    runs = [int(r) for r in runs]
    out: list[str] = []
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative deltas end at -1 with the sign bit set
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(48 + (c | 0x20 if more else c)))
    return "".join(out)


def decode(rle: Mapping[str, Any], where: str = "RLE") -> np.ndarray:
    """Binary mask (bool ``[H, W]``) of a COCO RLE with compressed or uncompressed ``counts``.

    ``where`` names the file/object in error messages: runs that do not add up to ``H * W`` or are
    negative raise :class:`DataError` instead of returning a wrong mask.
    """
    h, w = _size(rle, where)
    counts = rle.get("counts")
    if isinstance(counts, (str, bytes)):
        runs = counts_from_string(counts, where)
    elif isinstance(counts, (list, tuple)) and all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
        runs = np.asarray(counts, dtype=np.int64)
    else:
        raise DataError(f"{where}: RLE 'counts' must be a string or a list of integers, got {type(counts).__name__}")
    if runs.size and int(runs.min()) < 0:
        raise DataError(f"{where}: RLE has a negative run length")
    if int(runs.sum()) != h * w:
        raise DataError(f"{where}: RLE runs cover {int(runs.sum())} pixels, but size {h}x{w} has {h * w}")
    values = np.arange(len(runs)) % 2 == 1  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values, runs)
    return flat.reshape(w, h).T  # column-major


def encode(mask: np.ndarray, compressed: bool = True) -> dict[str, Any]:
    """COCO RLE of a binary mask ``[H, W]``; ``counts`` is a string unless ``compressed=False``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DataError(f"mask must have shape [H, W], got {list(mask.shape)}")
    flat = mask.astype(bool).T.reshape(-1)
    # Run boundaries: where the value changes; a leading 1 means an empty first 0-run.
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    if not flat.size:
        runs = []
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(runs) if compressed else [int(r) for r in runs]}
