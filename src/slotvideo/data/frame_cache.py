"""A disk cache of decoded frames, so later epochs read uint8 arrays instead of decoding video again.

Each entry is one ``.npy`` file of uint8 ``[T, H, W, 3]``, opened memory-mapped, so a DataLoader worker
only pages in the frames it indexes and several workers share the OS page cache. An entry is keyed by
the source's absolute path, its size and mtime (editing or replacing a video invalidates its entries)
and the decode parameters:

* deterministic sampling (``"all"``, ``"stride"``, ``"uniform"``) caches exactly the frames requested,
  so 25 of 128 CLEVRER frames cost 25 frames of disk;
* ``sampling="random"`` caches the full (resized) video under the same key as ``sampling="all"`` and
  draws a fresh clip from the memmap on every call, so augmentation survives caching.

Entries are written to a temporary name and renamed, so a file under an entry's name is always
complete; an interrupted :meth:`FrameCache.build` resumes by skipping the entries that exist. Leftover
``*.partial`` files from a killed process are never read and may be deleted while no build runs.
Entries are only ever replaced by rename, never rewritten in place: a process keeps recent entries
mapped, and truncating a mapped file under it would make its next read fault.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from ..errors import ConfigError, DataError, check_range
from .video_io import check_sampling, frame_indices, read_video

_VERSION = 1  # bump when the stored layout or the decoder's output changes


class BuildReport(NamedTuple):
    """What :meth:`FrameCache.build` did: entries written and entries that already existed."""

    built: int
    skipped: int


def _fingerprint(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of a file, or summed/latest over the images of a frame folder."""
    try:
        if path.is_dir():
            stats = [p.stat() for p in path.iterdir() if p.is_file()]
            return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
        st = path.stat()
    except FileNotFoundError:
        raise DataError(f"video {path} does not exist") from None
    return st.st_size, st.st_mtime_ns


def _stored_params(num_frames: int | None = None, stride: int = 1, start: int = 0,
                   size: tuple[int, int] | None = None, sampling: str = "all") -> dict[str, Any]:
    """The decode parameters of what is stored; random clips are drawn later from the full video."""
    check_sampling(num_frames=num_frames, stride=stride, start=start, sampling=sampling)
    size = None if size is None else [int(s) for s in size]
    if sampling == "random":
        return dict(num_frames=None, stride=1, start=0, size=size, sampling="all")
    return dict(num_frames=num_frames, stride=stride, start=start, size=size, sampling=sampling)


def _open_entry(entry: Path) -> np.ndarray | None:
    try:
        arr = np.load(entry, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError):
        return None  # unreadable (e.g. the disk was swapped under us): decode again and overwrite
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        return None
    return arr


def _write_entry(entry: Path, frames: np.ndarray) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(frames), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, entry)
    finally:
        tmp.unlink(missing_ok=True)


class FrameCache:
    """Decoded uint8 frames of videos, stored under ``root`` and returned memory-mapped.

    >>> cache = FrameCache("cache/frames")
    >>> clip = cache.get("video_00000.mp4", size=(64, 64), sampling="random", num_frames=6, stride=2)
    """

    def __init__(self, root: str | os.PathLike, max_open: int = 256):
        self.root = Path(root)
        # Reopening a memmap (header parse + mmap) costs more than reading a small clip from it, so
        # each process keeps its recently used entries mapped. Keys include size+mtime: never stale.
        self.max_open = max_open
        self._maps: OrderedDict[Path, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "max_open": self.max_open}  # maps are per process (DataLoader workers)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["max_open"])

    def _mapped(self, entry: Path) -> np.ndarray | None:
        frames = self._maps.get(entry)
        if frames is not None:
            self._maps.move_to_end(entry)
            return frames
        frames = _open_entry(entry)
        if frames is not None and self.max_open > 0:
            self._maps[entry] = frames
            while len(self._maps) > self.max_open:
                self._maps.popitem(last=False)
        return frames

    def entry_path(self, path: str | os.PathLike, **read_kwargs: Any) -> Path:
        """Where the entry for ``path`` decoded with ``read_kwargs`` lives (whether or not it exists)."""
        read_kwargs.pop("rng", None)
        source = Path(path).resolve()
        size, mtime = _fingerprint(source)
        key = json.dumps(dict(v=_VERSION, path=str(source), bytes=size, mtime_ns=mtime,
                              **_stored_params(**read_kwargs)), sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return self.root / digest[:2] / f"{digest}.npy"

    def get(self, path: str | os.PathLike, *, rng: np.random.Generator | int | None = None,
            **read_kwargs: Any) -> np.ndarray:
        """The frames :func:`read_video` would return for ``path`` and ``read_kwargs``, memory-mapped.

        Decodes and stores the entry on a miss. With ``sampling="random"`` each call draws a clip
        (``rng`` as in :func:`frame_indices`) from the cached full video; the result is a strided view
        of the memmap, so only the clip's frames are read from disk.
        """
        entry = self.entry_path(path, **read_kwargs)
        frames = self._mapped(entry)
        if frames is None:
            _write_entry(entry, read_video(path, **_stored_params(**read_kwargs)))
            frames = self._mapped(entry)
            if frames is None:
                raise DataError(f"frame cache entry {entry} for {path} could not be read back after writing")
        if read_kwargs.get("sampling") != "random":
            return frames
        idx = frame_indices(len(frames), num_frames=read_kwargs.get("num_frames"), stride=read_kwargs.get("stride", 1),
                            start=read_kwargs.get("start", 0), sampling="random", rng=rng)
        step = int(idx[1] - idx[0]) if len(idx) > 1 else 1
        return frames[int(idx[0]): int(idx[-1]) + 1: step]

    def build(self, paths: Iterable[str | os.PathLike], workers: int = 2, progress: bool = True,
              **read_kwargs: Any) -> BuildReport:
        """Decode and store the entries of many videos, skipping entries that already exist.

        ``workers`` processes decode in parallel (0 or 1 decodes in this process). A video that fails
        to decode does not stop the others; after the rest are stored, a :class:`DataError` lists the
        failures. Running it again after an interruption only decodes what is missing.
        """
        check_range(workers, "workers", low=0, integer=True)
        if "rng" in read_kwargs:
            raise ConfigError("FrameCache.build takes no rng: random clips are drawn from the cache at read time")
        paths = [Path(p) for p in paths]
        todo = [p for p in paths if _open_entry(self.entry_path(p, **read_kwargs)) is None]
        bar = tqdm(total=len(paths), initial=len(paths) - len(todo), desc="caching frames", unit="video",
                   disable=not progress)
        failures: list[str] = []
        try:
            if workers <= 1:
                for p in todo:
                    err = _build_one(str(self.root), str(p), read_kwargs)
                    if err:
                        failures.append(err)
                    bar.update()
            else:
                with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
                    futures = [pool.submit(_build_one, str(self.root), str(p), read_kwargs) for p in todo]
                    for fut in as_completed(futures):
                        err = fut.result()
                        if err:
                            failures.append(err)
                        bar.update()
        finally:
            bar.close()
        if failures:
            shown = "\n  ".join(failures[:10]) + (f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else "")
            raise DataError(f"frame cache: {len(failures)} of {len(paths)} videos failed "
                            f"({len(todo) - len(failures)} built, {len(paths) - len(todo)} already cached):\n  {shown}")
        return BuildReport(built=len(todo), skipped=len(paths) - len(todo))


def _init_worker() -> None:
    # As DataLoader workers do: one intra-op thread each, or two workers fight over the cores.
    torch.set_num_threads(1)


def _build_one(root: str, path: str, read_kwargs: dict[str, Any]) -> str | None:
    """Store one entry; returns the error message instead of raising, so other videos go on."""
    try:
        FrameCache(root).get(path, **read_kwargs)
    except DataError as e:
        return str(e)
    return None
