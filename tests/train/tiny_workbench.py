"""A tiny registered dataset and model for the workbench tests (also imported by launch_cli.py).

The model has dropout and draws noise in its forward pass, so exact-resume tests exercise the RNG
restore; it can split its parameters over two optimizers; it can write per-process parameter
checksums (``dump_dir``) so the DDP test can compare ranks. The dataset can record which indices a
process loaded (``params.log_dir``), so the DDP test can check that ranks see disjoint samples.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from slotvideo.errors import ConfigError
from slotvideo.models.base import Output, ParamGroup, VideoModel
from slotvideo.registry import register

T, H, W = 2, 4, 4


class TinyVideos(Dataset):
    def __init__(self, split: str, num: int, seed: int, log_dir: str | None):
        self.split, self.num, self.seed, self.log_dir = split, num, seed, log_dir

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.log_dir and self.split == "train":
            with open(Path(self.log_dir) / f"indices_{os.getpid()}.txt", "a") as f:
                f.write(f"{index}\n")
        g = torch.Generator().manual_seed(self.seed * 100003 + index + (7919 if self.split != "train" else 0))
        return {"video": torch.rand(T, 3, H, W, generator=g), "index": torch.tensor(index)}


@register("dataset", "_tiny")
def tiny_dataset(split: str, *, num: int | None = None, seed: int = 0, params: dict[str, Any] | None = None,
                 cache_dir: str | None = None) -> Dataset:
    params = dict(params or {})
    return TinyVideos(split, num or (32 if split == "train" else 8), seed, params.get("log_dir"))


@register("model", "_tinyvideo")
class TinyVideoModel(VideoModel):
    @dataclass
    class Config:
        hidden: int = field(default=8, metadata={"min": 1})
        dropout: float = 0.2
        noise: float = 0.05
        two_optimizers: bool = False
        dump_dir: str = ""
        signal_at: int = -1                  # send SIGTERM to ourselves before this step (stop/resume tests)
        channels: list[int] = field(default_factory=lambda: [3])

    @classmethod
    def check_config(cls, model_cfg: "TinyVideoModel.Config", full_cfg: Any) -> None:
        if model_cfg.hidden > 64 and full_cfg.train.precision != "32-true":
            raise ConfigError(f"model.hidden: at most 64 with train.precision={full_cfg.train.precision}, "
                              f"got {model_cfg.hidden}")

    def __init__(self, cfg: "TinyVideoModel.Config"):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(nn.Linear(3 * H * W, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.decoder = nn.Linear(cfg.hidden, 3 * H * W)
        self.zero_bias = nn.Parameter(torch.zeros(3 * H * W))  # LAMB must train zero-initialised tensors
        self.steps_seen = -1

    def param_groups(self) -> list[ParamGroup]:
        if not self.cfg.two_optimizers:
            return super().param_groups()
        return [ParamGroup(list(self.encoder.parameters()), optimizer="main", name="encoder"),
                ParamGroup(list(self.decoder.parameters()) + [self.zero_bias], optimizer="decoder",
                           lr_scale=0.5, name="decoder")]

    def on_step(self, step: int) -> None:
        self.steps_seen = step
        if step == self.cfg.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)
        if self.cfg.dump_dir:
            total = sum(p.detach().double().sum().item() for p in self.parameters())
            with open(Path(self.cfg.dump_dir) / f"params_{os.getpid()}.txt", "a") as f:
                f.write(f"{step} {total!r}\n")

    def forward(self, batch: Any) -> Output:
        video = batch.video
        x = video.flatten(2)
        x = x + self.cfg.noise * torch.randn_like(x)  # random sampling inside the model
        recon = (self.decoder(self.encoder(x)) + self.zero_bias).view_as(video)
        err = (recon - video).pow(2)
        loss = err.mean()
        masks = torch.ones(*video.shape[:2], 1, H, W, device=video.device)
        # a term undefined on some batches (NaN): the loop's window mean must skip those steps
        first_odd = torch.where(batch["index"][0] % 2 == 1, 1.0, float("nan"))
        return Output(loss=loss, terms={"mse": loss.detach(), "abs": (recon - video).abs().mean().detach(),
                                        "first_odd": first_odd},
                      recon=recon, masks=masks, extra={"per_sample": err.flatten(1).mean(1).detach()})

    @torch.no_grad()
    def evaluate_batch(self, batch: Any) -> dict[str, torch.Tensor]:
        out = self(batch)
        per_sample = out.extra["per_sample"]
        odd = batch["index"] % 2 == 1
        return {"mse": per_sample, "odd_only": torch.where(odd, per_sample, torch.full_like(per_sample, float("nan")))}
