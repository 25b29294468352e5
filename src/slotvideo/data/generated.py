"""Synthetic datasets generated from a seed: the generator base, on-the-fly datasets and :func:`open_dataset`.

Sample ``i`` of split ``s`` is a pure function of ``(seed, s, i)``: its random stream is
``numpy.random.default_rng([seed, split_code, i])``, so any index can be regenerated alone, workers
need no coordination, and the three splits draw from disjoint seed streams. Things shared by a whole
dataset (SetCon's fixed colours) depend on ``seed`` only, so train, val and test show the same objects.

Conventions shared by every generator here:

* positions are ``(row, col)`` in pixels with the centre of pixel ``(r, c)`` at ``(r, c)``, so the frame
  spans ``[-0.5, H - 0.5]`` and ``segmentation[t, round(row), round(col)]`` is the object at its centre;
* moves are indices into :data:`DIRECTIONS` (0 up, 1 down, 2 left, 3 right), -1 for "no move";
* objects are layers composited front to back (:func:`composite`); a pixel belongs to the layer that
  contributes most to its colour, or to the background when the background contributes most.
"""
from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import ConfigError, check_range
from ..registry import lookup
from .shards import ShardedDataset, to_sample, write_dataset

SPLITS = ("train", "val", "test")
# (d_row, d_col) of the four cardinal moves; index = move id in `moves`.
DIRECTIONS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)
MOVE_NAMES = ("up", "down", "left", "right")


def check_split(split: str) -> int:
    """The code of ``split`` in the seed stream; :class:`ConfigError` for unknown splits."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return SPLITS.index(split) + 1


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of sample ``index`` of ``split`` in a dataset seeded with ``seed``."""
    check_range(seed, "seed", 0, integer=True)
    check_range(index, "index", 0, integer=True)
    return np.random.default_rng([seed, check_split(split), index])


# --------------------------------------------------------------------------- rendering


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of pixel centres, shaped to broadcast as ``[H, 1]`` and ``[1, W]``."""
    return np.arange(height, dtype=np.float32)[:, None], np.arange(width, dtype=np.float32)[None, :]


def coverage(sdf: np.ndarray, antialias: bool) -> np.ndarray:
    """Alpha of a shape from its signed distance (negative inside) at pixel centres.

    Anti-aliasing uses the one-pixel linear ramp ``clip(0.5 - sdf, 0, 1)``: exact coverage for a
    straight edge through the pixel, and cheap. Hard shapes cover pixels whose centre is inside.
    """
    if antialias:
        return np.clip(0.5 - sdf, 0.0, 1.0).astype(np.float32)
    return (sdf <= 0).astype(np.float32)


def composite(alpha: np.ndarray, colors: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw object layers over a black background, front to back ("over" operator).

    alpha: ``[T, N, H, W]`` coverage in [0, 1]; colors: ``[N, 3]`` or ``[T, N, 3]`` in [0, 1];
    depth: ``[N]`` or ``[T, N]``, larger = nearer the viewer (drawn on top).
    Returns video uint8 ``[T, H, W, 3]``, segmentation int8 ``[T, H, W]`` (0 background, k + 1 for
    object k: the layer contributing most to the pixel, ``alpha * light left by the layers in front``,
    the background when what passes every layer is larger) and visible bool ``[T, N]`` (owns a pixel).

    Vectorized over time and pixels with a loop over the N layers: numpy's cumprod/argmax along a
    short middle axis are ~10x slower than N whole-frame multiplies.
    """
    t, n, h, w = alpha.shape
    depth = np.broadcast_to(depth, (t, n))
    colors = np.broadcast_to(colors, (t, n, 3)).astype(np.float32)
    frame = np.arange(t)
    order = np.argsort(-depth, axis=1, kind="stable")  # front to back
    through = np.ones((t, h, w), dtype=np.float32)  # light passing every layer drawn so far
    video = np.zeros((t, h, w, 3), dtype=np.float32)
    best = np.zeros((t, h, w), dtype=np.float32)
    seg = np.zeros((t, h, w), dtype=np.int8)
    for k in range(n):
        obj = order[:, k]
        a = alpha[frame, obj].astype(np.float32, copy=False)
        contribution = through * a
        video += contribution[..., None] * colors[frame, obj][:, None, None, :]
        through *= 1.0 - a
        wins = contribution > best
        best = np.where(wins, contribution, best)
        seg = np.where(wins, (obj + 1).astype(np.int8)[:, None, None], seg)
    seg[through >= best] = 0
    visible = (seg[:, None] == np.arange(1, n + 1, dtype=np.int8)[None, :, None, None]).any(axis=(2, 3))
    return np.clip(np.rint(video * 255.0), 0, 255).astype(np.uint8), seg, visible


# --------------------------------------------------------------------------- generators


def _coerce(value: Any, default: Any, name: str) -> Any:
    """Give a param the type of its default; strings come from ``--param key=value`` on the CLI."""
    if isinstance(value, np.generic):
        value = value.item()
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        if kind is bool:
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        try:
            return kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
        except ValueError:
            raise ConfigError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


@dataclass(frozen=True)
class Generator(abc.ABC):
    """A synthetic video generator; subclasses are frozen dataclasses whose fields are its params.

    ``generate(rng, seed)`` returns the raw arrays of one sample (see
    :data:`slotvideo.data.shards.RAW_DTYPES`); ``validate`` rejects impossible params with a
    :class:`ConfigError` naming the param and its allowed range.
    """

    name: ClassVar[str] = ""
    default_num: ClassVar[dict[str, int]] = {"train": 10_000, "val": 1_000, "test": 1_000}

    def __post_init__(self) -> None:
        # Coerce here rather than in from_params so direct construction is checked the same way.
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(getattr(self, f.name), f.default, f"{self.name} param {f.name!r}"))
        self.validate()

    @abc.abstractmethod
    def validate(self) -> None:
        """Raise :class:`ConfigError` for impossible params."""

    @abc.abstractmethod
    def generate(self, rng: np.random.Generator, seed: int) -> dict[str, np.ndarray]:
        """One raw sample drawn from ``rng``; ``seed`` (the dataset seed) feeds dataset-wide constants."""

    def check(self, param: str, low: float | None = None, high: float | None = None, integer: bool = False) -> None:
        check_range(getattr(self, param), f"{self.name} param {param!r}", low, high, integer=integer)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None) -> "Generator":
        """Build from a (possibly partial) params mapping; unknown keys raise a :class:`ConfigError`."""
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        params = dict(params or {})
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise ConfigError(f"unknown {cls.name} param {unknown[0]!r}; known params are {sorted(defaults)}")
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return asdict(self)

    def sample(self, seed: int, split: str, index: int) -> dict[str, np.ndarray]:
        """Raw sample ``index`` of ``split``: a pure function of ``(params, seed, split, index)``."""
        return self.generate(sample_rng(seed, split, index), seed)


class GeneratedDataset(Dataset):
    """Map-style dataset generating each sample on access (nothing stored)."""

    def __init__(self, generator: Generator, num: int, seed: int = 0, split: str = "train"):
        check_range(num, "num", 1, integer=True)
        check_range(seed, "seed", 0, integer=True)
        check_split(split)
        self.generator, self.num, self.seed, self.split = generator, num, seed, split

    def __len__(self) -> int:
        return self.num

    def raw(self, index: int) -> dict[str, np.ndarray]:
        if not -self.num <= index < self.num:
            raise IndexError(f"index {index} out of range for a dataset of {self.num} samples")
        return self.generator.sample(self.seed, self.split, index % self.num)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return to_sample(self.raw(index))


class GeneratedStream(IterableDataset):
    """Endless stream of samples ``start, start + 1, ...``; DataLoader workers take interleaved indices."""

    def __init__(self, generator: Generator, seed: int = 0, split: str = "train", start: int = 0):
        check_range(seed, "seed", 0, integer=True)
        check_range(start, "start", 0, integer=True)
        check_split(split)
        self.generator, self.seed, self.split, self.start = generator, seed, split, start

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        index, step = (self.start, 1) if info is None else (self.start + info.id, info.num_workers)
        while True:
            yield to_sample(self.generator.sample(self.seed, self.split, index))
            index += step


# --------------------------------------------------------------------------- opening datasets by name


def generator_for(name: str, params: Mapping[str, Any] | None = None) -> Generator:
    """The registered generator ``name`` built from ``params``."""
    return lookup("generator", name, key="generator").from_params(params)


def cache_key(generator: Generator, num: int, seed: int, split: str) -> str:
    """Short hash naming a cached split; built from the resolved params so defaults hash alike."""
    ident = {"generator": generator.name, "params": generator.params(), "num": num, "seed": seed, "split": split}
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]


def open_generated(generator: Generator, split: str, *, num: int | None = None, seed: int = 0,
                   cache_dir: str | os.PathLike | None = None) -> Dataset:
    """A split of a generated dataset: on the fly, or written once under ``cache_dir`` and read back."""
    check_split(split)
    num = generator.default_num[split] if num is None else num
    check_range(num, "num", 1, integer=True)
    check_range(seed, "seed", 0, integer=True)
    if cache_dir is None:
        return GeneratedDataset(generator, num, seed, split)
    folder = Path(cache_dir) / f"{generator.name}-{cache_key(generator, num, seed, split)}"
    write_dataset(folder, generator, num=num, seed=seed, split=split)
    return ShardedDataset(folder)


def open_dataset(name: str, split: str, *, num: int | None = None, seed: int = 0,
                 params: Mapping[str, Any] | None = None, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Open the registered dataset ``name`` as a map-style dataset of sample dicts.

    A ``"dataset"`` registry entry is either a :class:`Generator` subclass (opened with
    :func:`open_generated`) or a factory ``f(split, *, num, seed, params, cache_dir) -> Dataset``
    (datasets read from an official on-disk layout register such factories).
    """
    entry = lookup("dataset", name, key="dataset")
    if isinstance(entry, type) and issubclass(entry, Generator):
        return open_generated(entry.from_params(params), split, num=num, seed=seed, cache_dir=cache_dir)
    return entry(split, num=num, seed=seed, params=params, cache_dir=cache_dir)


def stream_dataset(name: str, split: str = "train", *, seed: int = 0,
                   params: Mapping[str, Any] | None = None) -> GeneratedStream:
    """An endless iterable over the generated dataset ``name`` (for training without epochs)."""
    return GeneratedStream(generator_for(name, params), seed, split)
