"""The video reasoning tasks of Aloe's experiments, shared by Aloe and its baselines (CNN+LSTM).

A model that mixes in :class:`ReasoningTask` has a ``cfg`` with ``task`` (``clevrer`` or ``cater``) and
``l1_weight``, and a ``task_logits(batch)`` that returns

* CLEVRER descriptive (batches with ``question``): ``[B, num_answers]``, trained with softmax cross-entropy
  against ``answer`` ``[B]``;
* CLEVRER multiple choice (batches with ``question`` and ``choices`` ``[B, C, L]``): one logit per choice
  ``[B, C]``, trained with per-choice sigmoid cross-entropy against ``answer`` ``[B, C]`` (``logit > 0``
  means "correct", the release's decision rule);
* CATER snitch localisation: ``[B, 36]`` grid cells, softmax cross-entropy against ``label`` ``[B]``, plus
  ``l1_weight`` times the expected L1 grid distance under the predicted distribution (our differentiable
  reading of the paper's "L1 loss").

The mixin turns those logits into the loss (:meth:`ReasoningTask.task_loss`) and the per-sample evaluation
metrics (:meth:`ReasoningTask.task_metrics`, used by ``evaluate_batch``).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from slotvideo.data.batch import Batch
from slotvideo.errors import DataError, ShapeError
from slotvideo.metrics.cater import class_to_cell, grid_l1_distance, top_k_accuracy
from slotvideo.metrics.clevrer import QUESTION_TYPES

TASKS = ("clevrer", "cater")


def expected_grid_distance(logits: Tensor, labels: Tensor) -> Tensor:
    """``sum_c p_c |cell(c) - cell(label)|_1`` per sample: a differentiable L1 grid distance."""
    n = logits.shape[-1]
    side = math.isqrt(n)
    if side * side != n:
        raise ShapeError(f"CATER logits must have grid x grid classes, got {n}")
    rows, cols = class_to_cell(torch.arange(n, device=logits.device), side)
    true_r, true_c = class_to_cell(labels, side)
    dist = (rows[None] - true_r[:, None]).abs() + (cols[None] - true_c[:, None]).abs()
    return (logits.softmax(-1) * dist.to(logits.dtype)).sum(-1)


def check_word_ids(ids: Tensor, vocab_size: int, name: str) -> None:
    """Question / choice token ids must be int64 in ``[0, model.vocab_size)`` (0 = padding)."""
    if ids.dtype != torch.long:
        raise ShapeError(f"{name} token ids must be int64, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ShapeError(f"{name} word ids must be in [0, model.vocab_size={vocab_size}), got "
                         f"[{int(ids.min())}, {int(ids.max())}]; raise model.vocab_size")


class ReasoningTask:
    """Loss and metrics of the CLEVRER / CATER tasks for a model with ``cfg.task`` and ``task_logits``."""

    cfg: Any

    def task_logits(self, batch: Batch) -> Tensor:  # pragma: no cover - every model defines it
        raise TypeError(f"{type(self).__name__} must define task_logits(batch)")

    @property
    def task(self) -> str:
        return self.cfg.task

    def _task_of(self, batch: Batch) -> str:
        """``cater``, ``descriptive`` or ``multiple_choice``: what ``batch`` asks for."""
        if self.task == "cater":
            return "cater"
        if "question" not in batch:
            raise DataError("model.task: clevrer needs batches with 'question' (use data.params.task: descriptive "
                            "or multiple_choice)")
        return "multiple_choice" if "choices" in batch else "descriptive"

    def _has_labels(self, batch: Batch) -> bool:
        return "label" in batch if self.task == "cater" else "answer" in batch

    def task_loss(self, batch: Batch, logits: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The supervised loss of ``logits`` (from :meth:`task_logits`) and its named terms."""
        task = self._task_of(batch)
        if task == "cater":
            label = batch["label"]
            loss = F.cross_entropy(logits, label)
            terms = {"ce": loss.detach()}
            if self.cfg.l1_weight > 0:
                l1 = expected_grid_distance(logits, label).mean()
                loss = loss + self.cfg.l1_weight * l1
                terms["l1_loss"] = l1.detach()
            return loss, terms
        if task == "descriptive":
            loss = F.cross_entropy(logits, batch["answer"])
            return loss, {"ce_descriptive": loss.detach()}
        target = batch["answer"].reshape(logits.shape).float()
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return loss, {"bce_choice": loss.detach()}

    @torch.no_grad()
    def task_metrics(self, batch: Batch, logits: Tensor) -> dict[str, Tensor]:
        """Per sample: ``loss``; descriptive ``acc_descriptive``; multiple choice ``option_acc`` and
        ``option_acc_<type>`` (NaN for other types); CATER ``top1``, ``top5``, ``l1``. Unlabelled batches
        (the test split) give only ``answered``."""
        b = logits.shape[0]
        if not self._has_labels(batch):
            return {"answered": torch.ones(b)}
        task = self._task_of(batch)
        out: dict[str, Tensor] = {}
        loss, _ = self.task_loss(batch, logits)
        out["loss"] = loss.expand(b)
        if task == "cater":
            label = batch["label"]
            out.update(top1=top_k_accuracy(logits, label, 1), top5=top_k_accuracy(logits, label, 5),
                       l1=grid_l1_distance(logits, label))
        elif task == "descriptive":
            out["acc_descriptive"] = (logits.argmax(-1) == batch["answer"]).float()
        else:
            right = ((logits > 0) == batch["answer"].reshape(logits.shape).bool()).float().mean(-1)
            out["option_acc"] = right
            if "question_type" in batch:
                qt = batch["question_type"].reshape(-1)
                for i, name in enumerate(QUESTION_TYPES[1:], start=1):
                    out[f"option_acc_{name}"] = torch.where(qt == i, right, torch.full_like(right, math.nan))
        return {k: v.float().cpu() for k, v in out.items()}

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        """:meth:`task_metrics` of :meth:`task_logits` on ``batch``."""
        return self.task_metrics(batch, self.task_logits(batch))

    @torch.no_grad()
    def media(self, batch: Batch) -> dict[str, Tensor]:
        return {"video": batch["video"]}

