"""Writers of the official CLEVRER layout (reference/dataset-formats.md 1.1-1.6)::

    out/videos/{train,val,test}/video_00000-01000/video_00000.mp4
    out/annotations/{train,val}/annotation_00000-01000/annotation_00000.json
    out/derender_proposals/proposal_00000.json
    out/questions/{train,validation,test}.json

Scene indices keep the official split offsets (train from 0, validation from 10000, test from 15000) so
that readers which infer the split from the index work unchanged; a generated dataset of ``N`` videos
takes the official 50/25/25 proportions (scaled down), see :func:`split_indices`. As in the release, the
test split has no annotation files and its question file has no answers.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError
from ..rle import encode
from .events import EXTRA

SPLIT_OFFSETS = {"train": 0, "val": 10_000, "test": 15_000}
SPLIT_CAPACITY = {"train": 10_000, "val": 5_000, "test": 5_000}
QUESTION_FILE = {"train": "train.json", "val": "validation.json", "test": "test.json"}


def split_indices(num: int, fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)) -> dict[str, list[int]]:
    """Scene indices per split: the first ``fractions[0]`` of ``num`` videos are train, and so on."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    n_train = int(round(num * fractions[0]))
    n_val = int(round(num * fractions[1]))
    counts = {"train": n_train, "val": n_val, "test": num - n_train - n_val}
    for split, n in counts.items():
        if n > SPLIT_CAPACITY[split]:
            raise ConfigError(f"num={num} puts {n} videos in {split}, more than its official range holds "
                              f"({SPLIT_CAPACITY[split]})")
    return {s: [SPLIT_OFFSETS[s] + k for k in range(n)] for s, n in counts.items()}


def split_of(index: int) -> str:
    return "test" if index >= 15_000 else "val" if index >= 10_000 else "train"


def _bucket(prefix: str, index: int) -> str:
    lo = index // 1000 * 1000
    return f"{prefix}_{lo:05d}-{lo + 1000:05d}"


def video_path(root: Path, index: int) -> Path:
    return root / "videos" / split_of(index) / _bucket("video", index) / f"video_{index:05d}.mp4"


def annotation_path(root: Path, index: int) -> Path:
    return root / "annotations" / split_of(index) / _bucket("annotation", index) / f"annotation_{index:05d}.json"


def proposal_path(root: Path, index: int) -> Path:
    return root / "derender_proposals" / f"proposal_{index:05d}.json"


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (temp file + rename), compact separators, stable key order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def proposals(index: int, labels: np.ndarray, props: list[dict[str, str]]) -> dict[str, Any]:
    """Derender-proposal dict: per frame, one COCO-RLE mask per object with pixels in that frame."""
    frames = []
    for t, lab in enumerate(labels):
        objs = []
        for k in np.unique(lab):
            if k == 0:
                continue
            p = props[int(k) - 1]
            objs.append({"mask": encode(lab == k), "video_index": index, "frame_index": t, "color": p["color"],
                         "material": p["material"], "shape": p["shape"], "score": 1.0, "object_id": int(k) - 1})
        frames.append({"frame_index": t, "objects": objs})
    return {"video_index": index, "video_filename": f"video_{index:05d}.mp4", "frames": frames}


def public_question(q: dict[str, Any], with_answers: bool) -> dict[str, Any]:
    """A question as the official file holds it (our ``template`` bookkeeping key removed)."""
    out = {k: v for k, v in q.items() if k != "template"}
    if not with_answers:
        out.pop("answer", None)
        if "choices" in out:
            out["choices"] = [{k: v for k, v in c.items() if k != "answer"} for c in out["choices"]]
    return out


def write_question_files(root: Path, scenes: dict[int, list[dict[str, Any]]]) -> dict[str, Path]:
    """``questions/{train,validation,test}.json`` from the questions of every scene."""
    out: dict[str, Path] = {}
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLIT_OFFSETS}
    for index in sorted(scenes):
        split = split_of(index)
        by_split[split].append({"scene_index": index, "video_filename": f"video_{index:05d}.mp4",
                                "questions": [public_question(q, split != "test") for q in scenes[index]]})
    for split, entries in by_split.items():
        if entries:
            path = root / "questions" / QUESTION_FILE[split]
            write_json(path, entries)
            out[split] = path
    return out


__all__ = ["EXTRA", "annotation_path", "proposal_path", "proposals", "public_question", "split_indices",
           "split_of", "video_path", "write_json", "write_question_files"]
