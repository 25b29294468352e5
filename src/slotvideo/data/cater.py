"""CATER in its release layout: ``<release>/<variant>/{videos/, scenes/, lists/<task>/{train,val}.txt}``.

Facts (reference/dataset-formats.md section 2):

* variants ``max2action``, ``max2action_cameramotion``, ``all_actions``, ``all_actions_cameramotion``
  (params ``actions`` and ``camera`` = ``static`` / ``moving``, or ``both``: the static and the
  moving-camera variant's videos of the split together, as Aloe trains on CATER, appendix A.3);
  videos ``CLEVR_new_%06d.avi``, 320x240, 300 frames at 24 fps;
* list lines are ``<video> <label>`` separated by whitespace, multi-label lists join ids with commas;
* ``localize``: 36 classes on the 6x6 grid (4x4 / 8x8 ablations live in folders named with ``4x4`` /
  ``8x8``); ``actions_present``: 14 atomic actions (multi-label); ``actions_order_uniq``: 301
  compositional classes (multi-label);
* the official snitch localization numbers are on ``all_actions`` and its camera-motion twin, scored on
  ``val.txt``: so split ``test`` reads ``val.txt`` too, and ``subset=true`` switches train/val to the
  80/20 ``train_subsetT.txt`` / ``train_subsetV.txt`` split for model selection;
* scores are averaged over the clips of a video before top-1 / top-5 / L1 (:func:`evaluate_localization`).

Samples: ``video`` ``[T, 3, H, W]``, ``label`` (``[]`` class id for localize, ``[C]`` multi-hot otherwise)
and ``video_index`` (which video of the list a clip comes from, for clip averaging); with ``camera: both``
also ``camera`` (int64 ``[]``: 0 static, 1 moving), and ``video_index`` counts the static videos first,
then the moving ones, so clip averaging never merges two variants' videos.

``masks: true`` adds ``segmentation`` (int64 ``[T, H, W]``) from ``<variant>/masks/<video>.json``, the
per-frame RLE instance masks our generated CATER layout writes (the official release has none): 0 is the
background and object k of ``scenes/<video>.json`` has id k + 1 in every frame, so the golden snitch
(object 0) is id 1 (:data:`SNITCH_ID`) and per-video tracking scores apply. A video whose mask or scene
file is missing gets all -1 (ignored by the metrics) and is counted in the skip report.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError, check_range
from ..metrics.cater import average_clip_scores, cater_localization
from ..registry import register
from .kinetics import (CLIP_SPEC, ClipReader, check_split, dataset_root, index_files, parse_params, read_list_file,
                       report_skips, subset)
from .segmentation import clip_segmentation, json_field
from .video_io import video_info

TASK_CLASSES = {"localize": 36, "actions_present": 14, "actions_order_uniq": 301}
CAMERAS = {"static": "", "moving": "_cameramotion"}
#: param ``camera`` values: one variant, or ``both`` (static videos first, then moving); ``camera`` ids
CAMERA_CHOICES = (*CAMERAS, "both")
CAMERA_IDS = {"static": 0, "moving": 1}
ACTIONS = ("all_actions", "max2action")
LIST_FILES = {False: {"train": "train.txt", "val": "val.txt", "test": "val.txt"},
              True: {"train": "train_subsetT.txt", "val": "train_subsetV.txt", "test": "val.txt"}}
# Aloe: 80 random frames at 64x64; Slot Transformer: sequence length 80 at 64x64 (table of its appendix).
PRESETS = {"aloe": {"num_frames": 80, "size": (64, 64), "sampling": "random"},
           "slot_transformer": {"num_frames": 80, "size": (64, 64), "sampling": "uniform"}}
CATER_SPEC = {"root": ("str?", None), "task": ("str", "localize"), "camera": ("str", "static"),
              "actions": ("str?", None), "grid": ("int", 6), "subset": ("bool", False),
              "clips_per_video": ("int", 1), "masks": ("bool", False), **CLIP_SPEC}
#: segmentation id of the golden snitch: object 0 of every CATER scene
SNITCH_ID = 1


def task_classes(task: str, grid: int = 6) -> int:
    """Label classes of a CATER task: ``grid x grid`` cells for ``localize``, else the task's fixed count."""
    return grid * grid if task == "localize" else TASK_CLASSES[task]


def variant_name(actions: str, camera: str) -> str:
    if actions not in ACTIONS:
        raise ConfigError(f"cater param 'actions' must be one of {list(ACTIONS)}, got {actions!r}")
    if camera not in CAMERAS:
        raise ConfigError(f"cater param 'camera' must be one of {list(CAMERAS)}, got {camera!r}")
    return actions + CAMERAS[camera]


def find_variant(root: Path, name: str) -> Path:
    """The variant folder: ``root/<name>``, ``root`` itself, or a ``<name>`` folder nested in an archive root."""
    if (root / name).is_dir():
        return root / name
    if root.name == name:
        return root
    for folder, dirs, _ in os.walk(root):
        if len(Path(folder).relative_to(root).parts) >= 3:
            dirs[:] = []
            continue
        if name in dirs:
            return Path(folder) / name
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    raise DataError(f"cater: no {name}/ folder under {root}; expected <root>/{name}/{{videos,lists}} "
                    "(see docs/datasets.md)")


def find_list(variant: Path, task: str, grid: int, filename: str) -> Path:
    """``lists/<task>/<filename>`` anywhere under the variant (archives may add a top folder)."""
    if task == "localize" and grid != 6:
        wanted = lambda d: d.startswith("localize") and f"{grid}x{grid}" in d  # noqa: E731
    else:
        wanted = lambda d: d == task  # noqa: E731
    hits = sorted(Path(folder) / filename for folder, _, files in os.walk(variant)
                  if wanted(Path(folder).name) and filename in files and not Path(folder).name.startswith("."))
    if not hits:
        raise DataError(f"cater: no lists/{task}{'' if grid == 6 else f' {grid}x{grid}'}/{filename} under {variant}")
    if len(hits) > 1:
        raise DataError(f"cater: several {filename} for task {task!r} under {variant}: {', '.join(map(str, hits))}")
    return hits[0]


class Cater(Dataset):
    """One CATER task and split; ``clips_per_video`` > 1 cuts each video into evenly spaced clips (evaluation).

    ``camera="both"`` concatenates the static and the moving-camera variants' videos (static first) and adds
    the ``camera`` key. A shuffled loader mixes them in proportion to their sizes; ``data.balance: true``
    (:meth:`balance_groups`) makes every batch half static, half moving, as the paper's.
    ``sources`` lists ``(camera, variant folder, list file)``; ``variant`` / ``list_path`` are the first.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", *, task: str = "localize",
                 camera: str = "static", actions: str | None = None, grid: int = 6, subset_lists: bool = False,
                 clips_per_video: int = 1, reader: ClipReader | None = None, num: int | None = None, seed: int = 0,
                 masks: bool = False):
        self.root, self.split = dataset_root("cater", root), check_split("cater", split)
        if task not in TASK_CLASSES:
            raise ConfigError(f"cater param 'task' must be one of {list(TASK_CLASSES)}, got {task!r}")
        check_range(grid, "cater param 'grid'", low=2, integer=True)
        if grid != 6 and task != "localize":
            raise ConfigError(f"cater param 'grid' applies to task 'localize' only, got grid={grid} for {task!r}")
        check_range(clips_per_video, "cater param 'clips_per_video'", low=1, integer=True)
        self.reader = reader or ClipReader()
        if clips_per_video > 1 and (self.reader.sampling not in ("all", "stride") or self.reader.num_frames is None):
            raise ConfigError("cater param 'clips_per_video' > 1 needs sampling 'all' or 'stride' and num_frames")
        if camera not in CAMERA_CHOICES:
            raise ConfigError(f"cater param 'camera' must be one of {list(CAMERA_CHOICES)}, got {camera!r}")
        self.task, self.grid, self.clips, self.camera = task, grid, clips_per_video, camera
        self.num_classes = task_classes(task, grid)
        actions = actions or ("all_actions" if task == "localize" else "max2action")
        self.sources: list[tuple[str, Path, Path]] = []
        self.listed = self.missing = 0
        present: list[tuple[Path, list[int], int]] = []
        for cam in (("static", "moving") if camera == "both" else (camera,)):
            variant = find_variant(self.root, variant_name(actions, cam))
            list_path = find_list(variant, task, grid, LIST_FILES[subset_lists][split])
            self.sources.append((cam, variant, list_path))
            present += [(path, labels, CAMERA_IDS[cam]) for path, labels in self._read_list(variant, list_path)]
        self.variant, self.list_path = self.sources[0][1:]
        self.videos = [present[i] for i in subset(len(present), num, seed)]
        self.masks, self._ids = masks, {}
        if masks:
            lacking = sum(not all(f.exists() for f in self.mask_files(v)) for v in range(len(self.videos)))
            report_skips("cater", self.split, {"videos without masks/ or scenes/ json (segmentation -1)": lacking},
                         len(self.videos), "")

    def _read_list(self, variant: Path, list_path: Path) -> list[tuple[Path, list[int]]]:
        """The listed videos found under ``variant`` with their labels (missing ones counted and reported)."""
        entries = read_list_file(list_path, self.num_classes)
        for name, labels in entries:
            if not labels:
                raise DataError(f"{list_path}: video {name!r} has no label")
            if self.task == "localize" and len(labels) != 1:
                raise DataError(f"{list_path}: localize labels are single class ids, {name!r} has {labels}")
        videos = index_files(variant, r"((.+)\.(?:avi|mp4))")
        by_name = {name: paths[0] for name, paths in videos.items()}
        by_stem = {Path(name).stem: path for name, path in by_name.items()}
        found = [(by_name.get(name) or by_stem.get(Path(name).stem), labels) for name, labels in entries]
        present = [f for f in found if f[0] is not None]
        missing = len(entries) - len(present)
        self.listed, self.missing = self.listed + len(entries), self.missing + missing
        report_skips("cater", self.split, {"missing videos": missing}, len(entries), f"; listed in {list_path}")
        if not present:
            raise DataError(f"cater {self.split}: none of the {len(entries)} videos in {list_path} were found "
                            f"under {variant}")
        return present

    def __len__(self) -> int:
        return len(self.videos) * self.clips

    def balance_groups(self) -> list[int]:
        """Per sample, its camera id (0 static, 1 moving): the groups ``data.balance`` draws equally per batch
        (appendix A.3: 4 static + 4 moving-camera videos); only ``camera: both`` has both."""
        if self.camera != "both":
            raise ConfigError(f"data.balance: cater camera {self.camera!r} has one camera; balancing static and "
                              "moving-camera videos needs data.params.camera: both")
        return [self.videos[i // self.clips][2] for i in range(len(self))]

    def label(self, video: int) -> Tensor:
        labels = self.videos[video][1]
        if self.task == "localize":
            return torch.tensor(labels[0], dtype=torch.long)
        hot = torch.zeros(self.num_classes, dtype=torch.long)
        hot[labels] = 1
        return hot

    def _start(self, path: Path, clip: int) -> int:
        """First frame of clip ``clip`` of ``self.clips``, evenly spaced over the video."""
        if self.clips == 1:
            return 0
        span = (self.reader.num_frames - 1) * self.reader.stride + 1
        room = video_info(path).frames - span
        if room < 0:
            raise DataError(f"video {path} is shorter than one clip ({span} frames)")
        return int(round(clip * room / (self.clips - 1)))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        video, clip = divmod(index, self.clips)
        path, seed = self.videos[video][0], self.reader.draw_seed()
        start = self._start(path, clip)
        sample = {"video": self.reader.read(path, seed, start=start),
                  "label": self.label(video), "video_index": torch.tensor(video, dtype=torch.long)}
        if self.camera == "both":
            sample["camera"] = torch.tensor(self.videos[video][2], dtype=torch.long)
        if self.masks:
            sample["segmentation"] = self._segmentation(video, seed, start, sample["video"].shape)
        return sample

    def mask_files(self, video: int) -> tuple[Path, Path]:
        """``(<variant>/masks/<stem>.json, <variant>/scenes/<stem>.json)`` of video ``video``."""
        path, _, camera = self.videos[video]
        variant = next(v for cam, v, _ in self.sources if CAMERA_IDS[cam] == camera)
        return variant / "masks" / f"{path.stem}.json", variant / "scenes" / f"{path.stem}.json"

    def _segmentation(self, video: int, seed: int | None, start: int, shape: torch.Size) -> Tensor:
        """The clip's ``[T, H, W]`` instance ids (object k of the scene file -> k + 1), -1 without masks."""
        masks, scene = self.mask_files(video)
        if not (masks.exists() and scene.exists()):
            return torch.full((shape[0], *shape[-2:]), -1, dtype=torch.long)
        return clip_segmentation(masks, self.reader, self.videos[video][0], seed, tuple(shape[-2:]), start,
                                 self._instance_ids(video, scene), what="CATER masks")

    def _instance_ids(self, video: int, scene: Path) -> dict[str, int]:
        """``{instance name: k + 1}`` of the scene file's objects, read once per video."""
        ids = self._ids.get(video)
        if ids is None:
            try:
                objects = json_field(json.loads(scene.read_text()), "objects", list, str(scene))
            except (OSError, ValueError) as e:
                raise DataError(f"cannot read CATER scene {scene}: {e}") from None
            ids = self._ids[video] = {json_field(o, "instance", str, f"{scene} objects[{k}]"): k + 1
                                      for k, o in enumerate(objects)}
        return ids

    def summary(self) -> dict[str, Any]:
        counts: dict[int, int] = {}
        for _, labels, _ in self.videos:
            for lab in labels:
                counts[lab] = counts.get(lab, 0) + 1
        return {"variant": "+".join(v.name for _, v, _ in self.sources),
                "list": ", ".join(str(lp) for _, _, lp in self.sources), "listed": self.listed,
                "found": self.listed - self.missing, "missing": self.missing, "num_classes": self.num_classes,
                "labels_present": len(counts), "label_counts": dict(sorted(counts.items()))}


def evaluate_localization(logits: Tensor, video_index: Tensor, labels: Tensor) -> dict[str, float]:
    """Top-1, top-5 and L1 grid distance with clip softmax scores averaged per video first (official rule).

    ``logits`` ``[N, C]`` of N clips, ``video_index`` ``[N]`` (the samples' ``video_index``), ``labels``
    ``[N]`` (every clip of a video carries the video's label).
    """
    scores, ids = average_clip_scores(logits, video_index)
    first = torch.zeros(len(ids), dtype=torch.long)
    inverse = torch.searchsorted(ids, video_index)
    first.scatter_(0, inverse, labels.long())  # all clips of a video agree; any one of them will do
    if not bool((first[inverse] == labels.long()).all()):
        raise DataError("labels differ between clips of the same video_index")
    return cater_localization(scores, first)


@register("dataset", "cater")
def open_cater(split: str, *, num: int | None = None, seed: int = 0, params: Mapping[str, Any] | None = None,
               cache_dir: str | os.PathLike | None = None) -> Cater:
    """``open_dataset("cater", split, params={"root": ..., "task": "localize", "camera": "static", ...})``;
    ``camera`` is ``static``, ``moving`` or ``both``."""
    p = parse_params("cater", params, CATER_SPEC, PRESETS)
    reader = ClipReader(p["num_frames"], p["stride"], p["sampling"], p["size"],
                        None if cache_dir is None else str(cache_dir))
    return Cater(p["root"], split, task=p["task"], camera=p["camera"], actions=p["actions"], grid=p["grid"],
                 subset_lists=p["subset"], clips_per_video=p["clips_per_video"], reader=reader, num=num, seed=seed,
                 masks=p["masks"])
