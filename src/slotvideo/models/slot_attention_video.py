"""The baseline: a slot-attention video autoencoder (Slot Attention applied frame by frame, SAVi-style).

Everything is the Slot Attention object-discovery model (Locatello et al. 2020) run on each frame, with one
change that makes it a video model: the slots of frame ``t`` start from the slots of frame ``t-1`` moved by a
small transition MLP (SAVi's predictor/corrector split), so a slot keeps its object over time.

* **Encoder** (per frame, time folded into the batch): CNN with 'same' padding -> soft position embedding
  -> LayerNorm -> MLP, giving ``[B, T, H*W, feature_dim]``.
* **Corrector**: Slot Attention. Frame 0 starts from the learned Gaussian (or per-slot) initialisation and
  runs ``iters_first`` iterations; frame ``t > 0`` starts from the prediction and runs ``iters`` (fewer:
  the prediction is already close, SAVi uses 1).
* **Predictor**: ``s + MLP(LN(s))``, shared over slots (a residual, so "stay put" is the easy default).
* **Decoder**: spatial broadcast decoder of every (B, T, K) slot in one call; RGB + mask logits, masks
  softmaxed over slots, reconstruction = mask-weighted sum.
* **Loss**: MSE, mean over all elements (as the reference code's ``l2_loss``).

Only the corrector/predictor step loops over time (:func:`~slotvideo.nn.time.scan_over_time`); encoding
and decoding see all frames at once. ``train_frames`` trains on random windows of that many frames (a cost
knob: the model is causal, so a short window teaches the same step that runs on long videos).
Frames enter the encoder rescaled to [-1, 1] (as in the reference code); reconstructions are in [0, 1].

``resolution`` is where the model works: videos of another size are resized to it (antialiased), the
loss compares the reconstruction with that resized video, and masks/reconstructions are resized back
(bilinear) to the input's size, so metrics are scored against ground truth at its own resolution. On a
CPU this is the main cost knob: 16x16 on 32x32 Bouncing Balls is four times cheaper per step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape
from slotvideo.metrics.ari import ari, fg_ari
from slotvideo.metrics.image import mse
from slotvideo.models.base import Output, VideoModel
from slotvideo.nn.decoders import Decoded, SpatialBroadcastDecoder, check_broadcast_config
from slotvideo.nn.encoders import SizePreservingCNN
from slotvideo.nn.mlp import MLP
from slotvideo.nn.position import SoftPositionEmbed
from slotvideo.nn.slot_attention import SlotAttention
from slotvideo.nn.time import scan_over_time
from slotvideo.registry import register


class FrameEncoder(nn.Module):
    """``[..., 3, H, W]`` in [0, 1] -> ``[..., H*W, feature_dim]``: CNN, position embedding, LayerNorm, MLP."""

    def __init__(self, channels: list[int], kernel_size: int, feature_dim: int) -> None:
        super().__init__()
        self.cnn = SizePreservingCNN(3, channels, kernel_size)
        self.position = SoftPositionEmbed(channels[-1])
        self.norm = nn.LayerNorm(channels[-1])
        self.mlp = MLP(channels[-1], [feature_dim], feature_dim)

    def forward(self, frames: Tensor) -> Tensor:
        features = self.position(self.cnn(frames * 2.0 - 1.0))
        return self.mlp(self.norm(features.flatten(-2).transpose(-1, -2)))


@register("model", "slot-attention-video")
class SlotAttentionVideo(VideoModel):
    """Slot Attention video autoencoder; the library's baseline for object discovery and tracking."""

    @dataclass
    class Config:
        resolution: int = field(default=32, metadata={"min": 4})
        num_slots: int = field(default=4, metadata={"min": 1})
        slot_dim: int = field(default=64, metadata={"min": 1})
        hidden: int = field(default=128, metadata={"min": 1})          # slot attention's MLP
        feature_dim: int = field(default=64, metadata={"min": 1})      # encoder output = slot attention input
        encoder_channels: list[int] = field(default_factory=lambda: [32, 32, 32, 32])
        encoder_kernel: int = field(default=5, metadata={"min": 1})
        decoder_channels: list[int] = field(default_factory=lambda: [32, 32, 32])
        decoder_kernel: int = field(default=5, metadata={"min": 1})
        broadcast_resolution: int = field(default=8, metadata={"min": 1})
        slot_init: str = field(default="gaussian", metadata={"choices": ("gaussian", "learned")})
        iters_first: int = field(default=3, metadata={"min": 1})
        iters: int = field(default=1, metadata={"min": 1})
        transition_hidden: int = field(default=128, metadata={"min": 1})
        train_frames: int = field(default=0, metadata={"min": 0})     # 0: train on whole clips

    def __init__(self, cfg: "SlotAttentionVideo.Config | None" = None) -> None:
        super().__init__()
        cfg = self.configure(cfg)
        self.encoder = FrameEncoder(list(cfg.encoder_channels), cfg.encoder_kernel, cfg.feature_dim)
        self.slot_attention = SlotAttention(cfg.feature_dim, cfg.slot_dim, cfg.num_slots, cfg.iters_first,
                                            cfg.hidden, init=cfg.slot_init)
        self.transition = MLP(cfg.slot_dim, [cfg.transition_hidden], cfg.slot_dim, layer_norm_input=True)
        self.decoder = SpatialBroadcastDecoder(cfg.slot_dim, cfg.resolution, 3, list(cfg.decoder_channels),
                                               cfg.decoder_kernel, cfg.broadcast_resolution)

    @staticmethod
    def validate(cfg: "SlotAttentionVideo.Config") -> None:
        for key in ("resolution", "num_slots", "slot_dim", "hidden", "feature_dim", "encoder_kernel",
                    "decoder_kernel", "broadcast_resolution", "iters_first", "iters", "transition_hidden"):
            check_range(getattr(cfg, key), f"model.{key}", low=1, integer=True)
        check_range(cfg.train_frames, "model.train_frames", low=0, integer=True)
        if not cfg.encoder_channels or not cfg.decoder_channels:
            raise ConfigError("model.encoder_channels and model.decoder_channels must name at least one layer")
        check_broadcast_config(cfg.resolution, cfg.broadcast_resolution, len(cfg.decoder_channels))

    @classmethod
    def check_config(cls, model_cfg: "SlotAttentionVideo.Config", full_cfg: Any) -> None:
        cls.validate(model_cfg)

    # ------------------------------------------------------------------ the model
    def check_video(self, video: Tensor) -> None:
        check_shape(video, "B T 3 H W", "video")
        if not video.dtype.is_floating_point:
            raise ShapeError(f"video must be float in [0, 1], got dtype {video.dtype}")

    def resize(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """``[B, T, C, H, W]`` -> ``[B, T, C, *size]``: antialiased bilinear down, bilinear up.

        Bilinear weights sum to one, so resized masks still sum to one over slots.
        """
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        flat = x.flatten(0, 1)
        down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        out = F.interpolate(flat, size=size, mode="bilinear", antialias=down, align_corners=False)
        return out.unflatten(0, x.shape[:2])

    def encode(self, video: Tensor) -> Tensor:
        """``[B, T, 3, H, W]`` -> features ``[B, T, H*W, feature_dim]`` (all frames in one call)."""
        return self.encoder(video)

    def predict(self, slots: Tensor) -> Tensor:
        """The transition: where each slot will be one frame later."""
        return slots + self.transition(slots)

    def infer(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Slots ``[B, T, K, D]`` and attention ``[B, T, K, N]`` of every frame, predicted then corrected."""
        first = self.slot_attention(features[:, 0], iterations=self.cfg.iters_first)

        def step(slots: Tensor, frame_features: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
            out = self.slot_attention(frame_features, slots=self.predict(slots), iterations=self.cfg.iters)
            return out.slots, (out.slots, out.attention)

        if features.shape[1] == 1:
            return first.slots[:, None], first.attention[:, None]
        _, (slots, attention) = scan_over_time(step, first.slots, features[:, 1:])
        return (torch.cat([first.slots[:, None], slots], dim=1),
                torch.cat([first.attention[:, None], attention], dim=1))

    def decode(self, slots: Tensor) -> Decoded:
        """Slots ``[..., K, D]`` -> per-slot RGB/mask logits, masks ``[..., K, H, W]`` and recon ``[..., 3, H, W]``."""
        return self.decoder(slots)

    def run(self, video: Tensor) -> tuple[Tensor, Tensor, Decoded, Tensor]:
        """Slots, attention and decoding of ``video`` at the model's resolution, and the video at that resolution."""
        self.check_video(video)
        res = self.cfg.resolution
        target = self.resize(video, (res, res))
        slots, attention = self.infer(self.encode(target))
        return slots, attention, self.decode(slots), target

    def forward(self, batch: Batch) -> Output:
        video = batch["video"]
        window = self.cfg.train_frames
        if self.training and 0 < window < video.shape[1]:
            start = int(torch.randint(0, video.shape[1] - window + 1, ()))
            video = video[:, start:start + window]
        slots, attention, decoded, target = self.run(video)
        loss = F.mse_loss(decoded.recon, target)
        size = tuple(video.shape[-2:])
        return Output(loss=loss, terms={"mse": loss.detach()}, slots=slots, masks=self.resize(decoded.masks, size),
                      recon=self.resize(decoded.recon, size), extra={"attention": attention})

    # ------------------------------------------------------------------ inference and evaluation
    @torch.no_grad()
    def segment(self, video: Tensor) -> Tensor:
        """Soft masks ``[B, T, K, H, W]`` (sum to 1 over K) of ``video [B, T, 3, H, W]`` in [0, 1]."""
        return self.resize(self.run(video)[2].masks, tuple(video.shape[-2:]))

    @torch.no_grad()
    def rollout(self, video: Tensor, steps: int) -> Output:
        """Continue ``video [B, T, 3, H, W]`` by ``steps`` frames using the transition alone (no new frames).

        Returns an :class:`Output` (``loss`` 0) with ``slots [B, steps, K, D]``, ``masks [B, steps, K, H, W]``
        and ``recon [B, steps, 3, H, W]`` of the predicted frames.
        """
        check_range(steps, "rollout steps", low=1, integer=True)
        slots = self.run(video)[0]

        def step(state: Tensor, _: None) -> tuple[Tensor, Tensor]:
            nxt = self.predict(state)
            return nxt, nxt

        _, future = scan_over_time(step, slots[:, -1], steps=steps)
        decoded = self.decode(future)
        size = tuple(video.shape[-2:])
        return Output(loss=torch.zeros((), device=video.device), slots=future,
                      masks=self.resize(decoded.masks, size), recon=self.resize(decoded.recon, size))

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        """Per-sample ``mse``; with ground truth also ``fg_ari`` (per video: slots must keep their object),
        ``fg_ari_frame`` (mean of per-frame scores, frames without foreground skipped) and ``ari`` (per video,
        background included)."""
        video = batch["video"]
        decoded = self.run(video)[2]
        size = tuple(video.shape[-2:])
        recon, masks = self.resize(decoded.recon, size), self.resize(decoded.masks, size)
        out = {"mse": mse(recon, video, per="sample", reduction="none")}
        if "segmentation" in batch:
            seg = batch["segmentation"]
            out["fg_ari"] = fg_ari(seg, masks, per="video")
            out["fg_ari_frame"] = _nanmean(fg_ari(seg, masks, per="frame"), dim=1)
            out["ari"] = ari(seg, masks, per="video")
        return {k: v.float() for k, v in out.items()}

    @torch.no_grad()
    def media(self, batch: Batch) -> dict[str, Tensor]:
        video = batch["video"]
        decoded = self.run(video)[2]
        size = tuple(video.shape[-2:])
        return {"video": video, "recon": self.resize(decoded.recon, size).clamp(0, 1),
                "masks": self.resize(decoded.masks, size)}


def _nanmean(x: Tensor, dim: int) -> Tensor:
    """Mean over ``dim`` skipping NaN (frames without foreground); NaN where every entry is NaN."""
    keep = ~torch.isnan(x)
    return torch.where(keep, x, torch.zeros_like(x)).sum(dim) / keep.sum(dim)
