"""CLEVRER test-server submissions from ``slotvideo evaluate --submission PATH`` (see :mod:`.evaluate`).

A question-answering model (one with ``task_logits(batch)``) answers every question of a CLEVRER(-style)
split; :func:`write_answers` merges them into the submission JSON at PATH, keeping an existing file's
answers to other questions (descriptive and multiple-choice answers come from two passes).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.clevrer import Clevrer, ClevrerPredictions, split_of, write_submission
from ..errors import ConfigError, DataError

__all__ = ["ClevrerPredictions", "answering", "check_submission_source", "merge_submission", "write_answers"]


def check_submission_source(model: Any, dataset: Any, data_name: str) -> None:
    """A submission needs a model with ``task_logits`` and a CLEVRER(-style) question dataset."""
    if not callable(getattr(model, "task_logits", None)):
        raise ConfigError(f"--submission: this run's model ({type(model).__name__}) answers no questions "
                          "(it has no task_logits); use a question-answering run (model.name: aloe, cnn_lstm, slot-transformer)")
    if not isinstance(dataset, Clevrer):
        raise DataError(f"--submission writes CLEVRER test-server answers; data.name {data_name!r} is not a "
                        "CLEVRER-style dataset (clevrer, clevrer-mini)")
    if dataset.task not in ("descriptive", "multiple_choice"):
        raise DataError(f"--submission needs question samples; set data.params.task=descriptive or "
                        f"multiple_choice (got {dataset.task!r})")


def answering(model: Any, predictions: ClevrerPredictions) -> Callable[[Any], dict[str, Tensor]]:
    """``evaluate_batch`` that also feeds the model's answers (``task_logits``) to ``predictions``.

    Descriptive answer id 0 is padding, never an answer (as in ``slotvideo answer``), so it is never
    submitted. The metrics reuse the logits when the model has ``task_metrics(batch, logits)``."""
    metrics = getattr(model, "task_metrics", None)

    def evaluate(batch: Any) -> dict[str, Tensor]:
        logits = model.task_logits(batch)
        if "choices" in batch:
            predictions.add(batch, logits)
        else:
            predictions.add(batch, logits.index_fill(-1, torch.tensor([0], device=logits.device), -math.inf))
        return metrics(batch, logits) if metrics is not None else model.evaluate_batch(batch)

    return evaluate


def merge_submission(path: Path, entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """``entries`` plus those of an existing submission at ``path`` for other questions (sorted by scene and
    question id; ``entries`` as given when there is no file), and how many questions were kept from the file."""
    if not path.is_file():
        return entries, 0
    try:
        old = json.loads(path.read_text())
        old_questions = {(int(e["scene_index"]), int(q["question_id"])): q for e in old for q in e["questions"]}
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise DataError(f"--submission: {path} exists but is not a CLEVRER submission ({e}); remove it") from None
    new_questions = {(int(e["scene_index"]), int(q["question_id"])): q for e in entries for q in e["questions"]}
    splits = {split_of(s) for s, _ in list(old_questions) + list(new_questions)}
    if len(splits) > 1:
        raise DataError(f"--submission: {path} holds answers for split(s) other than this one "
                        f"({', '.join(sorted(splits))} together); remove it or write to another file")
    kept = {k: q for k, q in old_questions.items() if k not in new_questions}
    scenes: dict[int, list[dict[str, Any]]] = {}
    for (scene, _), q in sorted({**kept, **new_questions}.items()):
        scenes.setdefault(scene, []).append(q)
    return [{"scene_index": s, "questions": qs} for s, qs in scenes.items()], len(kept)


def write_answers(path: str | os.PathLike, predictions: ClevrerPredictions, dataset: Clevrer,
                  complete: bool) -> dict[str, Any]:
    """Write the submission of ``dataset``'s questions (merged into ``path``); ``complete`` (the whole
    split was answered) makes a question without an answer an error instead of leaving it out."""
    asked = {(item[0].scene_index, item[0].question_id) for item in dataset.items}
    questions = [q for q in dataset.questions if (q.scene_index, q.question_id) in asked]
    entries = predictions.submission(questions, strict=complete)
    written = sum(len(e["questions"]) for e in entries)
    merged, kept = merge_submission(Path(path), entries)
    write_submission(path, merged)
    return {"path": str(path), "task": dataset.task, "questions": written, "left_out": len(questions) - written,
            "kept_from_file": kept}
