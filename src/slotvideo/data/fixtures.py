"""Tiny CLEVRER, CATER and Kinetics-600 datasets written in their official on-disk layouts.

For tests (ours and users'), the loading benchmark and trying the loaders without the real data.
Videos are coloured squares moving over a grey floor, written with :func:`write_video`; the JSON, list
and CSV files follow the schemas in reference/dataset-formats.md. Everything is a pure function of
``seed``. Ground truth is consistent: CLEVRER proposal masks are the squares' pixels (the first square
is drawn on top, matching the first-mask-wins segmentation), CATER localize labels come from the
snitch's last position through :func:`~slotvideo.metrics.cater.position_to_class`.

    root = write_clevrer(tmp_path / "CLEVRER")
    ds = open_dataset("clevrer", "train", params={"root": root, "task": "descriptive"})
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..metrics.cater import position_to_class
from ..registry import register
from . import rle
from .video_io import write_video

COLORS = {"blue": (42, 75, 215), "brown": (129, 74, 25), "cyan": (41, 208, 208), "gray": (87, 87, 87),
          "green": (29, 105, 20), "purple": (129, 38, 192), "red": (173, 35, 35), "yellow": (255, 238, 51)}
SHAPES = ("cube", "cylinder", "sphere")
MATERIALS = ("metal", "rubber")


def render_squares(rng: np.random.Generator, frames: int, size: tuple[int, int], colors: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squares bouncing in the frame: video uint8 ``[T, H, W, 3]``, masks bool ``[T, N, H, W]``, centres ``[T, N, 2]``.

    Object 0 is drawn on top, so ``argmax`` over masks (first wins) is the visible object.
    """
    h, w = size
    n = len(colors)
    side = max(2, min(h, w) // 5)
    span = np.array([h - side, w - side], np.float64)
    start = rng.uniform(0, 1, (n, 2)) * span
    vel = rng.uniform(-1, 1, (n, 2)) * span / max(frames, 1) * 2
    path = np.abs((start + vel * np.arange(frames)[:, None, None]) % (2 * span) - span)  # reflect off walls
    top = np.rint(span - path).astype(int)  # [T, N, 2]
    rows, cols = np.arange(h)[None, None, :, None], np.arange(w)[None, None, None, :]
    masks = ((rows >= top[..., 0, None, None]) & (rows < top[..., 0, None, None] + side)
             & (cols >= top[..., 1, None, None]) & (cols < top[..., 1, None, None] + side))
    owner = np.where(masks.any(1), masks.argmax(1), -1)  # [T, H, W]
    video = np.full((frames, h, w, 3), 128, np.uint8)
    palette = np.asarray(colors, np.uint8)
    video[owner >= 0] = palette[owner[owner >= 0]]
    return video, masks, top + side / 2


def _scene_objects(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    names = rng.choice(list(COLORS), size=n, replace=False)
    return [{"object_id": k, "color": str(names[k]), "material": str(rng.choice(MATERIALS)),
             "shape": str(rng.choice(SHAPES))} for k in range(n)]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


# --------------------------------------------------------------------------- CLEVRER


def _clevrer_questions(rng: np.random.Generator, scene: int, objects: list[dict[str, Any]], test: bool) -> dict:
    first = objects[0]
    desc = [
        {"question_id": 0, "question": f"What is the shape of the {first['color']} object?",
         "question_type": "descriptive", "question_subtype": "query_shape",
         "program": ["objects", first["color"], "filter_color", "unique", "query_shape"], "answer": first["shape"]},
        {"question_id": 1, "question": "How many objects are moving when the video ends?",
         "question_type": "descriptive", "question_subtype": "count",
         "program": ["events", "end", "objects", "filter_moving", "count"], "answer": str(len(objects))},
    ]
    a, b = objects[0], objects[1]
    mc = [
        {"question_id": 2, "question": "Which of the following will happen next?", "question_type": "predictive",
         "program": ["events", "unseen_events", "belong_to"],
         "choices": [{"choice_id": 0, "choice": f"The {a['color']} {a['shape']} collides with the {b['color']} object",
                      "program": ["events", "objects", a["color"], "filter_color", "unique", "filter_collision"],
                      "answer": "correct"},
                     {"choice_id": 1, "choice": f"The {b['shape']} and the {a['shape']} collide",
                      "program": ["events", "objects", b["shape"], "filter_shape", "unique", "filter_collision"],
                      "answer": "wrong"}]},
        {"question_id": 3, "question": f"Which of the following is responsible for the {b['color']} object's exiting?",
         "question_type": "explanatory", "program": ["events", "filter_out", "filter_ancestor"],
         "choices": [{"choice_id": k, "choice": f"the collision between the {objects[k % len(objects)]['color']} "
                      f"object and the {b['shape']}", "program": ["events", "filter_collision"],
                      "answer": "correct" if k == int(rng.integers(3)) else "wrong"} for k in range(3)]},
        {"question_id": 4, "question": f"What will happen without the {a['shape']}?",
         "question_type": "counterfactual", "program": ["events", "objects", "filter_counterfact"],
         "choices": [{"choice_id": 0, "choice": f"The {b['color']} object exits the scene",
                      "program": ["events", "filter_out"], "answer": "wrong"}]},
    ]
    questions = desc + mc
    if test:  # the test split has no answers and may have no programs
        questions = [{k: v for k, v in q.items() if k not in ("answer", "program")} for q in questions]
        for q in questions:
            if "choices" in q:
                q["choices"] = [{k: v for k, v in c.items() if k not in ("answer", "program")} for c in q["choices"]]
    return {"scene_index": scene, "video_filename": f"video_{scene:05d}.mp4", "questions": questions}


def write_clevrer(root: str | os.PathLike, *, train: Sequence[int] = (0, 1, 2), val: Sequence[int] = (10000, 10001),
                  test: Sequence[int] = (15000,), frames: int = 128, size: tuple[int, int] = (32, 48),
                  objects: int = 3, proposals: bool = True, val_folder: str = "val", archive_root: str | None = None,
                  seed: int = 0) -> Path:
    """A CLEVRER root in SlotFormer's layout (``videos/<split>/video_00000-01000/video_00000.mp4`` ...).

    ``val_folder="validation"`` and ``archive_root="video_train"`` (an extra folder inside each split
    folder, as some archives add) reproduce the layout variations the loader must tolerate.
    """
    root = Path(root)
    splits = {"train": list(train), "val": list(val), "test": list(test)}
    folder = {"train": "train", "val": val_folder, "test": "test"}
    question_files = {"train": "train.json", "val": "validation.json", "test": "test.json"}
    for split, scenes in splits.items():
        entries = []
        for scene in scenes:
            rng = np.random.default_rng([seed, scene])
            objs = _scene_objects(rng, objects)
            video, masks, centres = render_squares(rng, frames, size, np.array([COLORS[o["color"]] for o in objs]))
            group = f"{scene // 1000 * 1000:05d}-{scene // 1000 * 1000 + 1000:05d}"
            base = root / "videos" / folder[split] / (archive_root or "")
            write_video(base / f"video_{group}" / f"video_{scene:05d}.mp4", video, fps=25)
            if split != "test":
                ann = root / "annotations" / folder[split] / f"annotation_{group}" / f"annotation_{scene:05d}.json"
                _write_json(ann, _clevrer_annotation(scene, objs, centres, size))
            if proposals:
                _write_json(root / "derender_proposals" / f"proposal_{scene:05d}.json",
                            {"scene_index": scene, "frames": [
                                {"frame_index": t, "objects": [
                                    {**{k: o[k] for k in ("color", "material", "shape")}, "score": 1.0,
                                     "mask": rle.encode(masks[t, k])} for k, o in enumerate(objs) if masks[t, k].any()]}
                                for t in range(frames)]})
            entries.append(_clevrer_questions(rng, scene, objs, test=split == "test"))
        _write_json(root / "questions" / question_files[split], entries)
    return root


def _clevrer_annotation(scene: int, objs: list[dict[str, Any]], centres: np.ndarray, size: tuple[int, int]) -> dict:
    h, w = size
    xy = (centres[..., ::-1] / np.array([w, h]) - 0.5) * 6  # pixels -> a [-3, 3] floor, (x, y) order
    vel = np.diff(xy, axis=0, prepend=xy[:1])
    return {"scene_index": scene, "video_filename": f"video_{scene:05d}.mp4", "object_property": objs,
            "motion_trajectory": [{"frame_id": t, "objects": [
                {"object_id": k, "location": [float(xy[t, k, 0]), float(xy[t, k, 1]), 0.2],
                 "orientation": [0.0, 0.0, 0.0], "velocity": [float(vel[t, k, 0]), float(vel[t, k, 1]), 0.0],
                 "angular_velocity": [0.0, 0.0, 0.0], "inside_camera_view": True} for k in range(len(objs))]}
                for t in range(len(xy))],
            "collision": [{"object_ids": [0, 1], "frame_id": len(xy) // 2, "location": [0.0, 0.0, 0.2]}]}


# --------------------------------------------------------------------------- CATER


def write_cater(root: str | os.PathLike, *, variants: Sequence[str] = ("all_actions", "max2action"), train: int = 4,
                val: int = 2, frames: int = 24, size: tuple[int, int] = (24, 32), seed: int = 0) -> Path:
    """A CATER release folder: ``<variant>/{videos/CLEVR_new_%06d.avi, scenes/*.json, lists/<task>/*.txt}``."""
    root = Path(root)
    n = train + val
    for variant in variants:
        base = root / variant
        localize, present, order = [], [], []
        for i in range(n):
            rng = np.random.default_rng([seed, i, len(variant)])
            video, _, centres = render_squares(rng, frames, size, rng.integers(40, 255, (3, 3)))
            name = f"CLEVR_new_{i:06d}"
            write_video(base / "videos" / f"{name}.avi", video, fps=24)
            h, w = size
            xy = (centres[..., ::-1] / np.array([w, h]) - 0.5) * 6  # the snitch is object 0
            xy = np.clip(xy, -3, 3 - 1e-3)
            locations = {str(t): [float(xy[t, 0, 0]), float(xy[t, 0, 1]), 0.3] for t in range(frames)}
            _write_json(base / "scenes" / f"{name}.json",
                        {"objects": [{"shape": "spl", "locations": locations}], "image_filename": f"{name}.png"})
            label = int(position_to_class(torch.tensor(xy[-1, 0], dtype=torch.float64)))
            localize.append(f"{name}.avi {label}")
            present.append(f"{name}.avi " + ",".join(map(str, sorted(rng.choice(14, 3, replace=False).tolist()))))
            order.append(f"{name}.avi " + ",".join(map(str, sorted(rng.choice(301, 4, replace=False).tolist()))))
        for task, lines in (("localize", localize), ("actions_present", present), ("actions_order_uniq", order)):
            lists = base / "lists" / task
            lists.mkdir(parents=True, exist_ok=True)
            cut = max(1, int(round(train * 0.8)))
            for fname, part in (("train.txt", lines[:train]), ("val.txt", lines[train:]),
                                ("train_subsetT.txt", lines[:cut]), ("train_subsetV.txt", lines[cut:train])):
                (lists / fname).write_text("".join(f"{line}\n" for line in part))
    return root


# --------------------------------------------------------------------------- Kinetics-600

KINETICS_CLASSES = ("abseiling", "playing cards", "zumba")


def write_kinetics(root: str | os.PathLike, *, classes: Sequence[str] = KINETICS_CLASSES, train_per_class: int = 2,
                   val_per_class: int = 1, test: int = 2, missing: int = 1, frames: int = 20,
                   size: tuple[int, int] = (24, 32), seed: int = 0) -> Path:
    """Kinetics-600 annotation CSVs (``annotations/kinetics-600_<split>.csv``) and clips at
    ``<split>/<label>/<id>_<%06d>_<%06d>.mp4`` (test clips in ``test/``), plus mmaction2-style list files
    ``kinetics600_<split>_list_videos.txt``. The last ``missing`` train rows have no clip file.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    counter = 0
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for label in classes:
            for _ in range(per_class):
                rows[split].append({"label": label, "youtube_id": f"yt{counter:09d}", "time_start": 10 * counter,
                                    "time_end": 10 * counter + 10, "split": split})
                counter += 1
    for _ in range(test):
        rows["test"].append({"youtube_id": f"yt{counter:09d}", "time_start": 5, "time_end": 15, "split": "test"})
        counter += 1
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        columns = (["label"] if split != "test" else []) + ["youtube_id", "time_start", "time_end", "split"]
        with open(root / "annotations" / f"kinetics-600_{split}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(items)
        class_ids = {c: i for i, c in enumerate(sorted(classes))}
        list_lines = []
        skip = missing if split == "train" else 0
        for k, row in enumerate(items):
            stem = f"{row['youtube_id']}_{row['time_start']:06d}_{row['time_end']:06d}"
            rel = Path(row.get("label", "test")) / f"{stem}.mp4"
            if k < len(items) - skip:
                video, _, _ = render_squares(rng, frames, size, rng.integers(40, 255, (2, 3)))
                write_video(root / split / rel, video, fps=25)
            if split != "test":
                list_lines.append(f"{rel.as_posix()} {class_ids[row['label']]}")
        if split != "test":
            (root / f"kinetics600_{split}_list_videos.txt").write_text("".join(f"{x}\n" for x in list_lines))
    return root


@register("dataset", "kinetics600-fixture")
def open_kinetics600_fixture(split: str, *, num: int | None = None, seed: int = 0,
                             params: Mapping[str, Any] | None = None,
                             cache_dir: str | os.PathLike | None = None) -> Dataset:
    """The Kinetics-600 fixture, written into ``cache_dir`` on first use and read by the real loader.

    For end-to-end runs of classification configs without the real dataset (its clips are random
    frames: it exercises the format and the pipeline, not action recognition).
    """
    from .kinetics import open_kinetics600

    if cache_dir is None:
        raise ConfigError("data.cache_dir: kinetics600-fixture is written into a folder on first use; set a cache_dir")
    root = Path(cache_dir) / f"kinetics600-fixture-{seed}"
    done = root / ".complete"
    if not done.exists():
        write_kinetics(root, seed=seed, missing=0)
        done.write_text("ok\n")
    return open_kinetics600(split, num=num, seed=seed, params={**dict(params or {}), "root": str(root)},
                            cache_dir=cache_dir)
