"""Instance masks stored as per-frame COCO-RLE JSON, read into integer segmentations.

The files of CLEVRER's derender proposals and of our CATER layout (``masks/<video>.json``) share one
structure: ``{"frames": [{"frame_index": t, "objects": [{"mask": {"size": [h, w], "counts": ...},
"instance": name?}, ...]}, ...]}``. :func:`read_segmentation` turns the frames a clip sampled into
``int64 [T, h, w]``: 0 background, an object id per pixel, -1 for frames absent from the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from . import rle
from .kinetics import ClipReader
from .video_io import video_info


def json_field(obj: Any, key: str, kind: type | tuple[type, ...], where: str, optional: bool = False) -> Any:
    """``obj[key]`` checked to be a ``kind``; a :class:`DataError` naming ``where`` otherwise (None if optional)."""
    if not isinstance(obj, Mapping):
        raise DataError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise DataError(f"{where}: missing key {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def read_segmentation(path: Path, indices: np.ndarray, ids: Mapping[str, int] | None = None,
                      what: str = "CLEVRER proposals") -> np.ndarray:
    """int64 ``[T, h, w]`` segmentation of the frames ``indices`` from a per-frame RLE mask file.

    0 = background; without ``ids`` an object's id is its position k + 1 in the frame's list (CLEVRER
    proposals: detector outputs, not stable across frames); with ``ids`` it is ``ids[object["instance"]]``,
    the same object keeping its id in every frame. The first listed object wins where masks overlap; a
    frame missing from the file is all -1 (ignore). ``what`` names the kind of file in errors.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {what} {path}: {e}") from None
    frames = json_field(data, "frames", list, str(path))
    by_index = {}
    for pos, frame in enumerate(frames):
        number = json_field(frame, "frame_index", int, f"{path} frames[{pos}]", optional=True)
        by_index[pos if number is None else number] = frame
    out = []
    size = None
    for t in indices.tolist():
        frame = by_index.get(t)
        objects = [] if frame is None else json_field(frame, "objects", list, f"{path} frame {t}")
        where = [f"{path} frame {t} object #{k}" for k in range(len(objects))]
        masks = [rle.decode(json_field(o, "mask", Mapping, w), w) for o, w in zip(objects, where)]
        if masks:
            size = size or masks[0].shape
            if any(m.shape != size for m in masks):
                raise DataError(f"{path} frame {t}: masks have different sizes")
            stack = np.stack(masks)
            if ids is None:
                labels = np.arange(1, len(masks) + 1)
            else:
                names = [json_field(o, "instance", str, w) for o, w in zip(objects, where)]
                unknown = [n for n in names if n not in ids]
                if unknown:
                    raise DataError(f"{path} frame {t}: instances {unknown} are not among the scene's objects "
                                    f"{sorted(ids)}")
                labels = np.array([ids[n] for n in names])
            out.append(np.where(stack.any(0), labels[stack.argmax(0)], 0))
        else:
            out.append(None if frame is None else "empty")
    if size is None:  # no object in the sampled frames: take the size any mask of the file declares
        declared = [o["mask"].get("size") for f in frames for o in f.get("objects") or []
                    if isinstance(o, Mapping) and isinstance(o.get("mask"), Mapping)]
        if not declared:
            raise DataError(f"{path}: holds no object mask, so the mask size is unknown")
        size = tuple(declared[0])
    return np.stack([f if isinstance(f, np.ndarray) else np.full(size, 0 if f == "empty" else -1)
                     for f in out]).astype(np.int64)


def resize_segmentation(seg: np.ndarray, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of int ``[T, h, w]`` ids to ``size`` (labels must not be blended)."""
    x = torch.from_numpy(seg)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[:, None].float(), size=size, mode="nearest-exact")[:, 0].long()


def cached_segmentation(cache_dir: Path, proposals: Path, total: int, size: tuple[int, int],
                        ids: Mapping[str, int] | None = None, what: str = "CLEVRER proposals") -> np.ndarray:
    """int16 ``[total, H, W]`` segmentation of every frame, decoded once and stored under ``cache_dir``.

    Parsing the mask JSON and decoding RLE costs more than reading cached frames, so with a cache the
    whole video's segmentation is stored (memory-mapped like the frame cache; keyed by the file's path,
    size and mtime, so editing the masks invalidates it, and by ``ids``) and clips index into it.
    """
    st = proposals.stat()
    key = json.dumps([str(proposals.resolve()), st.st_size, st.st_mtime_ns, total, list(size),
                      None if ids is None else sorted(ids.items())])
    entry = cache_dir / "segmentation" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"
    try:
        return np.load(entry, mmap_mode="r")
    except (OSError, ValueError):
        pass
    seg = resize_segmentation(read_segmentation(proposals, np.arange(total), ids, what), size).numpy().astype(np.int16)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with open(tmp, "wb") as f:
            np.save(f, seg, allow_pickle=False)
        os.replace(tmp, entry)
    finally:
        tmp.unlink(missing_ok=True)
    return np.load(entry, mmap_mode="r")


def clip_segmentation(masks: Path, reader: ClipReader, video: Path, seed: int | None, size: tuple[int, int],
                      start: int = 0, ids: Mapping[str, int] | None = None, what: str = "CLEVRER proposals") -> Tensor:
    """int64 ``[T, H, W]`` segmentation of the clip ``reader.read(video, seed, start=start)`` returns, from the
    mask file ``masks``: the same frames (``reader.indices``), resized to ``size``; through
    :func:`cached_segmentation` when the reader has a cache directory."""
    total = video_info(video).frames
    indices = reader.indices(video, seed, start=start, total=total)
    if reader.cache_dir is None:
        return resize_segmentation(read_segmentation(masks, indices, ids, what), size)
    full = cached_segmentation(Path(reader.cache_dir), masks, total, size, ids, what)
    return torch.from_numpy(full[indices]).long()
