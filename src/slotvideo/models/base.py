"""The model contract shared by every system.

``forward(batch) -> Output``; models that segment implement ``segment(video) -> masks``, models
that predict implement ``rollout(video, steps)``, question-answering models implement ``answer``.
A model declares its optimizers through :meth:`VideoModel.param_groups` so the training loop has no
special cases (frozen front-ends, separately trained evaluation decoders, several optimizers).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..data.batch import Batch


@dataclass
class Output:
    """What a model's forward returns. ``loss`` is what the loop minimises; ``terms`` are logged."""

    loss: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    slots: Tensor | None = None     # [B, T, K, D]
    masks: Tensor | None = None     # [B, T, K, H, W], soft, sum to 1 over K
    recon: Tensor | None = None     # [B, T, 3, H, W]
    logits: Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParamGroup:
    """A group of parameters and the optimizer that trains it.

    ``optimizer`` names a group of the config's ``optim`` section (``"main"`` by default); groups
    naming the same optimizer share it. ``lr_scale`` multiplies that optimizer's learning rate.
    """

    params: list[nn.Parameter]
    optimizer: str = "main"
    lr_scale: float = 1.0
    weight_decay: float | None = None
    name: str = "default"


class VideoModel(nn.Module):
    """Base class of all slotvideo models."""

    #: registry name, set by ``@register("model", name)`` users for checkpoint checks
    name: str = "model"

    def forward(self, batch: Batch) -> Output:  # pragma: no cover - every model overrides it
        """Compute the training loss and outputs on a batch."""
        raise TypeError(f"{type(self).__name__} must define forward(batch) -> Output")

    def param_groups(self) -> list[ParamGroup]:
        """Parameter groups and their optimizers; by default everything trainable in one group."""
        return [ParamGroup([p for p in self.parameters() if p.requires_grad])]

    def on_step(self, step: int) -> None:
        """Called by the loop before each training step (curricula, temperature schedules)."""

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        """Per-sample metrics on a batch (``{name: [B] tensor}``); the runner averages them."""
        out = self(batch)
        return {k: v.detach().expand(batch.size) for k, v in {"loss": out.loss, **out.terms}.items()}

    def media(self, batch: Batch) -> dict[str, Tensor]:
        """Tensors worth a picture (e.g. ``video``, ``recon``, ``masks``) for periodic media dumps."""
        out = self(batch)
        media = {"video": batch.video}
        if out.recon is not None:
            media["recon"] = out.recon
        if out.masks is not None:
            media["masks"] = out.masks
        return media
