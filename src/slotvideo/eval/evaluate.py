"""Evaluation: average a model's per-sample ``evaluate_batch`` metrics over a split.

``model.evaluate_batch(batch) -> {name: [B] tensor}`` gives one value per sample; the mean skips
NaN values (a metric undefined for a sample, e.g. FG-ARI of a frame without objects) and reports
how many samples were scored. The same averaging serves the training loop's periodic ``val/``
logs (over ``train.eval_batches`` batches, summed over ranks) and ``slotvideo evaluate`` (the whole
split), which writes ``runs/<name>/eval.json``::

    {"run": "runs/x", "checkpoint": "runs/x/checkpoints/last.ckpt", "model": "...", "step": 5000,
     "split": "val", "num_samples": 256, "metrics": {"loss": 0.01, "fg_ari": 0.93}, "counts": {...}}

With ``submission=PATH`` (``slotvideo evaluate RUN data.split=test --submission PATH``) a question-answering
model (one with ``task_logits(batch)``: Aloe, CNN+LSTM) also answers every CLEVRER question of the split, and
the answers are written as the test server's submission JSON (``write_submission``): a list of
``{"scene_index", "questions": [{"question_id", "answer": word} | {"question_id", "choices": [{"choice_id",
"answer": "correct" | "wrong"}]}]}``. The loader yields one task per dataset, so descriptive and
multiple-choice answers come from two passes (``data.params.task=descriptive`` / ``multiple_choice``) into the
same PATH: an existing file's entries for the other questions are kept, entries for the same questions are
replaced, and it must hold scenes of the same split.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.clevrer import Clevrer, ClevrerPredictions, split_of, write_submission
from ..errors import ConfigError, DataError, SlotvideoError


class NanMean:
    """Running NaN-skipping sums and counts of per-sample metrics (reducible across ranks)."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, Tensor] = {}
        self.samples = 0

    def add(self, values: dict[str, Tensor], batch_size: int) -> None:
        self.samples += batch_size
        for name, v in values.items():
            v = v.detach().float()
            if v.dim() == 0:
                v = v.expand(batch_size)
            v = v.reshape(-1)
            ok = ~torch.isnan(v)
            s, c = torch.where(ok, v, torch.zeros_like(v)).sum(), ok.sum()
            if name in self.sums:
                self.sums[name] += s
                self.counts[name] += c
            else:
                self.sums[name], self.counts[name] = s, c

    def reduce(self, all_reduce: Callable[[Tensor], Tensor] | None = None,
               names: Sequence[str] | None = None) -> tuple[dict[str, float], dict[str, int], int]:
        """Means, counts and samples; ``all_reduce`` (a sum over ranks) combines processes.

        With several ranks every rank must pass the same ``names`` (a rank may have seen no batch).
        """
        names = sorted(self.sums) if names is None else list(names)
        device = next(iter(self.sums.values())).device if self.sums else torch.device("cpu")
        stacked = torch.stack([
            torch.stack([self.sums.get(n, torch.zeros((), device=device)).float(),
                         self.counts.get(n, torch.zeros((), device=device)).float()]) for n in names
        ] + [torch.tensor([float(self.samples), 0.0], device=device)])
        if all_reduce is not None:
            stacked = all_reduce(stacked)
        means, counts = {}, {}
        for n, (s, c) in zip(names, stacked[:-1].tolist()):
            means[n] = s / c if c > 0 else math.nan
            counts[n] = int(c)
        return means, counts, int(stacked[-1, 0].item())


def average_metrics(evaluate: Callable[[Any], dict[str, Tensor]], batches: Iterable[Any]) -> NanMean:
    """Feed every batch through ``evaluate`` (``model.evaluate_batch``) into a :class:`NanMean`."""
    acc = NanMean()
    with torch.no_grad():
        for batch in batches:
            acc.add(evaluate(batch), batch.size)
    return acc


def check_submission_source(model: Any, dataset: Any, data_name: str) -> None:
    """A submission needs a model with ``task_logits`` and a CLEVRER(-style) question dataset."""
    if not callable(getattr(model, "task_logits", None)):
        raise ConfigError(f"--submission: this run's model ({type(model).__name__}) answers no questions "
                          "(it has no task_logits); use a question-answering run (model.name: aloe, cnn_lstm)")
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


def find_run(run: str | os.PathLike) -> Path:
    """A run directory given as a path, or as a name under ``runs/``."""
    path = Path(run)
    if path.is_dir():
        return path
    if (Path("runs") / path).is_dir():
        return Path("runs") / path
    raise SlotvideoError(f"run directory {str(run)!r} not found (give a path or a name under runs/)")


def evaluate_run(run: str | os.PathLike, overrides: Sequence[str] = (), device: str | None = None,
                 write: bool = True, submission: str | os.PathLike | None = None) -> dict[str, Any]:
    """Evaluate a run's checkpoint on the whole ``data.val`` split (after ``overrides``).

    ``submission``: also write the CLEVRER test-server answers there (see the module doc).

    ``run`` is a run directory (or a run name under ``runs/``) or a ``.ckpt`` file. Overrides
    are applied to the run's stored config, e.g. ``data.val.split=test data.val.num=512``;
    ``data.split=NAME`` is accepted as a short form of ``data.val.split=NAME``.
    """
    from ..train.checkpoint import atomic_write_text, read_checkpoint, resolve_checkpoint
    from ..train.config import build_model, config_from_yaml
    from ..train.optim import ema_weights
    from ..train.run import make_loader, open_split

    path = Path(run)
    if not path.is_file():
        path = find_run(run)
    ckpt_path = resolve_checkpoint(path)
    state = read_checkpoint(ckpt_path)
    overrides = [("data.val.split=" + o.split("=", 1)[1]) if o.split("=", 1)[0] == "data.split" else o
                 for o in overrides]
    cfg = config_from_yaml(state["config_yaml"], overrides, source=f"config stored in {ckpt_path}")
    model = build_model(cfg)
    model.load_state_dict(ema_weights(state["model"], state.get("ema")))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()

    dataset = open_split(cfg, "val")
    predictions = None
    if submission is not None:
        check_submission_source(model, dataset, cfg.data.name)
        predictions = ClevrerPredictions()
    loader = make_loader(dataset, cfg, rank=0, world_size=1, train=False, max_batches=None, what="data.val")
    start = time.perf_counter()
    evaluate = model.evaluate_batch if predictions is None else answering(model, predictions)
    acc = average_metrics(evaluate, (b.to(dev) for b in loader))
    means, counts, samples = acc.reduce()
    result = {
        "run": str(path if path.is_dir() else ckpt_path.parent.parent),
        "checkpoint": str(ckpt_path),
        "model": state["model_name"],
        "step": int(state["step"]),
        "split": cfg.data.val.split,
        "num_samples": samples,
        "metrics": {k: (None if math.isnan(v) else v) for k, v in means.items()},  # JSON has no NaN
        "counts": counts,
        "seconds": round(time.perf_counter() - start, 3),
    }
    if predictions is not None:
        result["submission"] = write_answers(submission, predictions, dataset, complete=cfg.data.val.num is None)
    if write:
        run_dir = path if path.is_dir() else ckpt_path.parent.parent
        atomic_write_text(json.dumps(result, indent=2) + "\n", run_dir / "eval.json")
    return result
