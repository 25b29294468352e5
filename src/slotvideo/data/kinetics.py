"""Kinetics-600 in its official layouts, and the clip-reading parts CATER and CLEVRER share.

Layouts (reference/dataset-formats.md section 3):

* **csv** (the release): annotation CSVs ``label,youtube_id,time_start,time_end,split`` (the test CSV has
  no ``label``) with clips at ``<label>/<youtube_id>_<%06d start>_<%06d end>.mp4`` somewhere under the
  root (``train/``, ``videos_train/``, class folders with spaces or with ``_``: clips are found by file
  name, so the folder names do not matter). A clip whose canonical name is absent falls back to any
  video named ``<youtube_id>*``.
* **list** (mmaction2 / PySlowFast / pytorchvideo): ``<path> <integer label>`` per line, parsed with
  ``rsplit(None, 1)``; paths are relative to the list's folder, its ``videos_<split>/`` folder or the root.

The class index is the sorted set of train-CSV labels (the same order as sorted class folders).
Clips are YouTube videos the user obtains; missing ones are skipped and reported once with their count.

Shared parts: :func:`parse_params` (typed ``params`` from configs or ``--param k=v`` strings),
:class:`ClipReader` (decoding through :class:`~slotvideo.data.frame_cache.FrameCache` when a cache
folder is given) and :func:`index_files` (recursive search tolerant of archive nesting).
"""
from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError, check_range
from ..registry import register
from .frame_cache import FrameCache
from .video_io import VIDEO_EXTS, check_sampling, frame_indices, read_video, to_tensor, video_info

SPLITS = ("train", "val", "test")

# --------------------------------------------------------------------------- params


def _size(value: Any, key: str) -> tuple[int, int] | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "native")):
        return None
    if isinstance(value, str):
        parts = re.split(r"[x,\s]+", value.strip().strip("[]()"))
        value = [p for p in parts if p]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value, value]
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be HxW (e.g. 64x64), a single side or [H, W], got {value!r}") from None
    if h < 1 or w < 1:
        raise ConfigError(f"{key} must have positive sides, got {value!r}")
    return h, w


def _coerce(value: Any, kind: str, key: str) -> Any:
    """Coerce ``value`` to ``kind``: int, int?, str, bool, size?, float."""
    if kind == "size?":
        return _size(value, key)
    if value is None:
        if kind.endswith("?"):
            return None
        raise ConfigError(f"{key} must be given")
    base = kind.rstrip("?")
    if isinstance(value, str) and kind.endswith("?") and value.strip().lower() in ("none", "null", ""):
        return None
    if base == "str":
        return str(value)
    if base == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if base == "int":
        if isinstance(value, bool) or not number.is_integer():
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(number)
    return number


def parse_params(dataset: str, params: Mapping[str, Any] | None, spec: Mapping[str, tuple[str, Any]],
                 presets: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Typed options from ``params``: ``spec`` maps name -> (kind, default); unknown names raise.

    A ``preset`` entry fills defaults from ``presets[preset]``; keys given explicitly still win.
    """
    given = dict(params or {})
    known = set(spec) | ({"preset"} if presets else set())
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"unknown {dataset} param {unknown[0]!r}; known params are {sorted(known)}")
    values = {name: default for name, (_, default) in spec.items()}
    preset = given.pop("preset", None)
    if preset not in (None, "", "none"):
        if not presets or preset not in presets:
            raise ConfigError(f"{dataset} param 'preset' must be one of {sorted(presets or {})}, got {preset!r}")
        values.update(presets[preset])
    values.update(given)
    return {name: _coerce(values[name], spec[name][0], f"{dataset} param {name!r}") for name in spec}


def dataset_root(dataset: str, value: Any) -> Path:
    """The ``root`` param as an existing folder; :class:`ConfigError` / :class:`DataError` otherwise."""
    if value in (None, ""):
        raise ConfigError(f"{dataset} needs params.root: the folder holding the dataset "
                          f"(see docs/datasets.md; `slotvideo data download {dataset} --root DIR`)")
    root = Path(str(value)).expanduser()
    if not root.is_dir():
        raise DataError(f"{dataset} root {root} is not a folder")
    return root


def check_split(dataset: str, split: str, allowed: tuple[str, ...] = SPLITS) -> str:
    if split not in allowed:
        raise ConfigError(f"{dataset} split must be one of {list(allowed)}, got {split!r}")
    return split


def subset(n: int, num: int | None, seed: int) -> np.ndarray:
    """Indices of ``num`` of ``n`` items drawn with ``seed`` (kept in order), or all of them."""
    if num is None or num >= n:
        return np.arange(n)
    check_range(num, "num", low=1, integer=True)
    return np.sort(np.random.default_rng(seed).choice(n, size=num, replace=False))


def index_files(root: Path, pattern: str) -> dict[str, list[Path]]:
    """Files under ``root`` whose name matches the regex ``pattern``, keyed by the first group.

    One walk, any nesting depth (archives unpack with or without an extra top folder); hidden
    folders (``.partial`` downloads, caches) are skipped. Paths are sorted for stable duplicates.
    """
    rx = re.compile(pattern)
    found: dict[str, list[Path]] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            m = rx.fullmatch(name)
            if m:
                found.setdefault(m.group(1), []).append(Path(folder) / name)
    return found


def report_skips(dataset: str, split: str, counts: Mapping[str, int], total: int, hint: str = "") -> None:
    """One warning naming every kind of skipped item and its count (not one per item)."""
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    if parts:
        warnings.warn(f"{dataset} {split}: skipped {', '.join(parts)} (of {total} listed){hint}", stacklevel=3)


# --------------------------------------------------------------------------- clip reading

CLIP_SPEC = {"num_frames": ("int?", None), "stride": ("int", 1), "sampling": ("str", "all"),
             "size": ("size?", None)}


@dataclass(frozen=True)
class ClipReader:
    """Decodes clips with fixed sampling, from the video or from a :class:`FrameCache` under ``cache_dir``."""

    num_frames: int | None = None
    stride: int = 1
    sampling: str = "all"
    size: tuple[int, int] | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        check_sampling(num_frames=self.num_frames, stride=self.stride, start=0, sampling=self.sampling)

    def kwargs(self, start: int = 0) -> dict[str, Any]:
        return dict(num_frames=self.num_frames, stride=self.stride, start=start, size=self.size,
                    sampling=self.sampling)

    @property
    def cache(self) -> FrameCache | None:
        # Built lazily per process: FrameCache keeps per-process memory maps.
        if self.cache_dir is None:
            return None
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = FrameCache(Path(self.cache_dir) / "frames")
            object.__setattr__(self, "_cache", cache)
        return cache

    def draw_seed(self) -> int | None:
        """A seed for a random clip, from torch's RNG (seeded per DataLoader worker and epoch)."""
        return int(torch.randint(0, 2**62, ())) if self.sampling == "random" else None

    def read(self, path: Path, seed: int | None = None, start: int = 0) -> torch.Tensor:
        """float32 ``[T, 3, H, W]`` in [0, 1]."""
        cache = self.cache
        if cache is not None:
            frames = np.array(cache.get(path, rng=seed, **self.kwargs(start)))
        else:
            frames = read_video(path, rng=seed, **self.kwargs(start))
        return to_tensor(frames)

    def indices(self, path: Path, seed: int | None = None, start: int = 0, total: int | None = None) -> np.ndarray:
        """Frame indices :meth:`read` picks for ``path`` with the same ``seed`` (for aligned masks)."""
        total = video_info(path).frames if total is None else total
        return frame_indices(total, rng=seed, **{k: v for k, v in self.kwargs(start).items() if k != "size"})


# --------------------------------------------------------------------------- Kinetics-600

KINETICS_SPEC = {"root": ("str?", None), "layout": ("str", "auto"), "list_file": ("str?", None),
                 "num_classes": ("int", 600), **CLIP_SPEC,
                 # Kinetics clips differ in length and size, so a fixed clip is the default.
                 "num_frames": ("int?", 16), "sampling": ("str", "uniform"), "size": ("size?", (128, 128))}
_CSV_SPLIT_WORDS = {"train": ("train",), "val": ("val", "validate", "validation"), "test": ("test",)}


def clip_name(youtube_id: str, start: int, end: int) -> str:
    """Canonical clip stem of the official downloader: ``<id>_<%06d start>_<%06d end>``."""
    return f"{youtube_id}_{start:06d}_{end:06d}"


def _split_words(path: Path) -> list[str]:
    return re.split(r"[^a-z0-9]+", path.stem.lower())


def find_annotation_csv(root: Path, split: str, files: list[Path] | None = None) -> Path | None:
    """The annotation CSV of ``split`` (``kinetics-600_val.csv``, ``validate.csv``, ...) under ``root``.

    ``files`` are the candidate files when a caller has already walked the root.
    """
    words = _CSV_SPLIT_WORDS[split]
    if files is None:
        files = [p for paths in index_files(root, r"(.*\.csv)").values() for p in paths]
    hits = [p for p in files if p.suffix == ".csv" and any(w in _split_words(p) for w in words)]
    if len(hits) > 1:
        preferred = [p for p in hits if "600" in p.name]
        hits = preferred if len(preferred) == 1 else hits
    if len(hits) > 1:
        raise DataError(f"kinetics600: several annotation CSVs for split {split!r}: "
                        f"{', '.join(map(str, hits))}; pass params.list_file or keep one")
    return hits[0] if hits else None


def read_annotation_csv(path: Path, need_label: bool) -> list[dict[str, Any]]:
    """Rows of an annotation CSV as dicts (``label`` None when absent); malformed rows raise naming file:line."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or ())
            needed = {"youtube_id", "time_start", "time_end"} | ({"label"} if need_label else set())
            if not needed <= columns:
                raise DataError(f"{path}: missing column(s) {sorted(needed - columns)}; expected "
                                "label,youtube_id,time_start,time_end,split")
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    start, end = int(float(row["time_start"])), int(float(row["time_end"]))
                except (TypeError, ValueError):
                    raise DataError(f"{path}:{line}: time_start/time_end must be integers, got "
                                    f"{row.get('time_start')!r}, {row.get('time_end')!r}") from None
                label = row.get("label")
                if need_label and not label:
                    raise DataError(f"{path}:{line}: empty label")
                rows.append({"youtube_id": row["youtube_id"], "start": start, "end": end, "label": label or None})
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None
    return rows


def read_list_file(path: Path, num_classes: int | None) -> list[tuple[str, list[int]]]:
    """``<path> <label[,label...]>`` lines (``rsplit(None, 1)``); no label gives ``[]``."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataError(f"cannot read list file {path}: {e}") from None
    out = []
    for n, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        name, labels = (parts[0], []) if len(parts) == 1 else (parts[0], parts[1].split(","))
        try:
            ids = [int(v) for v in labels if v != ""]
        except ValueError:
            raise DataError(f"{path}:{n}: label {parts[1]!r} is not an integer class id") from None
        if num_classes is not None:
            bad = [i for i in ids if not 0 <= i < num_classes]
            if bad:
                raise DataError(f"{path}:{n}: label {bad[0]} is outside [0, {num_classes - 1}]")
        out.append((name, ids))
    return out


class Kinetics600(Dataset):
    """Kinetics-600 clips with their class index: samples ``video`` ``[T, 3, H, W]`` and ``label`` ``[]``.

    ``missing`` counts listed clips without a file (skipped, warned once); the test split has no labels,
    so its samples have no ``label`` key.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", *, layout: str = "auto",
                 list_file: str | os.PathLike | None = None, num_classes: int = 600,
                 reader: ClipReader | None = None, num: int | None = None, seed: int = 0):
        self.root, self.split = dataset_root("kinetics600", root), check_split("kinetics600", split)
        self.reader = reader or ClipReader(num_frames=16, sampling="uniform", size=(128, 128))
        if layout not in ("auto", "csv", "list"):
            raise ConfigError(f"kinetics600 param 'layout' must be auto, csv or list, got {layout!r}")
        self._scan()
        csv_path = None if list_file or layout == "list" else find_annotation_csv(self.root, split, self._tables)
        if layout == "csv" and csv_path is None:
            raise DataError(f"kinetics600: no annotation CSV for split {split!r} under {self.root} "
                            "(expected e.g. kinetics-600_train.csv / validate.csv)")
        self.classes: list[str] = []
        if csv_path is not None:
            self.source = csv_path
            items = self._from_csv(csv_path)
        else:
            self.source = Path(list_file) if list_file else self._find_list()
            items = self._from_list(self.source, num_classes)
        self.listed = len(items)
        present = [it for it in items if it[0] is not None]
        self.missing = self.listed - len(present)
        report_skips("kinetics600", split, {"missing clips": self.missing}, self.listed,
                     f"; listed in {self.source}. Kinetics clips come from YouTube: fetch them yourself "
                     "(see docs/datasets.md)")
        if not present:
            raise DataError(f"kinetics600 {split}: none of the {self.listed} clips listed in {self.source} "
                            f"were found under {self.root}")
        self.items = [present[i] for i in subset(len(present), num, seed)]
        self.has_labels = all(it[1] is not None for it in self.items)

    # ------------------------------------------------------------------ layouts

    def _scan(self) -> None:
        """One walk of the root (hundreds of thousands of clips): tables (CSV/TXT) and videos by name."""
        exts = "|".join(e.lstrip(".") for e in VIDEO_EXTS)
        files = index_files(self.root, rf"(.+\.(?:csv|txt|{exts}))")
        self._tables = [p for paths in files.values() for p in paths if p.suffix in (".csv", ".txt")]
        self._by_stem: dict[str, Path] = {}
        self._by_id: dict[str, list[Path]] = {}
        for paths in files.values():
            for p in paths:
                if p.suffix.lower() in VIDEO_EXTS:
                    self._by_stem.setdefault(p.stem, p)
                    self._by_id.setdefault(re.sub(r"_\d+_\d+$", "", p.stem), []).append(p)

    def _from_csv(self, path: Path) -> list[tuple[Path | None, int | None]]:
        train_csv = path if self.split == "train" else find_annotation_csv(self.root, "train", self._tables)
        if self.split != "test":
            if train_csv is None:
                raise DataError(f"kinetics600: the class index comes from the train CSV, and none was found "
                                f"under {self.root}")
            self.classes = sorted({r["label"] for r in read_annotation_csv(train_csv, need_label=True)})
        class_ids = {c: i for i, c in enumerate(self.classes)}
        rows = read_annotation_csv(path, need_label=self.split != "test")
        by_stem, by_id = self._by_stem, self._by_id
        items = []
        for line, row in enumerate(rows, start=2):
            label = None
            if self.split != "test":
                if row["label"] not in class_ids:
                    raise DataError(f"{path}:{line}: label {row['label']!r} is not a class of the train CSV "
                                    f"{train_csv}")
                label = class_ids[row["label"]]
            video = by_stem.get(clip_name(row["youtube_id"], row["start"], row["end"]))
            if video is None:
                candidates = by_id.get(row["youtube_id"], [])
                video = candidates[0] if len(candidates) == 1 else None
            items.append((video, label))
        return items

    def _find_list(self) -> Path:
        words = _CSV_SPLIT_WORDS[self.split]
        hits = [p for p in self._tables if "list" in p.stem.lower() and any(w in _split_words(p) for w in words)]
        if len(hits) != 1:
            raise DataError(f"kinetics600: expected one annotation CSV or one list file "
                            f"(<name>_{self.split}_list_videos.txt) for split {self.split!r} under {self.root}, "
                            f"found {len(hits)}{': ' + ', '.join(map(str, hits)) if hits else ''}")
        return hits[0]

    def _from_list(self, path: Path, num_classes: int) -> list[tuple[Path | None, int | None]]:
        by_stem = self._by_stem
        bases = [path.parent, path.parent / f"videos_{self.split}", path.parent / self.split, self.root]
        items = []
        for name, labels in read_list_file(path, num_classes):
            if len(labels) > 1:
                raise DataError(f"{path}: Kinetics is single-label, but {name!r} has labels {labels}")
            video = next((b / name for b in bases if (b / name).is_file()), None)
            video = video or by_stem.get(Path(name).stem)
            items.append((video, labels[0] if labels else None))
        return items

    # ------------------------------------------------------------------ samples

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        path, label = self.items[index]
        sample = {"video": self.reader.read(path, self.reader.draw_seed())}
        if self.has_labels:
            sample["label"] = torch.tensor(label, dtype=torch.long)
        return sample

    def summary(self) -> dict[str, Any]:
        labels = [it[1] for it in self.items if it[1] is not None]
        return {"source": str(self.source), "listed": self.listed, "found": self.listed - self.missing,
                "missing": self.missing, "classes": len(self.classes) or None,
                "labels_present": len(set(labels))}


@register("dataset", "kinetics600")
def open_kinetics600(split: str, *, num: int | None = None, seed: int = 0, params: Mapping[str, Any] | None = None,
                     cache_dir: str | os.PathLike | None = None) -> Kinetics600:
    """``open_dataset("kinetics600", split, params={"root": ..., "num_frames": 16, ...})``."""
    p = parse_params("kinetics600", params, KINETICS_SPEC)
    reader = ClipReader(p["num_frames"], p["stride"], p["sampling"], p["size"],
                        None if cache_dir is None else str(cache_dir))
    return Kinetics600(p["root"], split, layout=p["layout"], list_file=p["list_file"], num_classes=p["num_classes"],
                       reader=reader, num=num, seed=seed)
