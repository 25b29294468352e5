"""Generated datasets on disk: ``meta.json`` plus ``.npz`` shards of raw (compact) arrays.

Layout of a dataset folder::

    meta.json           {"format": "slotvideo-generated", "generator", "params", "seed", "split",
                         "num", "shard_size", "shards": [{"file", "start", "count"}], "keys", "complete"}
    shard-00000.npz     video uint8 [n, T, H, W, 3], segmentation int8 [n, T, H, W],
    shard-00001.npz     positions float32 [n, T, N, 2], visible bool [n, T, N], moves int8 [n, T-1, N(, A)]

Samples are stored in the *raw* form a generator returns (see :data:`RAW_DTYPES`), and both the
on-the-fly datasets and :class:`ShardedDataset` turn raw arrays into tensors with :func:`to_sample`,
so a sample read back from disk is bit-identical to the one generated on the fly.

Writing is resumable: ``meta.json`` is written first (``complete: false``), each shard is written to a
temporary name and renamed, and a rerun keeps every shard already there. Simplification: shards are
compressed (mostly black frames compress ~20x) and therefore loaded whole, not memory-mapped; a
loaded shard stays cached for the life of the dataset object, which suits datasets of a few hundred MB.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError

FORMAT = "slotvideo-generated"
META = "meta.json"
RAW_DTYPES = {"video": np.uint8, "segmentation": np.int8, "positions": np.float32,
              "visible": np.bool_, "moves": np.int8, "actions": np.float32, "label": np.int64}
# Keys of the layout that must agree for a rerun to resume instead of refusing the folder.
_IDENTITY = ("format", "generator", "params", "seed", "split", "num", "shard_size")


class SampleSource(Protocol):
    """What :func:`write_dataset` needs from a generator (see :class:`slotvideo.data.generated.Generator`)."""

    name: str

    def params(self) -> dict[str, Any]: ...

    def sample(self, seed: int, split: str, index: int) -> dict[str, np.ndarray]: ...


def to_sample(raw: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Raw arrays -> the sample contract of :mod:`slotvideo.data.batch` (video float32 [T, 3, H, W] etc.)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        # Convert in numpy: torch's intra-op threads make these tiny copies ~100x slower on a busy CPU.
        if key == "video":
            value = value.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
        elif key in ("segmentation", "moves"):
            value = value.astype(np.int64)
        # (np.ascontiguousarray makes a 0-d array, such as a scalar label read from a shard, 1-d)
        x = torch.from_numpy(np.ascontiguousarray(value) if np.ndim(value) else np.array(value))
        out[key] = x
    return out


def _atomic_write_bytes(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    _atomic_write_bytes(path, lambda f: f.write(json.dumps(meta, indent=2).encode()))


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``meta.json`` of a generated dataset folder; :class:`DataError` if missing or malformed."""
    path = Path(folder) / META
    if not path.is_file():
        raise DataError(f"{folder} is not a generated dataset: {META} is missing")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not valid JSON: {e}") from None
    missing = [k for k in (*_IDENTITY, "shards", "complete") if k not in meta]
    if meta.get("format") != FORMAT or missing:
        raise DataError(f"{path} is not a {FORMAT} meta file (missing keys {missing})")
    return meta


def _shard_complete(path: Path, keys: list[str]) -> bool:
    # Shards are renamed into place only when fully written, so a readable zip with every key is complete.
    try:
        with zipfile.ZipFile(path) as z:
            return {f"{k}.npy" for k in keys} <= set(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def write_dataset(folder: str | os.PathLike, generator: SampleSource, *, num: int, seed: int, split: str,
                  shard_size: int = 256, progress: bool = False) -> Path:
    """Generate ``num`` samples of ``generator`` into ``folder``, resuming a previous partial write.

    A folder holding a *different* dataset (other generator, params, seed, split, num or shard size)
    is refused with a :class:`DataError` rather than mixed with it.
    """
    from tqdm import tqdm

    folder = Path(folder)
    shards = [{"file": f"shard-{i:05d}.npz", "start": start, "count": min(shard_size, num - start)}
              for i, start in enumerate(range(0, num, shard_size))]
    meta = {"format": FORMAT, "generator": generator.name, "params": generator.params(), "seed": seed,
            "split": split, "num": num, "shard_size": shard_size, "shards": shards, "keys": {}, "complete": False}
    if (folder / META).exists():
        old = read_meta(folder)
        diff = [k for k in _IDENTITY if old[k] != meta[k]]
        if diff:
            raise DataError(f"{folder} already holds another dataset ({', '.join(f'{k}={old[k]!r}' for k in diff)}); "
                            f"use another folder or delete it")
        if old["complete"]:
            return folder
    folder.mkdir(parents=True, exist_ok=True)
    first = generator.sample(seed, split, 0)
    meta["keys"] = {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in first.items()}
    _write_meta(folder / META, meta)
    bar = tqdm(total=num, desc=f"{generator.name} {split}", unit="video", disable=not progress)
    with bar:
        for shard in shards:
            path = folder / shard["file"]
            if not _shard_complete(path, list(first)):
                samples = [first if i == 0 else generator.sample(seed, split, i)
                           for i in range(shard["start"], shard["start"] + shard["count"])]
                arrays = {k: np.stack([s[k] for s in samples]) for k in first}
                _atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))
            bar.update(shard["count"])
    meta["complete"] = True
    _write_meta(folder / META, meta)
    return folder


class ShardedDataset(Dataset):
    """Map-style dataset over a folder written by :func:`write_dataset`; returns sample dicts of tensors."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.meta = read_meta(self.folder)
        if not self.meta["complete"]:
            raise DataError(f"{self.folder} is an incomplete generated dataset (the write was interrupted); "
                            f"rerun the same `slotvideo data generate` command to finish it")
        self._starts = np.array([s["start"] for s in self.meta["shards"]])
        self._loaded: dict[int, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return int(self.meta["num"])

    def _shard(self, k: int) -> dict[str, np.ndarray]:
        if k not in self._loaded:
            info = self.meta["shards"][k]
            path = self.folder / info["file"]
            try:
                with np.load(path, allow_pickle=False) as z:
                    arrays = {key: z[key] for key in self.meta["keys"]}
            except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
                raise DataError(f"cannot read shard {path}: {e}") from None
            for key, arr in arrays.items():
                if arr.shape[0] != info["count"] or list(arr.shape[1:]) != self.meta["keys"][key]["shape"]:
                    raise DataError(f"shard {path}: {key!r} has shape {list(arr.shape)}, expected "
                                    f"[{info['count']}, {', '.join(map(str, self.meta['keys'][key]['shape']))}]")
            self._loaded[k] = arrays
        return self._loaded[k]

    def raw(self, index: int) -> dict[str, np.ndarray]:
        """The stored arrays of one sample (uint8 video [T, H, W, 3], int8 segmentation, ...)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} samples")
        index %= n
        k = int(np.searchsorted(self._starts, index, side="right") - 1)
        offset = index - int(self._starts[k])
        return {key: arr[offset] for key, arr in self._shard(k).items()}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return to_sample(self.raw(index))
