"""The batch contract: datasets yield dicts of tensors, :func:`collate` stacks them into a :class:`Batch`.

Known keys and their per-sample shapes (a collated batch adds a leading ``B``):

================  ===================  ==========================================================
key               shape                meaning
================  ===================  ==========================================================
``video``         ``[T, 3, H, W]``     float32 in [0, 1]
``segmentation``  ``[T, H, W]``        int64; 0 = background, 1..N objects, -1 = ignore
``positions``     ``[T, N, 2]``        float32 object centres in pixels, (row, col)
``visible``       ``[T, N]``           bool, object visible in frame
``actions``       ``[T, ...]``         per-step actions (per-object moves or camera moves)
``moves``         ``[T-1, N]``         int64 per-object move index between frames, -1 = none
``question``      ``[L]``              int64 token ids (0 = padding)
``choices``       ``[C, L]``           int64 token ids of multiple-choice options
``answer``        ``[]`` / ``[C]``     int64 answer index / per-choice correct flag
``label``         ``[]`` / ``[L]``     int64 class index or multi-hot labels
================  ===================  ==========================================================

Missing keys are absent, never filled with dummies: ``batch.segmentation`` on a batch without
ground truth raises a clear error, and ``"segmentation" in batch`` tells whether it is there.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError

VIDEO_KEYS = ("video",)


class Batch(Mapping):
    """A collated batch: a read-only mapping of tensors with attribute access."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]):
        object.__setattr__(self, "_data", dict(data))

    def __getitem__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise DataError(f"batch has no key {key!r}; it has {sorted(self._data)}") from None

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        return self[key]

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Batch is read-only; use batch.replace(key=value)")

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        parts = [f"{k}={list(v.shape) if isinstance(v, Tensor) else type(v).__name__}" for k, v in self._data.items()]
        return f"Batch({', '.join(parts)})"

    @property
    def size(self) -> int:
        """Number of samples in the batch."""
        for v in self._data.values():
            if isinstance(v, Tensor) and v.dim() > 0:
                return v.shape[0]
        raise DataError("batch holds no tensors")

    def __reduce__(self):  # picklable, so DataLoader workers can return batches
        return (Batch, (self._data,))

    def replace(self, **updates: Any) -> "Batch":
        return Batch({**self._data, **updates})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch({k: v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v
                      for k, v in self._data.items()})


def collate(samples: list[Mapping[str, Any]]) -> Batch:
    """Stack a list of sample dicts into a :class:`Batch`; all samples must have the same keys."""
    if not samples:
        raise DataError("cannot collate an empty list of samples")
    keys = set(samples[0])
    out: dict[str, Any] = {}
    for i, s in enumerate(samples):
        if set(s) != keys:
            raise DataError(f"sample {i} has keys {sorted(s)}, but sample 0 has {sorted(keys)}")
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                raise DataError(f"cannot collate {key!r}: samples have different shapes {sorted(shapes)}")
            out[key] = torch.stack(values)
        else:
            out[key] = values
    return Batch(out)
