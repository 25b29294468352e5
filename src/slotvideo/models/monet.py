"""MONet (Burgess et al. 2019), Aloe's object front-end (Aloe appendix A.1), trained on single frames.

* **Attention network.** A U-Net over ``[image, log scope]`` gives a logit ``a`` per pixel; with the scope
  ``s_0 = 1`` the recursion (stick breaking, kept in log space so small scopes stay exact) is
  ``log m_k = log s_k + logsigmoid(a_k)``, ``log s_{k+1} = log s_k + logsigmoid(-a_k)``; the last slot takes
  the remaining scope, ``m_{K-1} = s_{K-1}``. So the masks sum to one and ``K - 1`` U-Net calls are made
  (the only loop over slots: the recursion is the paper's).
* **Component VAE.** Encoder over ``[image, log m_k]`` (4 stride-2 convs, MLP) to a diagonal Gaussian
  ``q(z_k | x, m_k)`` with ``latent_dim`` (16) dims; a spatial broadcast decoder maps ``z_k`` to RGB means and
  a mask logit. All slots of all frames go through the VAE as one batch.
* **Loss** (seed-model-details.md 5.3): ``-log sum_k m_k N(x; mu_k, sigma_k^2)`` per channel and pixel with
  ``sigma_0 = sigma_bg`` for the first (background) slot and ``sigma_fg`` for the others, summed over C, H, W;
  ``+ beta KL(q(z) || N(0, I))`` summed over dims and slots; ``+ gamma KL(m || softmax(decoded mask logits))``
  summed over K, H, W. Everything is averaged over frames. beta = gamma = 0.5.

Aloe uses the posterior means ``mu_tk`` of every frame (:meth:`Monet.object_latents`) as its object tokens.
Simplification: the decoder keeps the resolution with 'same' padding instead of broadcasting to
``(H + 8) x (W + 8)`` and using unpadded convs; the function class is the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape
from slotvideo.metrics.ari import ari, fg_ari
from slotvideo.metrics.image import mse
from slotvideo.models.base import Output, VideoModel
from slotvideo.nn.decoders import SpatialBroadcastDecoder
from slotvideo.nn.distributions import DiagonalGaussian, gaussian_mixture_log_likelihood
from slotvideo.nn.encoders import SizePreservingCNN
from slotvideo.nn.mlp import MLP
from slotvideo.nn.unet import UNet
from slotvideo.registry import register


def stick_breaking(logits: list[Tensor]) -> Tensor:
    """Log masks ``[..., K, 1, H, W]`` from ``K - 1`` attention logits ``[..., 1, H, W]`` (scope starts at 1).

    Kept separate from the U-Net so the recursion can be checked on its own.
    """
    log_scope = torch.zeros_like(logits[0])
    log_masks = []
    for a in logits:
        log_masks.append(log_scope + nn.functional.logsigmoid(a))
        log_scope = log_scope + nn.functional.logsigmoid(-a)
    log_masks.append(log_scope)
    return torch.stack(log_masks, dim=-4)


class AttentionNetwork(nn.Module):
    """MONet's recurrent attention: ``K - 1`` U-Net steps over ``[image, log scope]``."""

    def __init__(self, resolution: int, num_slots: int, channels: list[int], mlp_hidden: int) -> None:
        super().__init__()
        self.num_slots = num_slots
        self.unet = UNet(4, 1, resolution, channels, mlp_hidden)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images [N, 3, H, W]`` -> ``log_masks [N, K, 1, H, W]`` and the final log scope ``[N, 1, H, W]``."""
        log_scope = torch.zeros_like(images[:, :1])
        logits = []
        for _ in range(self.num_slots - 1):
            a = self.unet(torch.cat([images, log_scope], dim=1))
            logits.append(a)
            log_scope = log_scope + nn.functional.logsigmoid(-a)
        if not logits:  # one slot: it takes the whole scope
            return log_scope[:, None], log_scope
        return stick_breaking(logits), log_scope


class ComponentEncoder(nn.Module):
    """``[..., 4, H, W]`` (image + log mask) -> Gaussian parameters ``[..., 2 * latent_dim]``."""

    def __init__(self, resolution: int, channels: list[int], hidden: int, latent_dim: int) -> None:
        super().__init__()
        self.cnn = SizePreservingCNN(4, channels, kernel_sizes=3, strides=2)
        side = resolution
        for _ in channels:
            side = (side + 1) // 2
        self.mlp = MLP(channels[-1] * side * side, [hidden], 2 * latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.cnn(x).flatten(-3))


@dataclass
class MonetFrames:
    """MONet's outputs on a stack of frames ``[N, ...]``."""

    log_masks: Tensor        # [N, K, 1, H, W] attention masks (log)
    posterior: DiagonalGaussian   # over [N, K, Z]
    rgb: Tensor              # [N, K, 3, H, W]
    mask_logits: Tensor      # [N, K, 1, H, W] decoded mask logits

    @property
    def masks(self) -> Tensor:
        return self.log_masks.squeeze(-3).exp()

    @property
    def recon(self) -> Tensor:
        return (self.log_masks.exp() * self.rgb).sum(dim=-4)


@register("model", "monet")
class Monet(VideoModel):
    """MONet on the frames of a video (each frame is segmented on its own)."""

    @dataclass
    class Config:
        resolution: int = field(default=64, metadata={"min": 4})
        num_slots: int = field(default=8, metadata={"min": 1})           # K, background included
        latent_dim: int = field(default=16, metadata={"min": 1})
        unet_channels: list[int] = field(default_factory=lambda: [32, 32, 64, 64, 64])
        unet_hidden: int = field(default=128, metadata={"min": 1})
        encoder_channels: list[int] = field(default_factory=lambda: [32, 32, 64, 64])
        encoder_hidden: int = field(default=256, metadata={"min": 1})
        decoder_channels: list[int] = field(default_factory=lambda: [32, 32, 32, 32])
        sigma_bg: float = field(default=0.09, metadata={"min": 1e-6})
        sigma_fg: float = field(default=0.11, metadata={"min": 1e-6})
        beta: float = field(default=0.5, metadata={"min": 0.0})
        gamma: float = field(default=0.5, metadata={"min": 0.0})
        frames_per_video: int = field(default=0, metadata={"min": 0})   # train on this many random frames; 0 = all

    def __init__(self, cfg: "Monet.Config | None" = None) -> None:
        super().__init__()
        cfg = self.configure(cfg)
        self.attention = AttentionNetwork(cfg.resolution, cfg.num_slots, list(cfg.unet_channels), cfg.unet_hidden)
        self.encoder = ComponentEncoder(cfg.resolution, list(cfg.encoder_channels), cfg.encoder_hidden,
                                        cfg.latent_dim)
        self.decoder = SpatialBroadcastDecoder(cfg.latent_dim, cfg.resolution, 3, list(cfg.decoder_channels),
                                               kernel_sizes=3, position="linear", final_kernel_size=1)
        sigmas = torch.full((cfg.num_slots,), float(cfg.sigma_fg))
        sigmas[0] = cfg.sigma_bg
        self.register_buffer("sigmas", sigmas, persistent=False)

    @staticmethod
    def validate(cfg: "Monet.Config") -> None:
        for key in ("resolution", "num_slots", "latent_dim", "unet_hidden", "encoder_hidden"):
            check_range(getattr(cfg, key), f"model.{key}", low=1, integer=True)
        for key in ("unet_channels", "encoder_channels", "decoder_channels"):
            if not getattr(cfg, key):
                raise ConfigError(f"model.{key} must name at least one layer")
        halvings = 2 ** (len(cfg.unet_channels) - 1)
        if cfg.resolution % halvings:
            raise ConfigError(f"model.resolution ({cfg.resolution}) must be divisible by 2**(len(model.unet_channels)"
                              f"-1) = {halvings}")
        check_range(cfg.sigma_bg, "model.sigma_bg", low=1e-6)
        check_range(cfg.sigma_fg, "model.sigma_fg", low=1e-6)

    @classmethod
    def check_config(cls, model_cfg: "Monet.Config", full_cfg: Any) -> None:
        cls.validate(model_cfg)
        wanted = data_resolution(full_cfg)
        if wanted is not None and wanted != model_cfg.resolution:
            raise ConfigError(f"model.resolution ({model_cfg.resolution}) must equal the data resolution ({wanted})")

    # ------------------------------------------------------------------ the model
    def check_frames(self, frames: Tensor) -> None:
        r = self.cfg.resolution
        check_shape(frames, f"N 3 {r} {r}", "frames")
        if not frames.dtype.is_floating_point:
            raise ShapeError(f"frames must be float in [0, 1], got dtype {frames.dtype}")

    def run_frames(self, frames: Tensor, sample: bool = True) -> MonetFrames:
        """Attention, encoding and decoding of ``frames [N, 3, H, W]``; ``sample=False`` decodes the means."""
        self.check_frames(frames)
        log_masks, _ = self.attention(frames)
        k = self.cfg.num_slots
        inputs = torch.cat([frames[:, None].expand(-1, k, -1, -1, -1), log_masks], dim=2)
        posterior = DiagonalGaussian.from_params(self.encoder(inputs), scale="exp")
        posterior = DiagonalGaussian(posterior.mean, posterior.std.clamp_min(1e-4))
        z = posterior.rsample() if sample else posterior.mean
        decoded = self.decoder(z)
        return MonetFrames(log_masks, posterior, decoded.rgb, decoded.mask_logits)

    def loss_terms(self, frames: Tensor, out: MonetFrames) -> dict[str, Tensor]:
        """Per-frame-averaged negative log-likelihood, latent KL and mask KL."""
        n = frames.shape[0]
        ll = gaussian_mixture_log_likelihood(frames, out.rgb, log_masks=out.log_masks, sigma=self.sigmas,
                                             per_channel=True)
        nll = -ll.sum() / n
        kl_z = out.posterior.kl_standard_normal().sum() / n
        log_m = out.log_masks
        log_m_hat = out.mask_logits.log_softmax(dim=-4)
        kl_mask = (log_m.exp() * (log_m - log_m_hat)).sum() / n
        loss = nll + self.cfg.beta * kl_z + self.cfg.gamma * kl_mask
        return {"loss": loss, "nll": nll, "kl_z": kl_z, "kl_mask": kl_mask}

    def frames_of(self, video: Tensor) -> Tensor:
        r = self.cfg.resolution
        check_shape(video, f"B T 3 {r} {r}", "video")
        return video.reshape(-1, *video.shape[2:])

    def forward(self, batch: Batch) -> Output:
        video = batch["video"]
        b, t = video.shape[:2]
        if self.training and 0 < self.cfg.frames_per_video < t:
            # a random subset of frames per video (a cost knob: MONet sees frames independently)
            pick = torch.rand(b, t, device=video.device).argsort(dim=1)[:, :self.cfg.frames_per_video]
            video = video.gather(1, pick[:, :, None, None, None].expand(-1, -1, *video.shape[2:]))
            t = video.shape[1]
        frames = self.frames_of(video)
        out = self.run_frames(frames, sample=self.training)
        terms = self.loss_terms(frames, out)
        loss = terms.pop("loss")
        return Output(loss=loss, terms={k: v.detach() for k, v in terms.items()},
                      slots=out.posterior.mean.reshape(b, t, *out.posterior.mean.shape[1:]),
                      masks=out.masks.reshape(b, t, *out.masks.shape[1:]),
                      recon=out.recon.reshape(b, t, *out.recon.shape[1:]))

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def object_latents(self, video: Tensor) -> Tensor:
        """The posterior means ``mu [B, T, K, latent_dim]`` of every frame: Aloe's object tokens."""
        b, t = video.shape[:2]
        frames = self.frames_of(video)
        log_masks, _ = self.attention(frames)
        k = self.cfg.num_slots
        inputs = torch.cat([frames[:, None].expand(-1, k, -1, -1, -1), log_masks], dim=2)
        mean = self.encoder(inputs).chunk(2, dim=-1)[0]
        return mean.reshape(b, t, k, -1)

    @torch.no_grad()
    def segment(self, video: Tensor) -> Tensor:
        """Attention masks ``[B, T, K, H, W]`` (sum to 1 over K) of ``video [B, T, 3, H, W]`` in [0, 1]."""
        b, t = video.shape[:2]
        log_masks, _ = self.attention(self.frames_of(video))
        return log_masks.squeeze(-3).exp().reshape(b, t, self.cfg.num_slots, *video.shape[-2:])

    @torch.no_grad()
    def decode_latents(self, latents: Tensor) -> Tensor:
        """Images ``[..., 3, H, W]`` from latents ``[..., K, Z]``, mixed by the *decoded* masks.

        Used to look at latents MONet did not infer (Aloe's predicted objects, appendix C).
        """
        return self.decoder(latents).recon

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        """Per-video ``loss`` (per frame), ``mse``; with ground truth ``fg_ari`` / ``ari`` per frame, averaged."""
        video = batch["video"]
        b, t = video.shape[:2]
        frames = self.frames_of(video)
        out = self.run_frames(frames, sample=False)
        recon = out.recon.reshape(video.shape)
        masks = out.masks.reshape(b, t, *out.masks.shape[1:])
        terms = self.loss_terms(frames, out)
        result = {"loss": terms["loss"].expand(b), "mse": mse(recon, video, per="sample", reduction="none")}
        if "segmentation" in batch:
            seg = batch["segmentation"]
            result["fg_ari"] = _nanmean(fg_ari(seg, masks, per="frame"), dim=1)
            result["ari"] = _nanmean(ari(seg, masks, per="frame"), dim=1)
        return {k: v.float() for k, v in result.items()}

    @torch.no_grad()
    def media(self, batch: Batch) -> dict[str, Tensor]:
        video = batch["video"]
        b, t = video.shape[:2]
        out = self.run_frames(self.frames_of(video), sample=False)
        return {"video": video, "recon": out.recon.reshape(video.shape).clamp(0, 1),
                "masks": out.masks.reshape(b, t, *out.masks.shape[1:])}


def data_resolution(full_cfg: Any) -> int | None:
    """The frame size a config's data section asks for (``params.resolution`` or ``params.size``), if any."""
    params = full_cfg.data.get("params") or {}
    value = params.get("resolution", params.get("size"))
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(list(value)[0])
    except (TypeError, ValueError, IndexError):
        return None


def _nanmean(x: Tensor, dim: int) -> Tensor:
    keep = ~torch.isnan(x)
    return torch.where(keep, x, torch.zeros_like(x)).sum(dim) / keep.sum(dim)
