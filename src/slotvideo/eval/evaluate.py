"""Evaluation: average a model's per-sample ``evaluate_batch`` metrics over a split.

``model.evaluate_batch(batch) -> {name: [B] tensor}`` gives one value per sample; the mean skips
NaN values (a metric undefined for a sample, e.g. FG-ARI of a frame without objects) and reports
how many samples were scored. A metric of the whole split rather than of samples, the multi-label mAP
of CATER's action tasks, comes as an entry ``"ranking:<name>"`` of ``[B, 2, C]`` scores and labels that
is gathered and scored once at the end (:mod:`slotvideo.metrics.average_precision`; one process only:
the training loop's multi-GPU ``val/`` logs leave it out). The same averaging serves the training loop's periodic ``val/``
logs (over ``train.eval_batches`` batches, summed over ranks) and ``slotvideo evaluate`` (the whole
split), which writes ``runs/<name>/eval.json``::

    {"run": "runs/x", "checkpoint": "runs/x/checkpoints/last.ckpt", "model": "...", "step": 5000,
     "split": "val", "num_samples": 256, "metrics": {"loss": 0.01, "fg_ari": 0.93}, "counts": {...}}

With ``submission=PATH`` (``slotvideo evaluate RUN data.split=test --submission PATH``) a question-answering
model (one with ``task_logits(batch)``: Aloe, CNN+LSTM, Slot Transformer) also answers every CLEVRER question of the split, and
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

from ..errors import SlotvideoError
from ..metrics.average_precision import RANKING, mean_average_precision


class NanMean:
    """Running NaN-skipping sums and counts of per-sample metrics (reducible across ranks)."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, Tensor] = {}
        self.rankings: dict[str, list[Tensor]] = {}
        self.samples = 0

    def add(self, values: dict[str, Tensor], batch_size: int) -> None:
        self.samples += batch_size
        for name, v in values.items():
            if name.startswith(RANKING):
                self.rankings.setdefault(name[len(RANKING):], []).append(v.detach().float().cpu())
                continue
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

        With several ranks every rank must pass the same ``names`` (a rank may have seen no batch); split-level
        rankings (mAP) are scored only when there is one process (no ``all_reduce``).
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
        if all_reduce is None:
            for n, parts in self.rankings.items():
                pairs = torch.cat(parts)
                means[n] = mean_average_precision(pairs[:, 0], pairs[:, 1])
                counts[n] = len(pairs)
        return means, counts, int(stacked[-1, 0].item())


def average_metrics(evaluate: Callable[[Any], dict[str, Tensor]], batches: Iterable[Any]) -> NanMean:
    """Feed every batch through ``evaluate`` (``model.evaluate_batch``) into a :class:`NanMean`."""
    acc = NanMean()
    with torch.no_grad():
        for batch in batches:
            acc.add(evaluate(batch), batch.size)
    return acc


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
        from .submission import ClevrerPredictions, answering, check_submission_source, write_answers

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
