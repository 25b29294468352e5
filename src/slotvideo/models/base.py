"""The model contract shared by every system.

``forward(batch) -> Output``; models that segment implement ``segment(video) -> masks``, models
that predict implement ``rollout(video, steps)``, question-answering models implement ``answer``.
A model declares its optimizers through :meth:`VideoModel.param_groups` so the training loop has no
special cases (frozen front-ends, separately trained evaluation decoders, several optimizers).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..data.batch import Batch
from ..errors import ConfigError, check_fields

#: methods whose first argument (a video) may also be a file, a folder of frames or a uint8 array
VIDEO_METHODS = ("segment", "rollout", "answer")


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


def input_resolution(model: Any) -> tuple[int, int] | None:
    """The ``(H, W)`` a model works at: ``model.resolution`` or ``model.cfg.resolution`` (int or pair);
    ``None`` when it takes any size."""
    res = getattr(model, "resolution", None)
    if res is None:
        res = getattr(getattr(model, "cfg", None), "resolution", None)
    if res is None:
        return None
    if isinstance(res, int):
        return res, res
    pair = tuple(int(r) for r in res)
    if len(pair) != 2:
        raise ConfigError(f"model resolution must be an int or (height, width), got {res!r}")
    return pair  # type: ignore[return-value]


def as_video(video: Any, size: tuple[int, int] | None = None) -> Tensor:
    """``[1, T, 3, H, W]`` float video in [0, 1] from a path (mp4/avi/gif, a folder of frames, ``.npy``)
    or a uint8 array ``[T, H, W, 3]``, resized to ``size`` when given."""
    from ..data.video_io import read_video, resize_frames, to_tensor

    if isinstance(video, (str, os.PathLike)):
        frames = read_video(video, size=size)
    else:
        frames = np.asarray(video)
        if size is not None and tuple(frames.shape[1:3]) != tuple(size):
            frames = resize_frames(frames, size)
    return to_tensor(frames).unsqueeze(0)


def _accepts_files(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: "VideoModel", video: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(video, Tensor):
            device = next((p.device for p in self.parameters()), torch.device("cpu"))
            video = as_video(video, input_resolution(self)).to(device)
        return method(self, video, *args, **kwargs)

    wrapper._accepts_files = True  # type: ignore[attr-defined]
    return wrapper


class VideoModel(nn.Module):
    """Base class of all slotvideo models.

    ``segment``, ``rollout`` and ``answer`` take a video tensor ``[B, T, 3, H, W]`` in [0, 1], or a video
    file, a folder of frames, a ``.npy`` or a uint8 array ``[T, H, W, 3]`` (read and resized to the
    model's resolution, with a batch of one).
    """

    #: registry name, set by ``@register("model", name)`` users for checkpoint checks
    name: str = "model"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in VIDEO_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_accepts_files", False):
                setattr(cls, name, _accepts_files(method))

    def configure(self, cfg: Any) -> Any:
        """``cfg`` (``None``: the model's default ``Config()``) checked against its fields' metadata and by the
        model's ``validate`` (when it has one), and kept as ``self.cfg``; every model's ``__init__`` starts with ``cfg = self.configure(cfg)``."""
        cfg = self.Config() if cfg is None else cfg  # type: ignore[attr-defined]
        check_fields(cfg)
        validate = getattr(self, "validate", None)
        if validate is not None:
            validate(cfg)
        self.cfg = cfg
        return cfg

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
