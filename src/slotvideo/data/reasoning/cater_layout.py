"""Writers of the CATER release layout (reference/dataset-formats.md 2.1-2.2)::

    out/<variant>/videos/CLEVR_new_000000.avi
    out/<variant>/scenes/CLEVR_new_000000.json     objects (with per-frame "locations"), movements
    out/<variant>/masks/CLEVR_new_000000.json      per-frame COCO-RLE instance masks (our addition)
    out/<variant>/lists/{localize,localize_4x4,localize_8x8,actions_present,actions_order_uniq}/
                        {train,val,train_subsetT,train_subsetV}.txt

``<variant>`` is ``all_actions`` or ``max2action``, with ``_cameramotion`` for the moving camera. List
lines are ``<video> <label>`` (multi-label: ids joined by commas), as the official ``write_to_file``.
Labels follow the official ``gen_train_test.py``: the localize class is the cell of the snitch's last
location (:func:`localize_label`), ``actions_present`` the (shape, action) classes seen, and
``actions_order_uniq`` the 301 classes "action X before/during/after action Y" with "Y after X"
duplicates removed. The official split is a random 70/30 train/val cut; ours takes the first 70% of the
indices as train (the subsets are the first 80% / last 20% of train).
"""
from __future__ import annotations

import math
from itertools import permutations, product
from pathlib import Path
from typing import Any

import numpy as np

from ..rle import encode
from .cater_sim import CaterScene
from .vocab import ACTION_CLASSES, ORDERINGS

TASKS = ("localize", "localize_4x4", "localize_8x8", "actions_present", "actions_order_uniq")
_REVERSE = {"before": "after", "after": "before", "during": "during"}


def video_name(index: int) -> str:
    return f"CLEVR_new_{index:06d}.avi"


def localize_label(position: list[float] | np.ndarray, cols: int = 3) -> int:
    """Official class of a plane position: ``x = floor(px * cols/3) + cols``, ``y`` alike, ``y * 2cols + x``."""
    px, py = position[0] * cols / 3, position[1] * cols / 3
    return (int(math.floor(py)) + cols) * 2 * cols + int(math.floor(px)) + cols


def order_classes() -> list[tuple[tuple[tuple[str, str], tuple[str, str]], str]]:
    """The 301 compositional classes in the official order (pairs of action classes x ordering, deduplicated)."""
    classes = []
    seen = set()
    for pair, order in product(product(ACTION_CLASSES, repeat=2), ORDERINGS):
        if (pair, order) in seen or ((pair[1], pair[0]), _REVERSE[order]) in seen:
            continue
        seen.add((pair, order))
        classes.append((pair, order))
    return classes


ORDER_CLASS_ID = {c: i for i, c in enumerate(order_classes())}


def _ordering(a: tuple[int, int], b: tuple[int, int]) -> str:
    if a[1] <= b[0]:
        return "before"
    if b[1] <= a[0]:
        return "after"
    return "during"


def action_labels(scene_json: dict[str, Any]) -> tuple[list[int], list[int]]:
    """(actions_present ids, actions_order_uniq ids) of a scene JSON, as the official list generator."""
    shape_of = {o["instance"]: o["shape"] for o in scene_json["objects"]}
    actions = [(shape_of[name], m[0], (m[2], m[3])) for name, moves in scene_json["movements"].items() for m in moves]
    present = sorted({i for i, c in enumerate(ACTION_CLASSES) if any((s, a) == c for s, a, _ in actions)})
    order = set()
    for x, y in permutations(actions, 2):
        key = (((x[0], x[1]), (y[0], y[1])), _ordering(x[2], y[2]))
        if key in ORDER_CLASS_ID:
            order.add(ORDER_CLASS_ID[key])
    return present, sorted(order)


def scene_json(index: int, scene: CaterScene, eyes: np.ndarray, split: str) -> dict[str, Any]:
    objects = []
    for k, o in enumerate(scene.objects):
        objects.append({
            "shape": o.shape, "size": o.size, "sized": o.sized, "material": o.material, "color": o.color,
            "instance": o.instance, "3d_coords": [round(float(x), 4) for x in scene.position[0, k]],
            "rotation": round(float(scene.rotation[0, k]), 3),
            "locations": {str(t): [round(float(x), 4) for x in scene.position[t, k]]
                          for t in range(scene.position.shape[0])},
        })
    return {"split": split, "image_index": index, "image_filename": video_name(index), "objects": objects,
            "movements": scene.movements,
            "camera_locations": {str(t): [round(float(x), 4) for x in eyes[t]] for t in range(len(eyes))}}


def masks_json(index: int, labels: np.ndarray, scene: CaterScene) -> dict[str, Any]:
    frames = []
    for t, lab in enumerate(labels):
        objs = [{"instance": scene.objects[int(k) - 1].instance, "mask": encode(lab == k)}
                for k in np.unique(lab) if k > 0]
        frames.append({"frame_index": t, "objects": objs})
    return {"video_filename": video_name(index), "frames": frames}


def write_lists(variant: Path, records: dict[int, dict[str, Any]], train_fraction: float = 0.7) -> None:
    """``lists/<task>/{train,val,train_subsetT,train_subsetV}.txt`` from the per-video records."""
    indices = sorted(records)
    n_train = int(round(len(indices) * train_fraction))
    n_sub = int(round(n_train * 0.8))
    parts = {"train": indices[:n_train], "val": indices[n_train:],
             "train_subsetT": indices[:n_sub], "train_subsetV": indices[n_sub:n_train]}
    for task in TASKS:
        folder = variant / "lists" / task
        folder.mkdir(parents=True, exist_ok=True)
        for part, idx in parts.items():
            lines = []
            for i in idx:
                label = records[i]["labels"][task]
                text = ",".join(map(str, label)) if isinstance(label, list) else str(label)
                if text:  # the official lists drop videos with no label
                    lines.append(f"{video_name(i)} {text}\n")
            (folder / f"{part}.txt").write_text("".join(lines))
