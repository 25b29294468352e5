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

**Mixed CLEVRER batches** (the loader's ``task: mixed``, marked by ``choice_mask`` ``[B, C]``): the paper
splits its supervised sub-batch into a descriptive and a multiple-choice half (appendix A.3, "since the
output format is different"). :func:`mixed_parts` splits the batch by ``choice_mask.any(-1)`` into the two
single-task layouts (descriptive: ``answer`` ``[Bd]``; multiple choice: ``answer`` = ``choice_answers``
``[Bm, C]`` plus ``choice_mask``), each goes through its task's logits and loss, and the loss is the sum of
the two parts' mean losses (a part absent from the batch adds nothing). Padded choices are never scored:
models run only the real (question, choice) pairs (:func:`choice_pairs`), their logits are NaN at padding
and the loss / accuracies select the real choices. ``task_logits`` of a mixed batch is a
:class:`MixedLogits`.

The mixin turns those logits into the loss (:meth:`ReasoningTask.task_loss`) and the per-sample evaluation
metrics (:meth:`ReasoningTask.task_metrics`, used by ``evaluate_batch``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, DataError, ShapeError, check_shape
from slotvideo.metrics.cater import class_to_cell, grid_l1_distance, top_k_accuracy
from slotvideo.metrics.clevrer import QUESTION_TYPES, padded_option_accuracy

TASKS = ("clevrer", "cater")
#: the question kinds of a CLEVRER batch, in the order of :class:`MixedLogits`
KINDS = ("descriptive", "multiple_choice")
#: the key that marks a mixed CLEVRER batch (both kinds, choices padded to a fixed count)
MIXED_KEY = "choice_mask"


class MixedLogits(NamedTuple):
    """``task_logits`` of a mixed batch: one tensor per kind, ``None`` when the batch has no sample of it."""

    is_choice: Tensor                  # bool [B]: which samples are multiple-choice questions
    descriptive: Tensor | None         # [Bd, num_answers], the descriptive samples in batch order
    multiple_choice: Tensor | None     # [Bm, C], the multiple-choice samples in batch order; NaN at padding


def select_rows(batch: Batch, index: Tensor) -> Batch:
    """The samples ``index`` of every batch-sized tensor."""
    n = batch.size
    return Batch({k: (v[index] if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == n else v)
                  for k, v in batch.items()})


def mixed_parts(batch: Batch) -> dict[str, tuple[Tensor, Batch]]:
    """``{kind: (rows, part)}`` of a mixed batch for the kinds it holds, each part in its single-task layout:
    descriptive without the choice keys; multiple choice with ``answer`` = ``choice_answers`` ``[Bm, C]``."""
    mask, choices = batch[MIXED_KEY], batch["choices"]
    if mask.dtype != torch.bool:
        raise ShapeError(f"choice_mask must be bool, got {mask.dtype}")
    check_shape(choices, "B C L", "choices")
    check_shape(mask, f"{choices.shape[0]} {choices.shape[1]}", "choice_mask (one flag per choice)")
    is_choice = mask.any(-1)
    out = {}
    for kind, rows in zip(KINDS, ((~is_choice).nonzero().squeeze(1), is_choice.nonzero().squeeze(1))):
        if rows.numel() == 0:
            continue
        data = dict(select_rows(batch, rows))
        if kind == "descriptive":
            for key in ("choices", MIXED_KEY, "choice_answers"):
                data.pop(key, None)
        else:
            data.pop("answer", None)
            if "choice_answers" in data:
                data["answer"] = data.pop("choice_answers")
        out[kind] = (rows, Batch(data))
    return out


def choice_pairs(batch: Batch) -> Tensor:
    """Flat indices into ``B * C`` of the (sample, choice) pairs to score: every pair, or only the real
    choices when the batch has a ``choice_mask``; ``index // C`` is the pair's sample."""
    b, c = batch["choices"].shape[:2]
    if MIXED_KEY not in batch:
        return torch.arange(b * c, device=batch["choices"].device)
    return batch[MIXED_KEY].reshape(-1).nonzero().squeeze(1)


def scatter_pairs(values: Tensor, pairs: Tensor, b: int, c: int) -> Tensor:
    """Per-pair logits ``[N]`` (of :func:`choice_pairs`) as ``[B, C]``, NaN where no pair was scored."""
    if pairs.numel() == b * c:
        return values.reshape(b, c)
    return values.new_full((b * c,), math.nan).index_put((pairs,), values).reshape(b, c)


def output_logits(logits: Tensor | MixedLogits | None) -> dict[str, Any]:
    """``Output`` fields for task logits: ``logits``, or ``extra["mixed_logits"]`` for a mixed batch (``Output.
    logits`` stays a tensor), or none."""
    if logits is None:
        return {}
    return {"extra": {"mixed_logits": logits}} if isinstance(logits, MixedLogits) else {"logits": logits}


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


@dataclass
class TaskConfig:
    """The config keys of the reasoning tasks, shared by every model that mixes in :class:`ReasoningTask`:
    its ``Config`` subclasses this one."""

    task: str = field(default="clevrer", metadata={"choices": TASKS})
    num_answers: int = field(default=22, metadata={"min": 2})     # descriptive answers (id 0 = padding)
    num_classes: int = field(default=36, metadata={"min": 2})     # CATER grid cells
    vocab_size: int = field(default=128, metadata={"min": 2})     # > the largest question/choice word id
    l1_weight: float = field(default=0.0, metadata={"min": 0.0})  # CATER grid-distance loss

    def validate_task(self) -> None:
        """The cross-key checks of these fields (each field's own range is checked from its metadata)."""
        if self.l1_weight > 0 and self.task != "cater":
            raise ConfigError("model.l1_weight is the CATER grid-distance loss; set model.task: cater or remove it")


class ReasoningTask:
    """Loss and metrics of the CLEVRER / CATER tasks for a model with ``cfg.task`` and ``task_logits``."""

    cfg: Any

    def task_logits(self, batch: Batch) -> Tensor | MixedLogits:  # pragma: no cover - every model defines it
        raise TypeError(f"{type(self).__name__} must define task_logits(batch)")

    def logits_by_kind(self, batch: Batch, logits_of: Callable[[str, Batch, Tensor | None], Tensor]
                       ) -> Tensor | MixedLogits:
        """``logits_of(kind, part, rows)`` on ``batch`` (rows ``None``: all of it), or on each part of a
        mixed batch (``rows`` index the part's samples in ``batch``)."""
        kind = self._task_of(batch)
        if kind != "mixed":
            return logits_of(kind, batch, None)
        parts = mixed_parts(batch)
        return MixedLogits(batch[MIXED_KEY].any(-1),
                           *(logits_of(k, parts[k][1], parts[k][0]) if k in parts else None for k in KINDS))

    @property
    def task(self) -> str:
        return self.cfg.task

    def _task_of(self, batch: Batch) -> str:
        """``cater``, ``descriptive``, ``multiple_choice`` or ``mixed``: what ``batch`` asks for."""
        if self.task == "cater":
            return "cater"
        if "question" not in batch:
            raise DataError("model.task: clevrer needs batches with 'question' (use data.params.task: descriptive, "
                            "multiple_choice or mixed)")
        if MIXED_KEY in batch:
            return "mixed"
        return "multiple_choice" if "choices" in batch else "descriptive"

    def _has_labels(self, batch: Batch) -> bool:
        return "label" in batch if self.task == "cater" else "answer" in batch

    def task_loss(self, batch: Batch, logits: Tensor | MixedLogits) -> tuple[Tensor, dict[str, Tensor]]:
        """The supervised loss of ``logits`` (from :meth:`task_logits`) and its named terms; for a mixed batch
        the sum of the two kinds' mean losses."""
        task = self._task_of(batch)
        if task != "mixed":
            return self._kind_loss(task, batch, logits)
        mixed = self._check_mixed(logits)
        loss, terms = mixed.is_choice.new_zeros((), dtype=torch.float), {}
        for kind, (_, part) in mixed_parts(batch).items():
            part_loss, part_terms = self._kind_loss(kind, part, getattr(mixed, kind))
            loss = loss + part_loss
            terms.update(part_terms)
        return loss, terms

    @staticmethod
    def _check_mixed(logits: Any) -> MixedLogits:
        if not isinstance(logits, MixedLogits):
            raise DataError(f"a mixed batch (with 'choice_mask') needs MixedLogits from task_logits, got "
                            f"{type(logits).__name__}")
        return logits

    def _kind_loss(self, task: str, batch: Batch, logits: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
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
        if MIXED_KEY in batch:  # padded choices: only the real ones are scored
            logits, target = logits[batch[MIXED_KEY]], target[batch[MIXED_KEY]]
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return loss, {"bce_choice": loss.detach()}

    @torch.no_grad()
    def task_metrics(self, batch: Batch, logits: Tensor | MixedLogits) -> dict[str, Tensor]:
        """Per sample: ``loss``; descriptive ``acc_descriptive``; multiple choice ``option_acc`` and
        ``option_acc_<type>`` (NaN for other types); CATER ``top1``, ``top5``, ``l1``. Unlabelled batches
        (the test split) give only ``answered``.

        Padded multiple choice (mixed batches) scores the real choices only: ``option_acc`` is the share of
        a question's options answered right (so its mean weights questions, not options, equally) and
        ``question_acc`` is 1 when all of them are. A mixed batch gives every metric of both kinds, NaN on
        the samples of the other kind, and ``loss`` is the batch's (summed) loss on every sample."""
        b = logits.is_choice.shape[0] if isinstance(logits, MixedLogits) else logits.shape[0]
        if not self._has_labels(batch):
            return {"answered": torch.ones(b)}
        loss, _ = self.task_loss(batch, logits)
        out = {"loss": loss.expand(b)}
        task = self._task_of(batch)
        if task != "mixed":
            out.update(self._kind_metrics(task, batch, logits))
            return {k: v.float().cpu() for k, v in out.items()}
        mixed = self._check_mixed(logits)
        parts = mixed_parts(batch)
        for kind in KINDS:
            names = self._metric_names(kind, batch)
            values = (self._kind_metrics(kind, parts[kind][1], getattr(mixed, kind)) if kind in parts else {})
            for name in names:
                full = torch.full((b,), math.nan, device=loss.device)
                if kind in parts:
                    full[parts[kind][0]] = values[name].to(full.dtype)
                out[name] = full
        return {k: v.float().cpu() for k, v in out.items()}

    @staticmethod
    def _metric_names(kind: str, batch: Batch) -> tuple[str, ...]:
        """The names :meth:`_kind_metrics` gives for ``kind`` on the parts of the mixed ``batch``."""
        if kind == "descriptive":
            return ("acc_descriptive",)
        per_type = tuple(f"option_acc_{name}" for name in QUESTION_TYPES[1:]) if "question_type" in batch else ()
        return ("option_acc", "question_acc", *per_type)

    def _kind_metrics(self, task: str, batch: Batch, logits: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        if task == "cater":
            label = batch["label"]
            out.update(top1=top_k_accuracy(logits, label, 1), top5=top_k_accuracy(logits, label, 5),
                       l1=grid_l1_distance(logits, label))
        elif task == "descriptive":
            out["acc_descriptive"] = (logits.argmax(-1) == batch["answer"]).float()
        else:
            answers = batch["answer"].reshape(logits.shape)
            real = batch[MIXED_KEY] if MIXED_KEY in batch else torch.ones_like(answers, dtype=torch.bool)
            right, all_right = padded_option_accuracy(logits.float(), answers, real)
            if MIXED_KEY in batch:
                out["question_acc"] = all_right
            out["option_acc"] = right
            if "question_type" in batch:
                qt = batch["question_type"].reshape(-1)
                for i, name in enumerate(QUESTION_TYPES[1:], start=1):
                    out[f"option_acc_{name}"] = torch.where(qt == i, right, torch.full_like(right, math.nan))
        return out

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        """:meth:`task_metrics` of :meth:`task_logits` on ``batch``."""
        return self.task_metrics(batch, self.task_logits(batch))

    @torch.no_grad()
    def media(self, batch: Batch) -> dict[str, Tensor]:
        return {"video": batch["video"]}

