"""A JSON-ready summary of a real dataset root, loaded the way training loads it.

For each split it opens the registered dataset through :func:`open_dataset` (so the same file search,
validation and skip counting run), then reports what was found and missing, questions per type
(CLEVRER) or labels (CATER, Kinetics), and the frames and size of one decoded sample. A split whose
files are absent is reported with its error message instead of stopping the others.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SlotvideoError
from . import cater as _cater  # noqa: F401  (registers "cater"; clevrer and kinetics register on import below)
from .clevrer import QUESTION_FILES, ClevrerFiles, question_counts, read_questions
from .generated import open_dataset

DATASETS = ("clevrer", "cater", "kinetics600")
SPLITS = {"clevrer": ("train", "val", "test"), "cater": ("train", "val"), "kinetics600": ("train", "val", "test")}


def _sample_info(dataset: Any) -> dict[str, Any]:
    sample = dataset[0]
    video = sample["video"]
    info = {"frames": int(video.shape[0]), "height": int(video.shape[-2]), "width": int(video.shape[-1]),
            "keys": sorted(sample)}
    if "segmentation" in sample:
        info["segmentation_ids"] = sorted(int(v) for v in sample["segmentation"].unique())
    return info


def inspect_dataset(name: str, root: str | os.PathLike, params: Mapping[str, Any] | None = None,
                    decode: bool = True) -> dict[str, Any]:
    """Summary dict of dataset ``name`` under ``root``; ``decode=False`` skips decoding a sample."""
    if name not in DATASETS:
        raise ConfigError(f"cannot inspect {name!r}; datasets with an on-disk layout are {list(DATASETS)}")
    params = {**dict(params or {}), "root": str(root)}
    out: dict[str, Any] = {"dataset": name, "root": str(Path(root)), "splits": {}}
    if name == "clevrer":
        out.update(_clevrer_files(Path(root)))
    for split in SPLITS[name]:
        entry: dict[str, Any] = {}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ds = open_dataset(name, split, params=params)
            entry.update(ds.summary())
            entry["warnings"] = [str(w.message) for w in caught]
            if decode:
                entry["sample"] = _sample_info(ds)
        except SlotvideoError as e:
            entry["error"] = str(e)
        out["splits"][split] = entry
    return out


def _clevrer_files(root: Path) -> dict[str, Any]:
    """Question counts per type and split, straight from the question files (independent of the task)."""
    files = ClevrerFiles.scan(root)
    questions: dict[str, Any] = {}
    for split in QUESTION_FILES:
        path = files.questions.get(split)
        if path is None:
            questions[split] = {"error": f"no {' or '.join(QUESTION_FILES[split])} under {root}"}
            continue
        try:
            questions[split] = {"file": str(path), **question_counts(read_questions(path), files.videos)}
        except SlotvideoError as e:
            questions[split] = {"error": str(e)}
    return {"videos_total": len(files.videos), "annotations_total": len(files.annotations),
            "proposals_total": len(files.proposals), "questions": questions}
