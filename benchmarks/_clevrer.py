"""CLEVRER-style question answering shared by the reasoning benchmarks (Aloe, Slot Transformer): train a
config as a resumable run, load it, and score it per question type on a split as the official evaluation does."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from benchmarks.workbench_run import finished_steps


def train_run(config: str, name: str, work: Path, steps: int, overrides: list[str]) -> Path:
    """Train ``config`` as ``<work>/runs/<name>`` to ``steps`` (resuming a stopped run); returns the run dir."""
    from slotvideo.train.config import load_config
    from slotvideo.train.run import train

    run_dir = work / "runs" / name
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.exists() and finished_steps(run_dir)[0] >= steps:
        return run_dir
    cfg = load_config(config, [f"run.dir={work / 'runs'}", f"run.name={name}", f"data.cache_dir={work / 'cache'}",
                               "train.eval_every=0", "train.media_every=0", f"train.steps={steps}",
                               f"run.resume={'true' if last.exists() else 'false'}", *overrides])
    train(cfg, progress=False)
    return run_dir


def load_run(run_dir: Path):
    """The stored config and the trained model of a run."""
    from slotvideo.train.checkpoint import load_model, read_checkpoint
    from slotvideo.train.config import config_from_yaml

    return config_from_yaml(read_checkpoint(run_dir)["config_yaml"]), load_model(run_dir)


def single_task(cfg, split: str, task: str, num: int | None = None):
    """The run's data read with the loader of one task (a mixed run answers both kinds); ``num`` samples of it."""
    from slotvideo.data import open_dataset

    # the loader ignores max_choices outside task: mixed, so overriding task alone is enough
    return open_dataset(cfg.data.name, split, params={**cfg.data.params, "task": task}, cache_dir=cfg.data.cache_dir,
                        num=num)


def score(run_dir: Path, split: str = "val", seed: int = 0) -> dict:
    """Per-question / per-option accuracy per type on ``split``, grouped by question as the official evaluation;
    any model with ``task_logits`` (Aloe, CNN+LSTM, Slot Transformer). ``seed`` fixes a stochastic model's samples."""
    from slotvideo.data.batch import collate
    from slotvideo.data.clevrer import ClevrerPredictions

    cfg, model = load_run(run_dir)
    model.eval()
    torch.manual_seed(seed)
    preds = ClevrerPredictions()
    with torch.no_grad():
        for task in ("descriptive", "multiple_choice"):
            ds = single_task(cfg, split, task)
            for start in range(0, len(ds), 32):
                batch = collate([ds[i] for i in range(start, min(start + 32, len(ds)))])
                preds.add(batch, model.task_logits(batch))
    return {**preds.accuracy.compute(), **hard_counterfactual_accuracy(ds, preds)}


def hard_counterfactual_accuracy(ds, preds) -> dict[str, float]:
    """Appendix B: per-question accuracy on counterfactual questions whose removed object collides."""
    from slotvideo.data.reasoning.executor import Executor

    right = total = 0
    executors: dict[int, Executor] = {}
    for q in ds.questions:
        if q.type_name != "counterfactual" or q.scene_index not in ds.files.annotations:
            continue
        if q.scene_index not in executors:
            executors[q.scene_index] = Executor(json.loads(ds.files.annotations[q.scene_index].read_text()))
        if not executors[q.scene_index].hard_counterfactual(list(q.program)):
            continue
        flags = [preds.options.get((q.scene_index, q.question_id, c.choice_id)) for c in q.choices]
        if any(f is None for f in flags):
            continue
        total += 1
        right += all(bool(f) == bool(c.correct) for f, c in zip(flags, q.choices))
    return {"hard_counterfactual_per_question": right / total if total else float("nan"),
            "hard_counterfactual_questions": total}
