"""SetCon: object-centric video learning by contrasting sets of slots (Löwe et al. 2020).

Section 2 of the paper, one module per paragraph:

* **Backbone** (eqs. 3-4): ``h1 = f_mlp(x) + f_linear(position grid)``, ``h = f_mlp(LayerNorm(h1))``, per pixel.
* **Slots**: Slot Attention (eq. 1) with a learned initialisation per slot and ONE iteration, or the
  FM-MLP baseline (eqs. 5-6): a linear map to K feature maps, each map flattened into one slot by an MLP.
* **Transition model**, shared over slots: ``p_{t+2} = s_{t+1} + f([s_t, s_{t+1}, s_{t+1} - s_t])``.
* **Set encoder** (DeepSets): ``z = f_mlp(LayerNorm(sum_k f_mlp(s^k)))`` for slots and predictions alike.
* **Set contrastive loss** (eq. 2): InfoNCE between ``z_p`` and ``z_s`` of the same sample and time step.

The baselines of Table 1 are config switches of this one class: ``loss: slotwise`` contrasts each slot
index on its own (no set encoder, slots paired by index as in C-SWM), ``loss: reconstruction`` trains a
spatial broadcast decoder end to end; ``encoder: fm_mlp`` swaps the slot module; ``slot_init: gaussian``
with ``iterations: 3`` is appendix B.4.

Evaluation protocol (section 3): a spatial broadcast decoder (RGB + alpha, alpha softmaxed over slots)
learns, at the same time as the model and with the same learning rate, to decode the STOP-GRADIENT slots
``s_t`` and predictions ``p_t`` into the frames; it never sends gradients back. Its reconstruction MSE
and the FG-ARI of its alpha masks are the metrics, and its masks are what :meth:`SetCon.segment` returns.
With ``loss: reconstruction`` that decoder IS the model's decoder, trained end to end.

Conventions: frames enter scaled to [-1, 1] (appendix A.3) and the decoder reconstructs in that scale;
reported reconstructions and MSEs are in the library's [0, 1] scale (= the paper's scale / 4).
The contrastive negatives are the ``z_s`` and ``z_p`` of every time step that HAS a prediction
(t = 2..T-1) of every sequence in the batch; the anchor's own ``z_p`` is left out of the denominator
(a vector scored against itself is no negative; eq. 2 read literally would include it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor, nn

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape
from slotvideo.metrics.ari import fg_ari
from slotvideo.metrics.image import mse
from slotvideo.models.base import Output, ParamGroup, VideoModel
from slotvideo.nn.decoders import Decoded, SpatialBroadcastDecoder
from slotvideo.nn.losses import set_contrastive_loss
from slotvideo.nn.mlp import MLP
from slotvideo.nn.position import coordinate_grid
from slotvideo.nn.sets import DeepSets
from slotvideo.nn.slot_attention import SlotAttention
from slotvideo.registry import register

LOSSES = ("setcon", "slotwise", "reconstruction")
ENCODERS = ("slot_attention", "fm_mlp")
SLOT_INITS = ("learned", "gaussian")


class Backbone(nn.Module):
    """Eqs. 3-4: per-pixel MLPs (= 1x1 convs) plus a linear embedding of a [0, 1] position grid.

    ``[..., 3, H, W]`` in [-1, 1] -> ``[..., H*W, encoder_dim]`` (flattened pixels, channel-last).
    """

    def __init__(self, encoder_dim: int) -> None:
        super().__init__()
        self.pixel_mlp = MLP(3, [encoder_dim], encoder_dim)
        self.position = nn.Linear(2, encoder_dim)
        self.norm = nn.LayerNorm(encoder_dim)
        self.mlp = MLP(encoder_dim, [encoder_dim], encoder_dim)

    def forward(self, frames: Tensor) -> Tensor:
        height, width = frames.shape[-2:]
        pixels = frames.flatten(-2).transpose(-1, -2)  # [..., N, 3]
        grid = coordinate_grid(height, width, device=frames.device, dtype=frames.dtype).flatten(0, 1)
        h1 = self.pixel_mlp(pixels) + self.position(grid)
        return self.mlp(self.norm(h1))


class FeatureMapSlots(nn.Module):
    """FM-MLP (eqs. 5-6): a linear map to K feature maps; each map, flattened, becomes one slot via an MLP.

    ``[..., N, encoder_dim] -> [..., K, slot_dim]``. It has no attention, so no masks of its own.
    """

    def __init__(self, encoder_dim: int, num_pixels: int, num_slots: int, slot_dim: int, hidden: int) -> None:
        super().__init__()
        self.num_pixels = num_pixels
        self.to_maps = nn.Linear(encoder_dim, num_slots)
        self.mlp = MLP(num_pixels, [hidden], slot_dim)

    def forward(self, features: Tensor) -> Tensor:
        check_shape(features, "... N D", "FM-MLP features", N=self.num_pixels)
        return self.mlp(self.to_maps(features).transpose(-1, -2))


class Transition(nn.Module):
    """``p_{t+2} = s_{t+1} + f([s_t, s_{t+1}, s_{t+1} - s_t])``; f = linear down-projection, LayerNorm, linear.

    Shared over slots: it acts on the last axis only, so slots never exchange information here.
    """

    def __init__(self, slot_dim: int, hidden: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(3 * slot_dim, hidden), nn.LayerNorm(hidden), nn.Linear(hidden, slot_dim))

    def forward(self, previous: Tensor, current: Tensor) -> Tensor:
        return current + self.f(torch.cat([previous, current, current - previous], dim=-1))


@register("model", "setcon")
class SetCon(VideoModel):
    """SetCon and its Table 1 baselines; see the module docstring for the map from paper to code."""

    name = "setcon"

    @dataclass
    class Config:
        loss: str = field(default="setcon", metadata={"choices": LOSSES})  # the baselines: slotwise, reconstruction
        encoder: str = field(default="slot_attention", metadata={"choices": ENCODERS})  # or FM-MLP (eqs. 5-6)
        slot_init: str = field(default="learned", metadata={"choices": SLOT_INITS})  # gaussian: appendix B.4
        iterations: int = field(default=1, metadata={"min": 1})   # Slot Attention iterations (B.4: 3)
        num_slots: int = field(default=4, metadata={"min": 1})    # K: 3 objects + background
        slot_dim: int = field(default=16, metadata={"min": 1})    # D
        encoder_dim: int = field(default=32, metadata={"min": 1})  # D_enc
        mlp_hidden: int = field(default=128, metadata={"min": 1})  # hidden size of every f_mlp
        transition_dim: int = field(default=16, metadata={"min": 1})  # width of the transition's down-projection
        set_dim: int = field(default=16, metadata={"min": 1})     # size of z (DeepSets output)
        temperature: float = field(default=0.5, metadata={"min": 1e-6})  # tau of the score g
        resolution: list[int] = field(default_factory=lambda: [32, 32])  # frame [H, W] (FM-MLP, decoder)
        # Evaluation decoder (spatial broadcast, RGB + alpha); the paper gives only its width: 16 on
        # GridWorld, 32 on Bouncing Balls. decoder_broadcast null = broadcast at full resolution.
        decoder_channels: list[int] = field(default_factory=lambda: [32, 32, 32])
        decoder_kernel_size: int = field(default=3, metadata={"min": 1})
        decoder_broadcast: Optional[list[int]] = None
        decoder_horizon: int = field(default=1, metadata={"min": 1})  # decoder learns p_{t+k}, k = 1..this
        # Frames per sequence the decoder trains on at each step (a fresh random subset each step for s_t and
        # for each p_{t+k}); null = all frames, as the paper. A CPU budget knob: the decoder dominates a step.
        decoder_frames: Optional[int] = None
        # The evaluation decoder's learning rate relative to the model's (its own parameter group). The paper
        # uses one learning rate (1.0); the decoder only reads the representation, so it may train faster
        # than a contrastive model can (the CPU budget runs: model 2e-4, decoder 1e-3).
        decoder_lr_scale: float = field(default=1.0, metadata={"min": 0.0})
        eval_horizon: int = field(default=5, metadata={"min": 1})     # rollout steps scored (paper: up to 5)

    def __init__(self, cfg: "SetCon.Config | None" = None) -> None:
        super().__init__()
        cfg = self.configure(cfg)
        height, width = cfg.resolution
        self.backbone = Backbone(cfg.encoder_dim)
        if cfg.encoder == "slot_attention":
            self.slots: nn.Module = SlotAttention(cfg.encoder_dim, cfg.slot_dim, cfg.num_slots, cfg.iterations,
                                                  cfg.mlp_hidden, init=cfg.slot_init)
        else:
            self.slots = FeatureMapSlots(cfg.encoder_dim, height * width, cfg.num_slots, cfg.slot_dim,
                                         cfg.mlp_hidden)
        self.transition = Transition(cfg.slot_dim, cfg.transition_dim)
        self.set_encoder = DeepSets(cfg.slot_dim, cfg.mlp_hidden, cfg.set_dim) if cfg.loss == "setcon" else None
        self.decoder = SpatialBroadcastDecoder(cfg.slot_dim, (height, width), 3, cfg.decoder_channels,
                                               cfg.decoder_kernel_size, cfg.decoder_broadcast, position="soft",
                                               final_kernel_size=cfg.decoder_kernel_size)

    # ------------------------------------------------------------------ config
    @staticmethod
    def validate(cfg: "SetCon.Config") -> None:
        """Raise a ConfigError naming the ``model.*`` key that is out of range."""
        for key, allowed in (("loss", LOSSES), ("encoder", ENCODERS), ("slot_init", SLOT_INITS)):
            if getattr(cfg, key) not in allowed:
                raise ConfigError(f"model.{key} must be one of {list(allowed)}, got {getattr(cfg, key)!r}")
        for key in ("iterations", "num_slots", "slot_dim", "encoder_dim", "mlp_hidden", "transition_dim",
                    "set_dim", "decoder_kernel_size", "decoder_horizon", "eval_horizon"):
            check_range(getattr(cfg, key), f"model.{key}", low=1, integer=True)
        check_range(cfg.temperature, "model.temperature", low=1e-6)
        if cfg.decoder_frames is not None:
            check_range(cfg.decoder_frames, "model.decoder_frames", low=1, integer=True)
        if len(cfg.resolution) != 2:
            raise ConfigError(f"model.resolution must be [height, width], got {list(cfg.resolution)}")
        for v in cfg.resolution:
            check_range(v, "model.resolution", low=1, integer=True)
        if cfg.encoder == "fm_mlp" and cfg.slot_init != "learned":
            raise ConfigError("model.slot_init only applies to encoder: slot_attention; FM-MLP has no slot init")

    @classmethod
    def check_config(cls, model_cfg: Any, full_cfg: Any) -> None:
        """Cross-check the model against the data: the frame size must be ``model.resolution``."""
        data = full_cfg.get("data", {}) if hasattr(full_cfg, "get") else {}
        params = data.get("params", {}) or {} if hasattr(data, "get") else {}
        size = params.get("resolution", params.get("size")) if hasattr(params, "get") else None
        if size is None:
            return
        size = [size, size] if isinstance(size, int) else list(size)
        if size != list(model_cfg.resolution):
            raise ConfigError(f"model.resolution {list(model_cfg.resolution)} must equal the data frame size {size}")

    # ------------------------------------------------------------------ the model
    def encode(self, video: Tensor) -> tuple[Tensor, Tensor | None]:
        """Frames ``[B, T, 3, H, W]`` in [0, 1] -> slots ``s [B, T, K, D]`` and attention ``[B, T, K, H, W]``.

        FM-MLP has no attention and returns ``None`` for it.
        """
        check_shape(video, "B T 3 H W", "video", H=self.cfg.resolution[0], W=self.cfg.resolution[1])
        features = self.backbone(video * 2.0 - 1.0)
        if isinstance(self.slots, SlotAttention):
            slots, attention = self.slots(features)
            return slots, attention.unflatten(-1, tuple(self.cfg.resolution))
        return self.slots(features), None

    def predict(self, slots: Tensor, steps: int) -> list[Tensor]:
        """Apply the transition model ``steps`` times without new input, from every pair of frames at once.

        ``slots [B, T, K, D]`` -> list over k = 1..steps of ``[B, T-1, K, D]``: entry ``t`` of item k-1 is
        the prediction of frame ``t + 1 + k`` from frames ``t, t + 1``; it has a target only while
        ``t + 1 + k <= T - 1`` (see :func:`aligned`).
        """
        if slots.shape[1] < 2:
            raise ShapeError(f"SetCon needs at least 2 frames to predict, got video with T={slots.shape[1]}")
        previous, current = slots[:, :-1], slots[:, 1:]
        predictions = []
        for _ in range(steps):
            previous, current = current, self.transition(previous, current)
            predictions.append(current)
        return predictions

    def contrastive_loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Eq. 2 on ``p_t``, ``s_t`` ``[B, T', K, D]`` (setcon), or the slotwise baseline per slot index."""
        if self.set_encoder is not None:
            return set_contrastive_loss(self.set_encoder(predictions), self.set_encoder(targets), self.cfg.temperature)
        # Slotwise: the same InfoNCE once per slot index k (slots paired by index, negatives only from
        # slot k of the other samples and time steps); nothing ties the K losses together.
        per_slot = torch.vmap(lambda p, s: set_contrastive_loss(p, s, self.cfg.temperature), in_dims=-2)
        return per_slot(predictions, targets).mean()

    def decode(self, latents: Tensor) -> Decoded:
        """The (evaluation) decoder; RGB and reconstruction in the model's [-1, 1] scale."""
        return self.decoder(latents)

    def forward(self, batch: Batch) -> Output:
        video = batch.video
        target = video * 2.0 - 1.0
        slots, attention = self.encode(video)
        horizon = self.cfg.decoder_horizon
        predictions = self.predict(slots, horizon)
        p = predictions[0][:, :-1]  # p_t for t = 2..T-1
        if p.shape[1] < 1:
            raise ShapeError(f"SetCon needs at least 3 frames to train, got video with T={video.shape[1]}")
        terms: dict[str, Tensor] = {}
        if self.cfg.loss != "reconstruction":
            terms["contrastive"] = self.contrastive_loss(p, slots[:, 2:])
            # Evaluation protocol: the decoder sees stop-gradient slots and never trains the model.
            slots_in, predictions_in = slots.detach(), [q.detach() for q in predictions]
        else:
            slots_in, predictions_in = slots, predictions

        decoded = self.decode(self._decoder_subset(slots_in))
        terms["mse_slots"] = (decoded.recon - self._decoder_subset(target)).square().mean()
        for k, q in enumerate(predictions_in, start=1):
            q, x = aligned(q, target, k)
            if q.shape[1]:
                q, x = self._decoder_subset(q, x)
                terms[f"mse_pred_{k}"] = (self.decode(q).recon - x).square().mean()
        decoder_loss = terms["mse_slots"] + sum(terms[f"mse_pred_{k}"] for k in range(1, horizon + 1)
                                                if f"mse_pred_{k}" in terms)
        loss = decoder_loss + terms.get("contrastive", torch.zeros((), device=video.device))
        return Output(loss=loss, terms={k: v.detach() for k, v in terms.items()}, slots=slots,
                      masks=decoded.masks, recon=to_unit(decoded.recon),
                      extra={"attention": attention, "predictions": p})

    def _decoder_subset(self, *tensors: Tensor) -> Any:
        """While training with ``decoder_frames`` set: the same random ``decoder_frames`` time steps of each
        ``[B, T, ...]`` tensor (an unbiased sample of the decoder's per-frame loss); otherwise the tensors."""
        n, t = self.cfg.decoder_frames, tensors[0].shape[1]
        if self.training and n is not None and n < t:
            index = torch.randperm(t, device=tensors[0].device)[:n].sort().values
            tensors = tuple(x.index_select(1, index) for x in tensors)
        return tensors[0] if len(tensors) == 1 else tensors

    def param_groups(self) -> list[ParamGroup]:
        """The model, and the evaluation decoder as its own group (same optimizer and learning rate)."""
        decoder = {id(p) for p in self.decoder.parameters()}
        main = [p for p in self.parameters() if p.requires_grad and id(p) not in decoder]
        return [ParamGroup(main, name="model"),
                ParamGroup([p for p in self.decoder.parameters() if p.requires_grad], name="eval_decoder",
                           lr_scale=self.cfg.decoder_lr_scale)]

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        """Per-sample metrics ``[B]``: decoder MSE of ``s_t`` and of ``p_t`` (k = 1..eval_horizon steps ahead),
        and FG-ARI (per frame, averaged) of the decoder's alpha masks when the batch has ground truth; with
        the Slot Attention encoder also ``fg_ari_attention``, the FG-ARI of its attention masks (a diagnostic
        beyond the paper: whether the slots bind to objects, whatever the evaluation decoder has learned).

        ``mse_pred``/``fg_ari_pred`` are the one-step predictions ``p_t`` of Table 1.
        """
        return self.evaluate_with_masks(batch)[0]

    @torch.no_grad()
    def evaluate_with_masks(self, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        """:meth:`evaluate_batch`'s metrics and the masks of :meth:`segment` from one pass over the batch."""
        video = batch.video
        slots, attention = self.encode(video)
        decoded = self.decode(slots)
        out = {"mse_slots": mse(to_unit(decoded.recon), video, reduction="none").mean(dim=1)}
        has_gt = "segmentation" in batch
        if has_gt:
            out["fg_ari_slots"] = nanmean(fg_ari(batch.segmentation, decoded.masks), dim=1)
            if attention is not None:  # not in the paper: do the slots bind to objects, decoder aside?
                out["fg_ari_attention"] = nanmean(fg_ari(batch.segmentation, attention), dim=1)
        for k, q in enumerate(self.predict(slots, self.cfg.eval_horizon), start=1):
            q, x = aligned(q, video, k)
            if not q.shape[1]:
                break
            pred = self.decode(q)
            out[f"mse_pred_{k}"] = mse(to_unit(pred.recon), x, reduction="none").mean(dim=1)
            if k == 1:
                out["mse_pred"] = out["mse_pred_1"]
                if has_gt:
                    _, seg = aligned(q, batch.segmentation, 1)
                    out["fg_ari_pred"] = nanmean(fg_ari(seg, pred.masks), dim=1)
        return {k: v.float() for k, v in out.items()}, decoded.masks

    @torch.no_grad()
    def media(self, batch: Batch) -> dict[str, Tensor]:
        video = batch.video
        slots, attention = self.encode(video)
        decoded = self.decode(slots)
        media = {"video": video, "recon": to_unit(decoded.recon), "masks": decoded.masks}
        if attention is not None:
            media["attention"] = attention
        q, _ = aligned(self.predict(slots, 1)[0], video, 1)
        media["prediction"] = to_unit(self.decode(q).recon)
        return media

    @torch.no_grad()
    def segment(self, video: Tensor) -> Tensor:
        """Soft masks ``[B, T, K, H, W]``: the evaluation decoder's alpha masks of the slots ``s_t``."""
        slots, _ = self.encode(video)
        return self.decode(slots).masks

    @torch.no_grad()
    def rollout(self, video: Tensor, steps: int) -> Output:
        """Predict ``steps`` frames after the last one of ``video [B, T>=2, 3, H, W]`` without new input.

        Returns an :class:`Output` (``loss`` 0) whose ``slots [B, steps, K, D]``, ``masks [B, steps, K, H, W]``
        and ``recon [B, steps, 3, H, W]`` (in [0, 1]) are the decoded predictions.
        """
        check_range(steps, "rollout steps", low=1, integer=True)
        slots, _ = self.encode(video)
        predictions = self.predict(slots[:, -2:], steps)  # each [B, 1, K, D]
        future = torch.cat(predictions, dim=1)
        decoded = self.decode(future)
        return Output(loss=torch.zeros((), device=video.device), slots=future, masks=decoded.masks,
                      recon=to_unit(decoded.recon))


def aligned(predictions: Tensor, frames: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k-step predictions of :meth:`SetCon.predict` that have a frame, and those frames ``[B, T-1-k, ...]``."""
    count = frames.shape[1] - 1 - k
    return predictions[:, :max(count, 0)], frames[:, 1 + k:]


def to_unit(x: Tensor) -> Tensor:
    """[-1, 1] model scale -> the library's [0, 1] image scale."""
    return (x + 1.0) * 0.5


def nanmean(x: Tensor, dim: int) -> Tensor:
    """Mean over ``dim`` skipping NaN (frames without foreground); NaN where every entry is NaN."""
    keep = ~torch.isnan(x)
    return torch.where(keep, x, torch.zeros_like(x)).sum(dim) / keep.sum(dim)
