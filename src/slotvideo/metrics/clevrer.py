"""CLEVRER question-answering accuracy, as the official evaluation computes it (reference section 1.7).

* Descriptive questions: plain accuracy of the predicted answer (exact match / argmax).
* Multiple-choice questions (explanatory, predictive, counterfactual): every option is a yes/no
  ("correct"/"wrong") prediction. **Per-option** accuracy counts each option once; **per-question**
  accuracy counts a question as right only if all of its options are right.

Models predict options one by one, so a batch holds flat options; :class:`ClevrerAccuracy` groups them
back by question id, even when one question's options arrive in different batches.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from slotvideo.errors import ShapeError, check_shape

QUESTION_TYPES = ("descriptive", "explanatory", "predictive", "counterfactual")
MULTIPLE_CHOICE_TYPES = QUESTION_TYPES[1:]


def question_type_ids(types: Sequence[str] | Tensor) -> Tensor:
    """Index into :data:`QUESTION_TYPES` (int64 ``[N]``) of type names or ids.

    Names match by prefix (``"explanatory_xxx"`` is explanatory), as the official ``startswith`` test and
    DCL's ``split('_')[0]`` do.
    """
    if isinstance(types, Tensor):
        check_shape(types, "N", "question_types")
        if types.dtype.is_floating_point or types.dtype == torch.bool:
            raise ShapeError(f"question_types must be int64 ids into {QUESTION_TYPES}, got dtype {types.dtype}")
        if types.numel() and (int(types.min()) < 0 or int(types.max()) >= len(QUESTION_TYPES)):
            raise ShapeError(f"question_types ids must be in [0, {len(QUESTION_TYPES) - 1}] {QUESTION_TYPES}")
        return types.long().cpu()
    ids = []
    for name in types:
        match = [i for i, t in enumerate(QUESTION_TYPES) if str(name).startswith(t)]
        if not match:
            raise ShapeError(f"question_types must be one of {QUESTION_TYPES}, got {name!r}")
        ids.append(match[0])
    return torch.tensor(ids, dtype=torch.long)


def padded_option_accuracy(logits: Tensor, answers: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """Per question of a padded multiple-choice batch (``[B, C]`` option logits, 0/1 answers and the mask of
    real options): the share of its real options answered right (``logit > 0`` predicts "correct"), and 1.0
    when all of them are (the official per-question score), as float ``[B]`` each."""
    sizes = check_shape(logits, "B C", "logits")
    check_shape(answers, "B C", "answers", **sizes)
    check_shape(real, "B C", "real", **sizes)
    real = real.to(logits.dtype)
    share = (((logits > 0) == answers.bool()).to(logits.dtype) * real).sum(-1) / real.sum(-1)
    return share, (share == 1).to(logits.dtype)


def _flags(x: Tensor, name: str, n: int) -> Tensor:
    check_shape(x, "N", name, N=n)
    if x.dtype.is_floating_point:
        raise ShapeError(f"{name} must be bool or 0/1 integers [N] (threshold logits yourself, e.g. "
                         f"logits > 0), got dtype {x.dtype}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > 1):
        raise ShapeError(f"{name} must hold 0/1 (wrong/correct) values")
    return x.bool().cpu()


class ClevrerAccuracy:
    """Accumulates CLEVRER predictions over batches and returns the official accuracies.

    Multiple-choice options are keyed by question id: int64 ``[N]`` globally unique ids, or ``[N, 2]``
    ``(scene_index, question_id)`` pairs (official ``question_id`` restarts in every scene).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._keys: list[Tensor] = []
        self._types: list[Tensor] = []
        self._option_correct: list[Tensor] = []
        self._descriptive_correct: list[Tensor] = []

    def update_options(self, question_ids: Tensor, question_types: Sequence[str] | Tensor,
                       predictions: Tensor, labels: Tensor) -> None:
        """Add flat options: ids ``[N]`` or ``[N, 2]``, types ``[N]``, predicted and true flags ``[N]``."""
        if not isinstance(question_ids, Tensor) or question_ids.dim() not in (1, 2) or (
                question_ids.dim() == 2 and question_ids.shape[1] != 2):
            got = list(question_ids.shape) if isinstance(question_ids, Tensor) else type(question_ids).__name__
            raise ShapeError(f"question_ids must have shape [N] or [N, 2] (scene_index, question_id), got {got}")
        if question_ids.dtype.is_floating_point or question_ids.dtype == torch.bool:
            raise ShapeError(f"question_ids must be integers, got dtype {question_ids.dtype}")
        n = question_ids.shape[0]
        keys = question_ids.long().cpu()
        keys = keys if keys.dim() == 2 else torch.stack([torch.zeros_like(keys), keys], dim=1)
        types = question_type_ids(question_types)
        check_shape(types, "N", "question_types", N=n)
        if bool((types == 0).any()):
            raise ShapeError("question_types of options must be multiple-choice types "
                             f"{MULTIPLE_CHOICE_TYPES}; descriptive answers go to update_descriptive")
        correct = _flags(predictions, "predictions", n) == _flags(labels, "labels", n)
        self._keys.append(keys)
        self._types.append(types)
        self._option_correct.append(correct)

    def update_descriptive(self, predictions: Tensor, answers: Tensor) -> None:
        """Add descriptive answers: predicted ids ``[N]`` or logits ``[N, A]`` (argmax), true ids ``[N]``."""
        if isinstance(predictions, Tensor) and predictions.dtype.is_floating_point:
            check_shape(predictions, "N A", "predictions (descriptive logits)")
            predictions = predictions.argmax(dim=-1)
        check_shape(predictions, "N", "predictions (descriptive answer ids)")
        check_shape(answers, "N", "answers", N=predictions.shape[0])
        if answers.dtype.is_floating_point or predictions.dtype == torch.bool:
            raise ShapeError(f"answers and predictions must be integer answer ids, got {answers.dtype}, "
                             f"{predictions.dtype}")
        self._descriptive_correct.append((predictions.long() == answers.long()).cpu())

    def update(self, *, question_ids: Tensor | None = None, question_types: Sequence[str] | Tensor | None = None,
               option_predictions: Tensor | None = None, option_labels: Tensor | None = None,
               descriptive_predictions: Tensor | None = None, descriptive_answers: Tensor | None = None) -> None:
        """Add whatever a batch holds: the four option arguments together, the two descriptive ones together."""
        options = (question_ids, question_types, option_predictions, option_labels)
        if any(x is not None for x in options):
            if any(x is None for x in options):
                raise ShapeError("question_ids, question_types, option_predictions and option_labels "
                                 "must be given together")
            self.update_options(question_ids, question_types, option_predictions, option_labels)
        if (descriptive_predictions is None) != (descriptive_answers is None):
            raise ShapeError("descriptive_predictions and descriptive_answers must be given together")
        if descriptive_predictions is not None:
            self.update_descriptive(descriptive_predictions, descriptive_answers)

    def compute(self) -> dict[str, float]:
        """Accuracies in [0, 1]: ``descriptive``, ``<type>_per_option``, ``<type>_per_question`` for each
        multiple-choice type, and ``multiple_choice_per_option`` / ``multiple_choice_per_question``.

        Groups without any data are left out of the dict rather than reported as 0 or NaN.
        """
        out: dict[str, float] = {}
        if self._descriptive_correct:
            correct = torch.cat(self._descriptive_correct)
            if correct.numel():
                out["descriptive"] = float(correct.double().mean())
        if not self._keys:
            return out
        keys, types = torch.cat(self._keys), torch.cat(self._types)
        option_correct = torch.cat(self._option_correct)
        if not keys.numel():
            return out
        unique, question = torch.unique(keys, dim=0, return_inverse=True)
        n_questions = unique.shape[0]
        question_correct = torch.ones(n_questions, dtype=torch.long).scatter_reduce(
            0, question, option_correct.long(), reduce="amin")
        question_type = torch.full((n_questions,), len(QUESTION_TYPES)).scatter_reduce(
            0, question, types, reduce="amin")
        highest_type = torch.full((n_questions,), -1).scatter_reduce(0, question, types, reduce="amax")
        if bool((question_type != highest_type).any()):
            bad = unique[(question_type != highest_type).nonzero()[0, 0]].tolist()
            raise ShapeError(f"question {bad} (scene_index, question_id) has options of different question_types")
        for i, name in enumerate(QUESTION_TYPES[1:], start=1):
            if bool((types == i).any()):
                out[f"{name}_per_option"] = float(option_correct[types == i].double().mean())
                out[f"{name}_per_question"] = float(question_correct[question_type == i].double().mean())
        out["multiple_choice_per_option"] = float(option_correct.double().mean())
        out["multiple_choice_per_question"] = float(question_correct.double().mean())
        return out
