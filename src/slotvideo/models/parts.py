"""PARTS (Zoran et al. 2021): predict, attend, refine with transformers and slots.

**Generative model (3.1).** Every frame is independent: ``K`` slots ``z_k ~ N(0, I)`` (the *fixed* prior),
each decoded alone by a spatial broadcast decoder with a soft position embedding into a mean image ``C_k``
and a mask logit; masks are a softmax over slots and the frame likelihood is the pixel-wise mixture
``p(x | z) = prod_i sum_k m_k N(x_i; C_k, sigma_x^2 I)`` (eq. 1-2).

**Inference (3.2, Figure 4).** The posterior is ``q = N(mu, sigma)`` with ``lambda = [mu, log sigma]``
``[B, K, 2D]``. At frame ``t``:

1. *predict*: ``lambda_t^0 = P(lambda_{t-1}, a_{t-1})``: the action is tiled over slots, a transformer lets
   slots interact, a slot-wise LSTM carries each slot's dynamics (3.2.1);
2. *decode and score*: sample ``z ~ q_lambda``, decode, compute the loss ``L = -log p(x_t | z) + beta KL``
   and its gradient ``grad_lambda L`` (a detached, per-slot LayerNorm'd input: :mod:`slotvideo.nn.refinement`);
3. *attend*: a size-preserving CNN encodes ``[x_t, log p(x_t | z)]`` (3.2.2); top-down slot attention takes
   queries from ``[lambda, a_{t-1}, grad]`` and keys/values from the CNN output, softmax over slots, weighted
   mean over pixels (eq. 4-6, 3.2.3);
4. *refine*: ``lambda^n = lambda^{n-1} + MLP([attention output, lambda, grad, a_{t-1}])`` (eq. 3), ``N`` times.

**Loss (3.3).** ``L_t = -E_q log p(x_t | z) + beta KL(q_lambda_t || p)``, beta = 0.5, averaged over time
(eq. 7). Reductions as IODINE/OP3 (seed-model-details.md 14): sum over pixels, slots and latent dims,
mean over the batch. State gradients stop every ``tbptt`` frames (4.1).

Reading of the paper where it is ambiguous (docs/parts.md discusses it): the loss of an observed frame is
scored on the *refined* posterior ``lambda_t^N`` (eq. 7 conditions ``q`` on ``x_t``; IODINE weighs
refinement iterations ``linspace(0, 1, N + 1)``, so the unrefined guess gets weight 0), which costs one
extra decode per frame. Roll-out frames (``t >= burn_in`` when ``burn_in > 0``, 4.2) are scored on the
prediction ``lambda_t^0`` alone.

**Ablations (4.3, Table 2)** are switches of one :class:`PARTS.Config`: ``refinement`` (top-down slot
attention or an IODINE-style refinement network), ``prior`` (``fixed`` or ``predictive``: the prediction
``lambda_t^0`` is the prior, as OP3), ``use_actions``, ``predictor`` (``transformer_lstm`` or ``lstm``) and
``top_down`` (5.2: queries from ``lambda`` alone). ``s-iodine`` and ``op3`` are registered presets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor, nn

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, DataError, ShapeError, check_range, check_shape
from slotvideo.metrics.ari import fg_ari
from slotvideo.metrics.image import mse
from slotvideo.models.base import Output, VideoModel
from slotvideo.nn.decoders import Decoded, SpatialBroadcastDecoder
from slotvideo.nn.distributions import DiagonalGaussian, gaussian_mixture_log_likelihood
from slotvideo.nn.encoders import SizePreservingCNN
from slotvideo.nn.mlp import MLP
from slotvideo.nn.position import FourierSpatialBasis, SoftPositionEmbed
from slotvideo.nn.refinement import NormalizedGradient, differentiable, loss_gradient
from slotvideo.nn.slot_attention import InvertedAttention
from slotvideo.nn.time import scan_over_time
from slotvideo.nn.transformer import TransformerEncoder
from slotvideo.registry import register

_LOG_2PI = math.log(2 * math.pi)
_LOG_STD_RANGE = (-7.0, 4.0)  # keeps exp(log sigma) finite early in training; far outside what fits


def posterior(lam: Tensor) -> DiagonalGaussian:
    """``q_lambda`` from ``lambda = [mu, log sigma]`` ``[..., 2D]``."""
    mean, log_std = lam.chunk(2, dim=-1)
    return DiagonalGaussian(mean, log_std.clamp(*_LOG_STD_RANGE).exp())


def normalise_image(image: Tensor) -> Tensor:
    """Zero mean, unit variance over ``[..., H, W]`` (IODINE's LayerNorm of the log-likelihood input)."""
    mean = image.mean(dim=(-2, -1), keepdim=True)
    std = image.std(dim=(-2, -1), keepdim=True)
    return (image - mean) / (std + 1e-5)


class Scored(NamedTuple):
    """One decode of a posterior and its loss terms (per sample ``[B]``)."""

    decoded: Decoded
    log_likelihood: Tensor  # [B, H, W] per-pixel log p(x | z)
    nll: Tensor             # [B]
    kl: Tensor              # [B]
    loss: Tensor            # [B] nll + beta kl


# --------------------------------------------------------------------------------------------- predictor


class Predictor(nn.Module):
    """``P(lambda_{t-1}, a_{t-1}) -> lambda_t^0`` (3.2.1): [transformer over slots ->] slot-wise LSTM -> linear.

    The output is a residual on ``lambda_{t-1}`` so that "nothing moved" is the easy prediction.
    """

    def __init__(self, param_dim: int, action_dim: int, kind: str, dim: int, layers: int, heads: int,
                 hidden: int) -> None:
        super().__init__()
        self.kind = kind
        in_dim = param_dim + action_dim
        self.transformer: nn.Module | None = None
        if kind == "transformer_lstm":
            self.embed = nn.Linear(in_dim, dim)
            self.transformer = TransformerEncoder(layers, dim, heads, final_norm=True)
            in_dim = dim
        self.lstm = nn.LSTMCell(in_dim, hidden)
        self.out = nn.Linear(hidden, param_dim)
        self.hidden = hidden

    def forward(self, lam: Tensor, action: Tensor | None, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x = lam if action is None else torch.cat([lam, action[:, None].expand(-1, lam.shape[1], -1)], -1)
        if self.transformer is not None:
            x = self.transformer(self.embed(x))
        b, k = lam.shape[:2]
        h, c = self.lstm(x.reshape(b * k, -1), (state[0].reshape(b * k, -1), state[1].reshape(b * k, -1)))
        h, c = h.view(b, k, -1), c.view(b, k, -1)
        return lam + self.out(h), (h, c)


# --------------------------------------------------------------------------------------------- refiners


class TopDownSlotAttention(nn.Module):
    """The PARTS encoder ``E_phi`` (3.2.2-3.2.3): bottom-up CNN, top-down queries, additive update.

    Keys and values come from ``CNN([x_t, log p(x_t | z)])`` plus a soft position embedding (as in Slot
    Attention; the paper does not say how the attention knows where a pixel is). Queries come from
    ``LN([lambda, a_{t-1}, grad])`` (``top_down=False``: ``LN(lambda)`` only, 5.2).
    """

    def __init__(self, param_dim: int, action_dim: int, channels: list[int], kernel: int, attention_dim: int,
                 hidden: list[int], top_down: bool) -> None:
        super().__init__()
        self.top_down = top_down
        self.cnn = SizePreservingCNN(4, channels, kernel)
        self.position = SoftPositionEmbed(channels[-1])
        query_dim = param_dim + (action_dim + param_dim if top_down else 0)
        self.query_norm = nn.LayerNorm(query_dim)
        self.attention = InvertedAttention(channels[-1], query_dim, attention_dim, attention_dim)
        self.output_norm = nn.LayerNorm(attention_dim)
        self.mlp = MLP(attention_dim + 2 * param_dim + action_dim, hidden, param_dim)

    def forward(self, lam: Tensor, grad: Tensor, action: Tensor | None, frame: Tensor, log_likelihood: Tensor,
                decoded: Decoded) -> tuple[Tensor, Tensor]:
        k = lam.shape[-2]
        tiled = [] if action is None else [action[:, None].expand(-1, k, -1)]
        features = self.position(self.cnn(torch.cat([frame, normalise_image(log_likelihood)[:, None]], 1)))
        inputs = features.flatten(-2).transpose(-1, -2)                             # [B, HW, C]
        queries = torch.cat([lam, *tiled, grad], -1) if self.top_down else lam
        readout = self.attention(self.query_norm(queries), inputs)
        delta = self.mlp(torch.cat([self.output_norm(readout.updates), lam, grad, *tiled], -1))
        return delta, readout.attention


class IterativeRefinement(nn.Module):
    """IODINE's refinement network (seed-model-details.md 2.3), the "no slot attention" ablation.

    Per slot, a strided CNN reads the image, the (normalised) log-likelihood image, the slot's mask,
    mean image and mask posterior ``p(k | x_i)`` and coordinates; it is average-pooled, passed through an
    MLP, concatenated with ``[lambda, grad, a_{t-1}]`` and mapped to ``delta lambda`` (IODINE's ``ResHead``;
    its refinement LSTM is left out: with one step per frame the predictor's LSTM carries the memory).
    Simplification: IODINE's gradients w.r.t. the pixel means and masks and its leave-one-out likelihood
    are not inputs here.
    """

    def __init__(self, param_dim: int, action_dim: int, channels: list[int], kernel: int, hidden: list[int],
                 sigma: float) -> None:
        super().__init__()
        self.sigma = sigma
        self.coords = FourierSpatialBasis(0)
        self.cnn = SizePreservingCNN(3 + 1 + 1 + 3 + 1 + 2, channels, kernel, strides=2, activation="elu")
        self.pooled = MLP(channels[-1], hidden[:-1] or hidden, hidden[-1], activation="elu", final_activation="elu")
        self.head = MLP(hidden[-1] + 2 * param_dim + action_dim, hidden, param_dim, activation="elu")

    def forward(self, lam: Tensor, grad: Tensor, action: Tensor | None, frame: Tensor, log_likelihood: Tensor,
                decoded: Decoded) -> tuple[Tensor, Tensor]:
        k = lam.shape[-2]
        component = (-0.5 * ((frame[:, None] - decoded.rgb) / self.sigma).square()).sum(2, keepdim=True)
        mask_posterior = (decoded.mask_logits.log_softmax(1) + component).softmax(1)      # [B, K, 1, H, W]
        per_frame = torch.cat([frame, normalise_image(log_likelihood)[:, None]], 1)[:, None]
        spatial = torch.cat([per_frame.expand(-1, k, -1, -1, -1), decoded.masks[:, :, None], decoded.rgb,
                             mask_posterior], 2)
        features = self.cnn(self.coords(spatial)).mean(dim=(-2, -1))                      # [B, K, C]
        tiled = [] if action is None else [action[:, None].expand(-1, k, -1)]
        delta = self.head(torch.cat([self.pooled(features), lam, grad, *tiled], -1))
        return delta, mask_posterior.flatten(-3)


# --------------------------------------------------------------------------------------------- the model


@register("model", "parts")
class PARTS(VideoModel):
    """PARTS with every Table 2 switch; see the module docstring for the equations."""

    name = "parts"

    @dataclass
    class Config:
        resolution: int = field(default=64, metadata={"min": 4})
        num_slots: int = field(default=7, metadata={"min": 1})
        slot_dim: int = field(default=64, metadata={"min": 1})
        sigma_x: float = field(default=0.1, metadata={"min": 1e-6})
        beta: float = field(default=0.5, metadata={"min": 0.0})
        # ablation switches (Table 2, 5.2)
        refinement: str = field(default="slot_attention", metadata={"choices": ("slot_attention", "iodine")})
        top_down: bool = True
        prior: str = field(default="fixed", metadata={"choices": ("fixed", "predictive")})
        use_actions: bool = True
        action_dim: int = field(default=2, metadata={"min": 1})
        predictor: str = field(default="transformer_lstm", metadata={"choices": ("transformer_lstm", "lstm")})
        # inference schedule
        refine_steps: int = field(default=1, metadata={"min": 1})
        tbptt: int = field(default=4, metadata={"min": 1})
        # lambda_0: "zeros" as the paper (4: "The initial state ... is all zeros"; slots differ only by their
        # samples), or "learned": one learned [mu, log sigma] per slot, which breaks the slot symmetry at once
        initial_posterior: str = field(default="zeros", metadata={"choices": ("zeros", "learned")})
        burn_in: int = field(default=0, metadata={"min": 0})          # 0: every frame observed (4.1); 4: 4.2
        train_frames: int = field(default=0, metadata={"min": 0})     # random training windows; 0 = whole clip
        # networks
        predictor_dim: int = field(default=256, metadata={"min": 1})
        predictor_layers: int = field(default=2, metadata={"min": 1})
        predictor_heads: int = field(default=4, metadata={"min": 1})
        lstm_hidden: int = field(default=256, metadata={"min": 1})
        encoder_channels: list[int] = field(default_factory=lambda: [64, 64, 64, 64])
        encoder_kernel: int = field(default=5, metadata={"min": 1})
        attention_dim: int = field(default=128, metadata={"min": 1})
        refine_hidden: list[int] = field(default_factory=lambda: [256, 256])
        decoder_channels: list[int] = field(default_factory=lambda: [64, 64, 64, 64])
        decoder_kernel: int = field(default=5, metadata={"min": 1})
        decoder_broadcast: Optional[int] = None                        # None: full resolution, stride-1 convs

    def __init__(self, cfg: "PARTS.Config | None" = None) -> None:
        super().__init__()
        cfg = self.configure(cfg)
        p, a = 2 * cfg.slot_dim, cfg.action_dim if cfg.use_actions else 0
        self.param_dim, self.used_action_dim = p, a
        self.initial_lambda: nn.Parameter | None = None
        if cfg.initial_posterior == "learned":  # mu ~ N(0, 1) per slot, log sigma 0
            self.initial_lambda = nn.Parameter(torch.cat([torch.randn(cfg.num_slots, cfg.slot_dim),
                                                          torch.zeros(cfg.num_slots, cfg.slot_dim)], -1))
        self.predictor = Predictor(p, a, cfg.predictor, cfg.predictor_dim, cfg.predictor_layers,
                                   cfg.predictor_heads, cfg.lstm_hidden)
        self.grad_norm = NormalizedGradient(p)
        if cfg.refinement == "slot_attention":
            self.refiner: nn.Module = TopDownSlotAttention(p, a, list(cfg.encoder_channels), cfg.encoder_kernel,
                                                           cfg.attention_dim, list(cfg.refine_hidden), cfg.top_down)
        else:
            self.refiner = IterativeRefinement(p, a, list(cfg.encoder_channels), cfg.encoder_kernel,
                                               list(cfg.refine_hidden), cfg.sigma_x)
        self.decoder = SpatialBroadcastDecoder(cfg.slot_dim, cfg.resolution, 3, list(cfg.decoder_channels),
                                               cfg.decoder_kernel, cfg.decoder_broadcast, position="soft")

    @staticmethod
    def validate(cfg: "PARTS.Config") -> None:
        for key in ("resolution", "num_slots", "slot_dim", "action_dim", "refine_steps", "tbptt", "predictor_dim",
                    "predictor_layers", "predictor_heads", "lstm_hidden", "encoder_kernel", "attention_dim",
                    "decoder_kernel"):
            check_range(getattr(cfg, key), f"model.{key}", low=1, integer=True)
        check_range(cfg.burn_in, "model.burn_in", low=0, integer=True)
        check_range(cfg.train_frames, "model.train_frames", low=0, integer=True)
        check_range(cfg.sigma_x, "model.sigma_x", low=1e-6)
        check_range(cfg.beta, "model.beta", low=0.0)
        for key in ("encoder_channels", "decoder_channels", "refine_hidden"):
            if not list(getattr(cfg, key)):
                raise ConfigError(f"model.{key} must name at least one layer")
        if cfg.predictor == "transformer_lstm" and cfg.predictor_dim % cfg.predictor_heads:
            raise ConfigError(f"model.predictor_dim ({cfg.predictor_dim}) must be divisible by "
                              f"model.predictor_heads ({cfg.predictor_heads})")
        if 0 < cfg.train_frames <= cfg.burn_in:
            raise ConfigError(f"model.train_frames ({cfg.train_frames}) must exceed model.burn_in ({cfg.burn_in})")

    @classmethod
    def check_config(cls, model_cfg: "PARTS.Config", full_cfg: Any) -> None:
        cls.validate(model_cfg)
        params = full_cfg.data.get("params", {}) if "data" in full_cfg else {}
        res = params.get("resolution") if params else None
        if res is not None and int(res) != model_cfg.resolution:
            raise ConfigError(f"model.resolution ({model_cfg.resolution}) must equal data.params.resolution ({res})")

    # ------------------------------------------------------------------ generative model (3.1, 3.3)
    def prior_for(self, lam0: Tensor) -> DiagonalGaussian:
        """``N(0, I)`` (fixed, independent of time) or the prediction ``q_{lambda_t^0}`` (OP3's predictive prior)."""
        if self.cfg.prior == "fixed":
            return DiagonalGaussian.standard(lam0[..., : self.cfg.slot_dim])
        return posterior(lam0)

    def score(self, lam: Tensor, frame: Tensor, prior: DiagonalGaussian) -> Scored:
        """Sample ``z ~ q_lambda``, decode, and the per-sample loss ``-log p(x | z) + beta KL(q || prior)`` (eq. 7)."""
        q = posterior(lam)
        decoded = self.decoder(q.rsample())
        log_likelihood = gaussian_mixture_log_likelihood(frame, decoded.rgb, mask_logits=decoded.mask_logits,
                                                         sigma=self.cfg.sigma_x)
        nll = -log_likelihood.sum(dim=(-2, -1))
        kl = q.kl(prior).sum(dim=(-2, -1))
        return Scored(decoded, log_likelihood, nll, kl, nll + self.cfg.beta * kl)

    # ------------------------------------------------------------------ inference (3.2)
    def refine(self, lam: Tensor, frame: Tensor, action: Tensor | None, prior: DiagonalGaussian
               ) -> tuple[Tensor, Tensor, list[Scored]]:
        """``N`` refinement steps (eq. 3) from ``lambda_t^0``; returns ``lambda_t^N``, the last attention and
        the scores of ``lambda^1..lambda^N`` (that of ``lambda^0`` gets weight 0 and is not returned)."""
        scores: list[Scored] = []
        attention = lam.new_zeros(0)
        for n in range(self.cfg.refine_steps):
            with torch.enable_grad():  # the gradient input exists in no_grad evaluation too
                lam_g = differentiable(lam)
                scored = self.score(lam_g, frame, prior)
                grad = loss_gradient(scored.loss.sum(), lam_g)
            if n > 0:  # lambda^n is scored for its gradient anyway: reuse it as a loss term
                scores.append(scored)
            delta, attention = self.refiner(lam, self.grad_norm(grad), action, frame,
                                            scored.log_likelihood.detach(), scored.decoded)
            lam = lam + delta
        scores.append(self.score(lam, frame, prior))
        return lam, attention, scores

    def step_weights(self) -> list[float]:
        """IODINE's ``linspace(0, 1, N + 1)`` iteration weights of ``lambda^1..lambda^N``, normalised to sum 1."""
        n = self.cfg.refine_steps
        return [i / (n * (n + 1) / 2) for i in range(1, n + 1)]

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
        """Posterior parameters (zeros, or the learned per-slot ``lambda_0``) and all-zero recurrent cores."""
        k = self.cfg.num_slots
        if self.initial_lambda is not None:
            lam = self.initial_lambda.to(device=device, dtype=dtype).expand(batch_size, -1, -1)
        else:
            lam = torch.zeros(batch_size, k, self.param_dim, device=device, dtype=dtype)
        h = torch.zeros(batch_size, k, self.cfg.lstm_hidden, device=device, dtype=dtype)
        return lam, h, h.clone()

    def unroll(self, video: Tensor, actions: Tensor | None, observe: int, steps: int | None = None) -> dict[str, Tensor]:
        """Predict-decode-refine over time. Frames ``t < observe`` are observed (refined); later ones are predicted.

        ``video [B, T, 3, H, W]``; ``actions [B, T', A]`` with ``a_t`` taken after frame ``t`` (``T' >= T`` for
        roll-outs past the video). ``steps`` (default ``T``) is the number of frames to produce; frames past
        the video are scored against nothing (their loss terms are 0). Returns per-frame tensors ``[B, T, ...]``.
        """
        b, t = video.shape[:2]
        steps = t if steps is None else steps
        prev_actions = self.previous_actions(actions, b, steps, video)
        weights = self.step_weights()
        tbptt = self.cfg.tbptt

        def step(state: tuple[Any, ...], inputs: dict[str, Tensor] | None) -> tuple[tuple[Any, ...], dict[str, Tensor]]:
            lam, h, c, index = state
            if index > 0 and index % tbptt == 0 and torch.is_grad_enabled():
                lam, h, c = lam.detach(), h.detach(), c.detach()   # truncated BPTT boundary
            action = None if prev_actions is None else prev_actions[:, index]
            lam0, (h, c) = self.predictor(lam, action, (h, c))
            prior = self.prior_for(lam0)
            frame = video[:, index] if index < t else None
            if index < observe:
                lam, attention, scores = self.refine(lam0, frame, action, prior)
                loss = sum(w * s.loss for w, s in zip(weights, scores))
                last = scores[-1]
            else:
                lam, attention = lam0, lam0.new_zeros(b, self.cfg.num_slots, video.shape[-2] * video.shape[-1])
                last = self.score(lam0, frame if frame is not None else video[:, -1], prior)
                loss = last.loss if frame is not None else torch.zeros_like(last.loss)
            out = {"loss": loss, "nll": last.nll, "kl": last.kl, "masks": last.decoded.masks,
                   "recon": last.decoded.recon, "slots": lam[..., : self.cfg.slot_dim], "attention": attention,
                   "params": lam}
            return (lam, h, c, index + 1), out

        init = (*self.initial_state(b, video.device, video.dtype), 0)
        _, outputs = scan_over_time(step, init, steps=steps)
        return outputs

    def previous_actions(self, actions: Tensor | None, batch_size: int, steps: int, video: Tensor) -> Tensor | None:
        """``a_{t-1}`` for every produced frame ``t`` (``a_{-1} = 0``), or None when actions are switched off."""
        if not self.cfg.use_actions:
            return None
        if actions is None:
            raise DataError("model.use_actions is true but the batch has no 'actions'; set model.use_actions=false "
                            "for datasets without actions")
        check_shape(actions, f"{batch_size} T {self.cfg.action_dim}", "actions")
        if actions.shape[1] < steps - 1:
            raise ShapeError(f"actions must cover {steps - 1} steps to produce {steps} frames, got {list(actions.shape)}")
        zero = actions.new_zeros(batch_size, 1, self.cfg.action_dim)
        return torch.cat([zero, actions[:, : steps - 1]], 1).to(video.dtype)

    def check_video(self, video: Tensor) -> None:
        res = self.cfg.resolution
        check_shape(video, f"B T 3 {res} {res}", "video")
        if not video.dtype.is_floating_point:
            raise ShapeError(f"video must be float in [0, 1], got dtype {video.dtype}")

    # ------------------------------------------------------------------ the VideoModel contract
    def forward(self, batch: Batch) -> Output:
        video = batch["video"]
        actions = batch["actions"] if "actions" in batch and self.cfg.use_actions else None
        window = self.cfg.train_frames
        if self.training and 0 < window < video.shape[1]:
            start = int(torch.randint(0, video.shape[1] - window + 1, ()))
            video = video[:, start:start + window]
            actions = None if actions is None else actions[:, start:start + window]
        self.check_video(video)
        out = self.unroll(video, actions, self.observed_frames(video.shape[1]))
        loss = out["loss"].mean()
        terms = {"nll": out["nll"].mean().detach(), "kl": out["kl"].mean().detach(),
                 "mse": (out["recon"] - video).square().mean().detach()}
        return Output(loss=loss, terms=terms, slots=out["slots"], masks=out["masks"], recon=out["recon"],
                      extra={"attention": out["attention"], "kl_per_frame": out["kl"], "loss_per_frame": out["loss"],
                             "params": out["params"]})

    def observed_frames(self, t: int) -> int:
        """The burn-in regime (4.2) observes ``burn_in`` frames and predicts the rest; otherwise all are observed."""
        return min(self.cfg.burn_in, t) if self.cfg.burn_in > 0 else t

    @torch.no_grad()
    def segment(self, video: Tensor, actions: Tensor | None = None) -> Tensor:
        """Soft masks ``[B, T, K, H, W]`` of ``video [B, T, 3, H, W]``, every frame observed.

        Without ``actions`` an action-conditioned model is given zero actions (a static camera).
        """
        self.check_video(video)
        return self.unroll(video, self.default_actions(actions, video, video.shape[1]), video.shape[1])["masks"]

    def default_actions(self, actions: Tensor | None, video: Tensor, steps: int) -> Tensor | None:
        if not self.cfg.use_actions:
            return None
        if actions is None:
            return video.new_zeros(video.shape[0], steps, self.cfg.action_dim)
        return actions

    @torch.no_grad()
    def rollout(self, video: Tensor, steps: int, actions: Tensor | None = None) -> Output:
        """Observe ``video [B, T, 3, H, W]``, then predict ``steps`` frames with the predictor alone (4.2).

        ``actions [B, T + steps - 1, A]`` (``a_t`` after frame ``t``); zeros when not given. Returns an
        :class:`Output` with ``slots``, ``masks [B, steps, K, H, W]`` and ``recon [B, steps, 3, H, W]``.
        """
        check_range(steps, "rollout steps", low=1, integer=True)
        self.check_video(video)
        t = video.shape[1]
        out = self.unroll(video, self.default_actions(actions, video, t + steps), t, steps=t + steps)
        return Output(loss=torch.zeros((), device=video.device), slots=out["slots"][:, t:],
                      masks=out["masks"][:, t:], recon=out["recon"][:, t:])

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        """Per sample: ``loss``, ``mse``; with ground truth ``fg_ari`` (last frame, as the paper) and
        ``fg_ari_video`` (all frames, slots must keep their objects); in the burn-in regime ``rollout_mse``."""
        out = self(batch)
        video = batch["video"]
        res = {"loss": out.extra["loss_per_frame"].mean(1), "kl": out.extra["kl_per_frame"].mean(1),
               "mse": mse(out.recon, video, per="sample", reduction="none").float()}
        observed = self.observed_frames(video.shape[1])
        if observed < video.shape[1]:
            res["rollout_mse"] = mse(out.recon[:, observed:], video[:, observed:], per="sample",
                                     reduction="none").float()
        if "segmentation" in batch:
            seg = batch["segmentation"]
            res["fg_ari"] = fg_ari(seg[:, -1], out.masks[:, -1], per="frame").float()
            res["fg_ari_video"] = fg_ari(seg, out.masks, per="video").float()
        return res

    @torch.no_grad()
    def media(self, batch: Batch) -> dict[str, Tensor]:
        out = self(batch)
        return {"video": batch["video"], "recon": out.recon.clamp(0, 1), "masks": out.masks}


@register("model", "s-iodine")
class SIODINE(PARTS):
    """Sequential IODINE as ablated in Table 2: refinement network, fixed prior, no actions, LSTM predictor."""

    name = "s-iodine"

    @dataclass
    class Config(PARTS.Config):
        refinement: str = field(default="iodine", metadata={"choices": ("slot_attention", "iodine")})
        use_actions: bool = False
        predictor: str = field(default="lstm", metadata={"choices": ("transformer_lstm", "lstm")})


@register("model", "op3")
class OP3(PARTS):
    """OP3 as ablated in Table 2: refinement network, predictive prior, actions, LSTM predictor."""

    name = "op3"

    @dataclass
    class Config(PARTS.Config):
        refinement: str = field(default="iodine", metadata={"choices": ("slot_attention", "iodine")})
        prior: str = field(default="predictive", metadata={"choices": ("fixed", "predictive")})
        predictor: str = field(default="lstm", metadata={"choices": ("transformer_lstm", "lstm")})
