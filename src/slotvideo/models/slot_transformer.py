"""Slot Transformer (Faulkner & Zoran 2022): encode, decode, iterate over a whole video at once.

**Encode (3.1, A.1-A.4).** A ResNet encodes every frame once, ``e = f_ResNet(x)`` with a Fourier spatial
basis concatenated. The context ``c`` is ``T x K`` slots, initialised by ONE ``N(0, 1)`` sample of size
``K x C`` tiled over time (symmetry is broken across slots, slots keep their role across frames). Each
iteration: queries ``q = MLP(c)``, one inverted-attention readout ``a`` over the pixels of the same frame
(softmax over slots, weighted mean; batched over time), a GRU-style gate ``c' = LN(gate(c, a))``, then on
the FIRST iteration only the context transformer ``c'' = T_context(c')``: a GTrXL over time applied to each
slot separately (:mod:`slotvideo.nn.slot_time`).

**Decode (3.2, A.5).** ``lambda = W c''``, ``mu, log sigma = lambda``, ``z ~ N(mu, sigma)``; a spatial
broadcast decoder (Fourier positions) maps every ``z_{t,k}`` to an RGB mean and a mask logit; the frame
likelihood is the pixel-wise Gaussian mixture over slots.

**Iterate (3.3, A.6, Algorithm 1).** ``lambda_{k+1} = lambda_k + f_iterative(z_k, x_k, eps_x, eps_z)``
with Marino's errors ``eps_x = (x - mu_x) / sigma_x^2``, ``eps_z = (z - mu_z) / sigma_z^2``, then
``c_{k+1} = LN(MLP(lambda_{k+1}))`` seeds the next encode. Parameters are shared across iterations and the
ELBO is summed over them.

**Conditional prior (3.3, 3.6).** The first ``p = T - prior_steps`` steps of the first iteration's gated
context go through the context transformer (the *prior context*); their ``W lambda`` is the prior of
those steps (``prior_head: separate``, not in the paper: a linear map of their own instead of ``W``). A
learned token + self-attention over each slot's prior context gives the initial state of an autoregressive
Gaussian that predicts the prior of the remaining steps from its own samples. The KL of every iteration is
taken against this prior; :meth:`SlotTransformer.rollout` samples it (Figure 7).

**Losses (eq. 3).** ``gen_weight * L_gen + question_weight * L_question + object_weight * L_object +
qa_weight * L_QA``; the heads and auxiliary losses are in :mod:`slotvideo.models.slot_transformer_heads`.

Readings of the paper where it is silent or ambiguous (docs/slot-transformer.md lists them):

* Algorithm 1 is followed literally: the refined ``lambda_{k+1}`` only seeds ``c_{k+1}``; iteration
  ``k+1``'s posterior is ``W c''_{k+1}`` again, so on later iterations new information enters through the
  slot-attention readout (as 3.1.2 says) and through the refined context.
* ``f_iterative`` is one linear layer per slot (A.6: "a Linear network of size slots x slot-size"). Its
  pixel inputs are brought to slot vectors by average-pooling, per slot, the frame and the error
  ``eps_x`` weighted by the slot's mixture responsibility to an ``error_grid x error_grid`` grid; the errors
  are stop-gradient inputs LayerNorm'd per slot (:class:`~slotvideo.nn.refinement.NormalizedGradient`),
  as IODINE does with its gradient inputs. ``mu_z, sigma_z`` are the prior's (``eps_z`` is then the
  gradient of ``-log p(z)``); in deterministic mode the reference is ``N(0, 1)``.
* Deterministic mode (section 5's ablation): ``z = mu`` and no KL term (there is no distribution).
* Loss reductions as IODINE (seed-model-details.md 14): sums over pixels, slots, latent dims and time,
  mean over the batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.data.batch import Batch
from slotvideo.data.cater import TASK_CLASSES as CATER_TASK_CLASSES, task_classes
from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape
from slotvideo.metrics.ari import fg_ari
from slotvideo.metrics.average_precision import RANKING, ranking
from slotvideo.metrics.cater import grid_l1_distance, top_k_accuracy
from slotvideo.metrics.clevrer import padded_option_accuracy
from slotvideo.models.base import Output, VideoModel
from slotvideo.models.reasoning_task import MIXED_KEY, MixedLogits, choice_pairs, mixed_parts, scatter_pairs
from slotvideo.models.slot_transformer_heads import ObjectPrediction, QuestionPrediction, TaskHead
from slotvideo.nn.autoregressive import AutoregressiveGaussian, SummaryToken, gaussian
from slotvideo.nn.decoders import Decoded, SpatialBroadcastDecoder, check_broadcast_config
from slotvideo.nn.distributions import DiagonalGaussian, gaussian_mixture_log_likelihood
from slotvideo.nn.encoders import ResNet
from slotvideo.nn.gates import GRUGate
from slotvideo.nn.mlp import MLP
from slotvideo.nn.position import FourierSpatialBasis
from slotvideo.nn.refinement import NormalizedGradient
from slotvideo.nn.slot_attention import SLOT_INITS, InvertedAttention, PreparedInputs
from slotvideo.nn.slot_time import SlotTimeLSTM, SlotTimeTransformer
from slotvideo.registry import register

ANSWER_VOCAB_SIZE = 22  # CLEVRER: 21 descriptive answers + padding id 0 (slotvideo.data.vocab)
TASKS = ("none", "clevrer", "classification", "localization")


def has_key(batch: Batch, key: str) -> bool:
    """Whether ``batch`` holds ``key`` (``Batch.__getitem__`` raises DataError, not KeyError)."""
    return key in tuple(batch)


class Iteration(NamedTuple):
    """One encode-decode step: posterior params, sample, decoded frames and the per-sample-per-step losses."""

    lam: Tensor            # [B, T, K, 2Z]
    z: Tensor              # [B, T, K, Z]
    decoded: Decoded
    nll: Tensor            # [B, T]
    kl: Tensor             # [B, T]
    attention: Tensor      # [B, T, K, N]


class Encoded(NamedTuple):
    features: Tensor       # [B, T, E, h, w]: ResNet output (first/last frame embeddings of the head)
    prepared: PreparedInputs


def data_classes(name: str | None, params: Any) -> int | None:
    """How many classes the configured dataset's labels have, when the config says (else ``None``)."""
    if name in ("cater", "cater-mini"):
        task = params.get("task", "localize")
        return task_classes(task, int(params.get("grid", 6))) if task in CATER_TASK_CLASSES else None
    if name == "bouncing-balls":  # task locate: the target ball's cell of a grid x grid grid
        return int(params.get("grid", 6)) ** 2 if params.get("task") == "locate" else None
    return int(params["num_classes"]) if params.get("num_classes") is not None else None


def _grid_after(resolution: int, strides: list[int]) -> int:
    for s in strides:  # 3x3 'same' convs: ceil(H / s)
        resolution = -(-resolution // s)
    return resolution


@register("model", "slot-transformer")
class SlotTransformer(VideoModel):
    """The Slot Transformer with every ablation of sections 4-5 and C.1 as a Config switch."""

    name = "slot-transformer"

    @dataclass
    class Config:
        resolution: int = field(default=64, metadata={"min": 4})
        max_frames: int = field(default=64, metadata={"min": 1})          # longest clip (time encodings)
        num_slots: int = field(default=8, metadata={"min": 1})
        slot_dim: int = field(default=64, metadata={"min": 1})            # C_context = latent size s
        iterations: int = field(default=4, metadata={"min": 1})
        generative: bool = True                                           # False: z = mu, no KL (section 5)
        sigma_x: float = field(default=0.1, metadata={"min": 1e-6})
        # encoder (A.1) and readout (A.2, A.3)
        encoder_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
        encoder_blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
        encoder_strides: list[int] = field(default_factory=lambda: [2, 2, 2, 1])
        encoder_norm: str = field(default="group", metadata={"choices": ("group", "layer", "none")})
        spatial_frequencies: int = field(default=4, metadata={"min": 0})
        query_mlp: list[int] = field(default_factory=lambda: [128, 128])
        gate_bias: float = 0.0
        # not in the paper (switches to test why slots fail to segment; docs/slot-transformer.md):
        # initial_context "gaussian" / "learned" is slot attention's learned Gaussian / SAVi's K learned slots,
        # tiled over time like the paper's sample; readout_steps > 1 repeats readout + gate, as slot attention does
        initial_context: str = field(default="sampled", metadata={"choices": ("sampled", *SLOT_INITS)})
        readout_steps: int = field(default=1, metadata={"min": 1})
        # context transformer (A.4, Table 5) or the LSTM of C.1
        context_model: str = field(default="transformer", metadata={"choices": ("transformer", "lstm")})
        context_layers: int = field(default=8, metadata={"min": 1})
        context_heads: int = field(default=4, metadata={"min": 1})
        context_attention_dim: int = field(default=128, metadata={"min": 1})
        context_mlp: list[int] = field(default_factory=lambda: [64, 128])
        time_frequencies: int = field(default=8, metadata={"min": 1})
        attn_dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
        lstm_hidden: int = field(default=256, metadata={"min": 1})
        lstm_layers: int = field(default=4, metadata={"min": 1})
        context_every_iteration: bool = False                             # paper: first iteration only
        # decoder (A.5)
        decoder_channels: list[int] = field(default_factory=lambda: [64, 64, 64, 64])
        decoder_kernel: int = field(default=3, metadata={"min": 1})
        decoder_frequencies: int = field(default=4, metadata={"min": 0})
        # not in the paper: > 0 broadcasts at this side and upsamples with stride-2 transposed convs (slot
        # attention's decoder; the first log2(resolution / side) decoder_channels); 0: full resolution (A.5)
        decoder_broadcast_resolution: int = field(default=0, metadata={"min": 0})
        # iterative inference (A.6)
        refine_mlp: list[int] = field(default_factory=lambda: [128])
        error_grid: int = field(default=4, metadata={"min": 1})
        # conditional prior (3.3)
        prior_steps: int = field(default=8, metadata={"min": 1})          # T - p steps predicted
        prior_hidden: int = field(default=128, metadata={"min": 1})
        prior_heads: int = field(default=4, metadata={"min": 1})
        # not in the paper, which leaves it open: the prior context's parameters through W itself (shared) or
        # through a linear map of its own (separate), so that the prior's width does not set the posterior's
        prior_head: str = field(default="shared", metadata={"choices": ("shared", "separate")})
        # auxiliary losses (3.4)
        object_prediction: bool = True
        object_slot_counts: list[int] = field(default_factory=lambda: [1, 2, 3])
        object_masked_steps: int = field(default=0, metadata={"min": 0})  # 0: the last half of the clip
        object_target_fraction: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
        question_prediction: bool = True
        question_hidden: int = field(default=128, metadata={"min": 1})
        # task head (3.5, A.7, Table 6)
        task: str = field(default="none", metadata={"choices": TASKS})
        num_classes: int = field(default=36, metadata={"min": 1})
        question_vocab_size: int = field(default=256, metadata={"min": 2})
        choice_vocab_size: int = field(default=256, metadata={"min": 2})
        head_embed_dim: int = field(default=64, metadata={"min": 1})
        head_layers: int = field(default=8, metadata={"min": 1})
        head_heads: int = field(default=4, metadata={"min": 1})
        head_attention_dim: int = field(default=128, metadata={"min": 1})
        head_mlp: list[int] = field(default_factory=lambda: [128, 128])
        head_final_mlp: list[int] = field(default_factory=lambda: [2048, 2048])
        head_mask_grid: int = field(default=4, metadata={"min": 1})
        head_frames: bool = True   # not in the paper: false drops the first/last frame tokens (the head sees slots only)
        grid: int = field(default=6, metadata={"min": 2})                 # localization: grid x grid cells
        # eq. 3
        gen_weight: float = field(default=1.0, metadata={"min": 0.0})
        kl_warmup_steps: int = field(default=0, metadata={"min": 0})      # not in the paper: KL weight 0 -> 1
        log_sigma_bias: float = 0.0    # not in the paper: initial log sigma bias of W and the prior head (-3: ~0.05)
        question_weight: float = field(default=1.0, metadata={"min": 0.0})
        object_weight: float = field(default=1.0, metadata={"min": 0.0})
        qa_weight: float = field(default=1.0, metadata={"min": 0.0})

    def __init__(self, cfg: "SlotTransformer.Config | None" = None) -> None:
        super().__init__()
        cfg = self.configure(cfg)
        s, z = cfg.slot_dim, cfg.slot_dim
        self.encoder = ResNet(3, cfg.encoder_channels, cfg.encoder_blocks, cfg.encoder_strides, norm=cfg.encoder_norm)
        self.spatial = FourierSpatialBasis(cfg.spatial_frequencies)
        feat = cfg.encoder_channels[-1] + self.spatial.extra_channels
        self.query_mlp = MLP(s, cfg.query_mlp[:-1], cfg.query_mlp[-1])
        self.readout = InvertedAttention(feat, cfg.query_mlp[-1], key_dim=s, value_dim=s)
        self.gate = GRUGate(s, cfg.gate_bias)
        self.gate_norm = nn.LayerNorm(s)
        self.slot_init = (SLOT_INITS[cfg.initial_context](s, cfg.num_slots) if cfg.initial_context != "sampled"
                          else None)
        if cfg.context_model == "transformer":
            self.context: nn.Module = SlotTimeTransformer(
                s, cfg.context_layers, cfg.context_heads, cfg.context_attention_dim, cfg.context_mlp,
                cfg.time_frequencies, cfg.max_frames, cfg.attn_dropout)
        else:
            self.context = SlotTimeLSTM(s, cfg.lstm_hidden, cfg.lstm_layers, cfg.max_frames)
        self.to_lambda = nn.Linear(s, 2 * z)
        self.to_prior_lambda = nn.Linear(s, 2 * z) if cfg.prior_head == "separate" else None
        if cfg.log_sigma_bias:
            with torch.no_grad():
                for head in (self.to_lambda, self.to_prior_lambda):
                    if head is not None:
                        head.bias[z:].fill_(cfg.log_sigma_bias)
        self.decoder = SpatialBroadcastDecoder(z, cfg.resolution, 3, cfg.decoder_channels, cfg.decoder_kernel,
                                               cfg.decoder_broadcast_resolution or None, position="fourier",
                                               num_frequencies=cfg.decoder_frequencies)
        # iterative inference
        pooled = 3 * cfg.error_grid ** 2
        self.norm_eps_x = NormalizedGradient(pooled)
        self.norm_eps_z = NormalizedGradient(z)
        self.f_iterative = nn.Linear(z + z + pooled + pooled, 2 * z)
        self.lambda_to_context = nn.Sequential(MLP(2 * z, cfg.refine_mlp, s), nn.LayerNorm(s))
        # conditional prior
        self.prior_summary = SummaryToken(s, cfg.prior_heads)
        self.prior_ar = AutoregressiveGaussian(z, s, cfg.prior_hidden)
        # auxiliary losses and heads
        self.object_loss = (ObjectPrediction(z, cfg.object_slot_counts, cfg.object_target_fraction)
                            if cfg.object_prediction else None)
        self.kl_scale = 1.0  # set by on_step (model.kl_warmup_steps)
        self.head: TaskHead | None = None
        self.question_loss: QuestionPrediction | None = None
        if cfg.task != "none":
            grid = _grid_after(cfg.resolution, cfg.encoder_strides)
            outputs = ({"descriptive": ANSWER_VOCAB_SIZE, "multiple_choice": 1} if cfg.task == "clevrer"
                       else {"classes": cfg.num_classes})
            self.head = TaskHead(z, cfg.encoder_channels[-1] * grid * grid, outputs, cfg.head_embed_dim,
                                 cfg.head_layers, cfg.head_heads, cfg.head_attention_dim, cfg.head_mlp,
                                 cfg.head_final_mlp, cfg.question_vocab_size if cfg.task == "clevrer" else 0,
                                 cfg.choice_vocab_size if cfg.task == "clevrer" else 0, cfg.head_mask_grid,
                                 cfg.attn_dropout, cfg.head_frames)
            if cfg.task == "clevrer" and cfg.question_prediction:
                self.question_loss = QuestionPrediction(z, cfg.question_vocab_size, ANSWER_VOCAB_SIZE + 2,
                                                        cfg.head_embed_dim, cfg.head_heads,
                                                        hidden=cfg.question_hidden)

    def on_step(self, step: int) -> None:
        """``model.kl_warmup_steps`` > 0: the KL term's weight rises linearly from 0 to 1 over that many steps."""
        warmup = self.cfg.kl_warmup_steps
        self.kl_scale = min(1.0, step / warmup) if warmup else 1.0

    # ------------------------------------------------------------------ config
    @staticmethod
    def validate(cfg: "SlotTransformer.Config") -> None:
        stages = {len(cfg.encoder_channels), len(cfg.encoder_blocks), len(cfg.encoder_strides)}
        if len(stages) != 1:
            raise ConfigError("model.encoder_channels, model.encoder_blocks and model.encoder_strides must have one "
                              f"entry per stage, got {len(cfg.encoder_channels)}, {len(cfg.encoder_blocks)}, "
                              f"{len(cfg.encoder_strides)}")
        for key in ("query_mlp", "decoder_channels", "context_mlp", "refine_mlp", "head_mlp", "head_final_mlp",
                    "object_slot_counts"):
            if not list(getattr(cfg, key)):
                raise ConfigError(f"model.{key} must name at least one size")
        if cfg.decoder_broadcast_resolution:
            check_broadcast_config(cfg.resolution, cfg.decoder_broadcast_resolution, len(cfg.decoder_channels),
                                   "model.decoder_broadcast_resolution")
        if cfg.context_attention_dim % cfg.context_heads:
            raise ConfigError(f"model.context_attention_dim ({cfg.context_attention_dim}) must be divisible by "
                              f"model.context_heads ({cfg.context_heads})")
        if cfg.head_attention_dim % cfg.head_heads:
            raise ConfigError(f"model.head_attention_dim ({cfg.head_attention_dim}) must be divisible by "
                              f"model.head_heads ({cfg.head_heads})")
        if cfg.slot_dim % cfg.prior_heads:
            raise ConfigError(f"model.slot_dim ({cfg.slot_dim}) must be divisible by model.prior_heads "
                              f"({cfg.prior_heads})")
        if cfg.task == "clevrer" and cfg.head_embed_dim % cfg.head_heads:
            raise ConfigError(f"model.head_embed_dim ({cfg.head_embed_dim}) must be divisible by model.head_heads "
                              f"({cfg.head_heads}) for question prediction")
        for c in cfg.object_slot_counts:
            check_range(c, "model.object_slot_counts[i]", low=1, high=cfg.num_slots, integer=True)

    @classmethod
    def check_config(cls, model_cfg: "SlotTransformer.Config", full_cfg: Any) -> None:
        cls.validate(model_cfg)
        params = full_cfg.data.get("params", {}) if "data" in full_cfg else {}
        for key in ("size", "resolution"):  # real-format loaders say size, generators resolution
            size = params.get(key) if params else None
            if size is None:
                continue
            sizes = [int(size)] * 2 if isinstance(size, int) else [int(v) for v in size]
            if sizes != [model_cfg.resolution] * 2:
                raise ConfigError(f"data.params.{key} ({sizes}) must be model.resolution "
                                  f"({model_cfg.resolution}) on both axes")
        frames = params.get("num_frames") if params else None
        if frames is not None and int(frames) > model_cfg.max_frames:
            raise ConfigError(f"data.params.num_frames ({frames}) must be <= model.max_frames ({model_cfg.max_frames})")
        classes = data_classes(full_cfg.data.get("name") if "data" in full_cfg else None, params or {})
        if model_cfg.task in ("classification", "localization") and classes not in (None, model_cfg.num_classes):
            raise ConfigError(f"model.num_classes ({model_cfg.num_classes}) must be the {classes} classes of the "
                              f"data (data.params.task / data.params.num_classes)")

    def check_video(self, video: Tensor) -> None:
        res = self.cfg.resolution
        check_shape(video, f"B T 3 {res} {res}", "video")
        if not video.dtype.is_floating_point:
            raise ShapeError(f"video must be float in [0, 1], got dtype {video.dtype}")
        if video.shape[1] > self.cfg.max_frames:
            raise ShapeError(f"video has {video.shape[1]} frames, more than model.max_frames={self.cfg.max_frames}")

    # ------------------------------------------------------------------ encode (3.1)
    def encode_frames(self, video: Tensor) -> Encoded:
        """ResNet once per frame, Fourier basis concatenated, pixels as readout inputs ``[B, T, N, E]``."""
        features = self.encoder(video)
        pixels = self.spatial(features).flatten(-2).transpose(-1, -2)
        return Encoded(features, self.readout.prepare(pixels))

    def initial_context(self, batch: int, steps: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """``c_0``: one ``N(0, 1)`` sample of ``K x C`` per video (or ``model.initial_context``'s), tiled over time."""
        if self.slot_init is None:
            first = torch.randn(batch, 1, self.cfg.num_slots, self.cfg.slot_dim, device=device, dtype=dtype)
        else:
            first = self.slot_init((batch, 1)).to(dtype)
        return first.expand(-1, steps, -1, -1)

    def gated_readout(self, context: Tensor, prepared: PreparedInputs) -> tuple[Tensor, Tensor]:
        """``c' = LN(gate(c, SlotAttention(MLP(c), e)))``, batched over time; also the attention ``[B, T, K, N]``.

        ``model.readout_steps`` > 1 repeats the step on its own output (the paper reads out once).
        """
        for _ in range(self.cfg.readout_steps):
            readout = self.readout.attend(self.query_mlp(context), prepared)
            context = self.gate_norm(self.gate(context, readout.updates))
        return context, readout.attention

    # ------------------------------------------------------------------ conditional prior (3.3)
    def observed_steps(self, steps: int) -> int:
        """``p``: the prior sees the first ``p = T - prior_steps`` steps (at least one)."""
        return max(1, steps - self.cfg.prior_steps)

    def conditional_prior(self, gated: Tensor, future: int, sample: bool = True) -> tuple[Tensor, Tensor]:
        """Prior params ``[B, p + future, K, 2Z]`` from the gated context of the observed steps ``[B, p, K, C]``.

        Also returns the autoregressive samples ``[B, future, K, Z]`` (empty when ``future == 0``).
        """
        prior_context = self.context(gated)
        lam_observed = (self.to_prior_lambda or self.to_lambda)(prior_context)
        if future == 0:
            return lam_observed, lam_observed.new_zeros(gated.shape[0], 0, *lam_observed.shape[2:-1],
                                                        self.cfg.slot_dim)
        state = self.prior_summary(prior_context.transpose(1, 2))                      # [B, K, C]
        first = gaussian(lam_observed[:, -1]).mean                                      # [B, K, Z]
        params, z = self.prior_ar(state, first, future, sample=sample)                  # [B, K, F, .]
        return torch.cat([lam_observed, params.transpose(1, 2)], dim=1), z.transpose(1, 2)

    # ------------------------------------------------------------------ decode (3.2) and iterate (3.3)
    def decode(self, lam: Tensor, video: Tensor, prior: DiagonalGaussian | None
               ) -> tuple[Tensor, Decoded, Tensor, Tensor]:
        """Sample (or take the mean of) the posterior, decode, and the per-step ``nll``, ``kl`` ``[B, T]``."""
        posterior = gaussian(lam)
        z = posterior.rsample() if self.cfg.generative else posterior.mean
        decoded = self.decoder(z)
        log_likelihood = gaussian_mixture_log_likelihood(video, decoded.rgb, mask_logits=decoded.mask_logits,
                                                         sigma=self.cfg.sigma_x)
        nll = -log_likelihood.sum(dim=(-2, -1))
        kl = posterior.kl(prior).sum(dim=(-2, -1)) if prior is not None else torch.zeros_like(nll)
        return z, decoded, nll, kl

    def errors(self, z: Tensor, decoded: Decoded, video: Tensor, prior: DiagonalGaussian | None) -> Tensor:
        """The inputs of ``f_iterative`` per slot: ``[z, LN(eps_z), pooled x, LN(pooled eps_x)]`` (A.6)."""
        sigma2 = self.cfg.sigma_x ** 2
        x = video.unsqueeze(2)                                                          # [B, T, 1, 3, H, W]
        with torch.no_grad():
            component = -0.5 * ((x - decoded.rgb) ** 2).sum(dim=-3) / sigma2          # [B, T, K, H, W]
            responsibility = (decoded.mask_logits.squeeze(-3).log_softmax(dim=2) + component).softmax(dim=2)
            eps_x = responsibility.unsqueeze(-3) * (x - decoded.rgb) / sigma2          # [B, T, K, 3, H, W]
            seen = responsibility.unsqueeze(-3) * x
            grid = self.cfg.error_grid
            pool = lambda t: F.adaptive_avg_pool2d(t.flatten(0, 2), grid).reshape(*t.shape[:3], -1)  # noqa: E731
            eps_x, seen = pool(eps_x), pool(seen)
            mean, var = (prior.mean, prior.variance) if prior is not None else (torch.zeros_like(z), torch.ones_like(z))
            eps_z = (z - mean) / var
        return torch.cat([z, self.norm_eps_z(eps_z), seen, self.norm_eps_x(eps_x)], dim=-1)

    def refine(self, lam: Tensor, z: Tensor, decoded: Decoded, video: Tensor, prior: DiagonalGaussian | None
               ) -> tuple[Tensor, Tensor]:
        """``lambda_{k+1} = lambda_k + f_iterative(...)`` and ``c_{k+1} = LN(MLP(lambda_{k+1}))``."""
        lam_next = lam + self.f_iterative(self.errors(z, decoded, video, prior))
        return lam_next, self.lambda_to_context(lam_next)

    def infer(self, video: Tensor) -> dict[str, Any]:
        """Algorithm 1 on ``video [B, T, 3, H, W]``: every iteration's posterior, sample, decoding and losses."""
        self.check_video(video)
        b, t = video.shape[:2]
        encoded = self.encode_frames(video)
        context = self.initial_context(b, t, video.device, video.dtype)
        prior = prior_lam = None
        iterations: list[Iteration] = []
        refined: list[Tensor] = []
        for k in range(self.cfg.iterations):
            gated, attention = self.gated_readout(context, encoded.prepared)
            transformed = self.context(gated) if k == 0 or self.cfg.context_every_iteration else gated
            if k == 0 and self.cfg.generative:
                p = self.observed_steps(t)
                prior_lam, _ = self.conditional_prior(gated[:, :p], t - p)
                prior = gaussian(prior_lam)
            lam = self.to_lambda(transformed)
            z, decoded, nll, kl = self.decode(lam, video, prior)
            iterations.append(Iteration(lam, z, decoded, nll, kl, attention))
            if k + 1 < self.cfg.iterations:
                lam_next, context = self.refine(lam, z, decoded, video, prior)
                refined.append(lam_next)
        return {"iterations": iterations, "refined": refined, "features": encoded.features, "prior": prior_lam}

    # ------------------------------------------------------------------ heads (3.4, 3.5)
    def head_logits(self, last: Iteration, features: Tensor, question: Tensor | None = None,
                    choices: Tensor | None = None) -> tuple[str, Tensor]:
        """Which head output applies (``descriptive`` / ``multiple_choice`` / ``classes``) and its logits."""
        if self.head is None:
            raise ConfigError("this Slot Transformer has no task head (model.task: none)")
        if self.cfg.task == "clevrer":
            if question is None:
                raise ShapeError("a CLEVRER Slot Transformer needs a question [B, L] to answer")
            output = "multiple_choice" if choices is not None else "descriptive"
        else:
            output = "classes"
        logits = self.head(last.z, last.decoded.masks, features[:, 0], features[:, -1], output,
                           question if self.cfg.task == "clevrer" else None, choices)
        return output, logits.squeeze(-1) if output == "multiple_choice" else logits

    @staticmethod
    def qa_loss(output: str, logits: Tensor, target: Tensor) -> Tensor:
        """Per-sample supervised loss ``[B]``: CE for classes/answers, BCE for choice flags and multi-hot labels."""
        if output == "multiple_choice":
            return F.binary_cross_entropy_with_logits(logits, target.reshape(-1).to(logits.dtype), reduction="none")
        if target.dim() == 2:
            check_shape(target, "B C", "multi-hot label (model.num_classes)", B=logits.shape[0], C=logits.shape[-1])
            return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none").sum(-1)
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= logits.shape[-1]):
            raise ShapeError(f"labels must be class ids in [0, {logits.shape[-1] - 1}] (model.num_classes), got "
                             f"[{int(target.min())}, {int(target.max())}]")
        return F.cross_entropy(logits, target.long(), reduction="none")

    def _target(self, batch: Batch) -> Tensor | None:
        key = "answer" if self.cfg.task == "clevrer" else "label"
        return batch[key] if has_key(batch, key) else None

    # ------------------------------------------------------------------ the VideoModel contract
    def forward(self, batch: Batch) -> Output:
        video = batch["video"]
        out = self.infer(video)
        iterations: list[Iteration] = out["iterations"]
        last = iterations[-1]
        nll = torch.stack([it.nll.sum(1) for it in iterations]).sum(0)                 # [B], summed over iterations
        kl = torch.stack([it.kl.sum(1) for it in iterations]).sum(0)
        per_sample = self.cfg.gen_weight * (nll + self.kl_scale * kl)
        terms = {"nll": nll.mean().detach(), "kl": kl.mean().detach(),
                 "mse": (last.decoded.recon - video).square().mean().detach()}
        if self.object_loss is not None and self.cfg.object_weight > 0:
            masked_steps = min(self.cfg.object_masked_steps or max(1, video.shape[1] // 2), video.shape[1])
            obj, _ = self.object_loss(last.z, self.context, masked_steps)
            per_sample = per_sample + self.cfg.object_weight * obj
            terms["object"] = obj.mean().detach()
        logits, extra = None, {}
        question = batch["question"] if has_key(batch, "question") else None
        choices = batch["choices"] if has_key(batch, "choices") else None
        if self.is_mixed(batch):
            parts = mixed_parts(batch)  # split once; every mixed term reads the same parts
            mixed = self.mixed_logits(last, out["features"], batch, parts)
            extra["mixed_logits"] = mixed
            if has_key(batch, "choice_answers"):
                qa = self.mixed_qa_loss(mixed, parts)
                per_sample = per_sample + self.cfg.qa_weight * qa
                terms["qa"] = qa.mean().detach()
                # per sample (NaN on the other kind): logged here as means, scored by evaluate_batch
                extra["mixed_accuracy"] = self.mixed_accuracy(mixed, parts)
                terms.update({k: v.nanmean() for k, v in extra["mixed_accuracy"].items()})
                if self.question_loss is not None and self.cfg.question_weight > 0:
                    q_loss = self.mixed_question_loss(last.z, mixed, batch, parts)
                    per_sample = per_sample + self.cfg.question_weight * q_loss
                    terms["question"] = q_loss.mean().detach()
        elif self.head is not None and (self.cfg.task != "clevrer" or question is not None):
            output, logits = self.head_logits(last, out["features"], question, choices)
            target = self._target(batch)
            extra["output"] = output
            if target is not None:
                qa = self.qa_loss(output, logits, target)
                per_sample = per_sample + self.cfg.qa_weight * qa
                terms["qa"] = qa.mean().detach()
                terms.update({k: v.float().nanmean() for k, v in self.accuracy(output, logits, target).items()})
                if self.question_loss is not None and self.cfg.question_weight > 0:
                    answer = (target.reshape(-1) + ANSWER_VOCAB_SIZE if output == "multiple_choice"
                              else target.reshape(-1))
                    q_loss = self.question_loss(last.z, answer.long(), question)
                    per_sample = per_sample + self.cfg.question_weight * q_loss
                    terms["question"] = q_loss.mean().detach()
        extra.update(per_sample=per_sample.detach(), attention=last.attention, prior=out["prior"],
                     lambdas=[it.lam for it in iterations], refined=out["refined"])
        return Output(loss=per_sample.mean(), terms=terms, slots=last.z, masks=last.decoded.masks,
                      recon=last.decoded.recon, logits=logits, extra=extra)

    # ------------------------------------------------------------------ mixed CLEVRER batches
    def is_mixed(self, batch: Batch) -> bool:
        """A CLEVRER batch of both question kinds (the loader's ``task: mixed``, marked by ``choice_mask``)."""
        return self.head is not None and self.cfg.task == "clevrer" and has_key(batch, MIXED_KEY)

    def mixed_logits(self, last: Iteration, features: Tensor, batch: Batch,
                     parts: dict[str, tuple[Tensor, Batch]]) -> MixedLogits:
        """The head on each kind of a mixed batch (``parts = mixed_parts(batch)``): descriptive ``[Bd, 22]``; one
        pass per real (question, choice) pair, as in 4.1, scattered to ``[Bm, C]`` (NaN at padded choices)."""
        def head(rows: Tensor, output: str, choices: Tensor | None = None) -> Tensor:
            return self.head(last.z[rows], last.decoded.masks[rows], features[rows, 0], features[rows, -1], output,
                             batch["question"][rows], choices)

        desc = choice = None
        if "descriptive" in parts:
            desc = head(parts["descriptive"][0], "descriptive")
        if "multiple_choice" in parts:
            rows, part = parts["multiple_choice"]
            b, c = part["choices"].shape[:2]
            pairs = choice_pairs(part)
            flat = head(rows[pairs // c], "multiple_choice", part["choices"].flatten(0, 1)[pairs])
            choice = scatter_pairs(flat.squeeze(-1), pairs, b, c)
        return MixedLogits(batch[MIXED_KEY].any(-1), desc, choice)

    @staticmethod
    def mixed_qa_loss(logits: MixedLogits, parts: dict[str, tuple[Tensor, Batch]]) -> Tensor:
        """Per-sample loss ``[B]``: answer CE for descriptive questions, the mean BCE over a question's real
        choices for multiple-choice ones (each question weighs the same, whatever its number of choices)."""
        some = logits.descriptive if logits.descriptive is not None else logits.multiple_choice
        loss = some.new_zeros(logits.is_choice.shape[0])
        if logits.descriptive is not None:
            rows, part = parts["descriptive"]
            loss = loss.index_put((rows,), F.cross_entropy(logits.descriptive, part["answer"], reduction="none"))
        if logits.multiple_choice is not None:
            rows, part = parts["multiple_choice"]
            real = part[MIXED_KEY].to(loss.dtype)
            bce = F.binary_cross_entropy_with_logits(logits.multiple_choice.nan_to_num(0.0),
                                                     part["answer"].to(loss.dtype), reduction="none")
            loss = loss.index_put((rows,), (bce * real).sum(-1) / real.sum(-1))
        return loss

    def mixed_question_loss(self, z: Tensor, logits: MixedLogits, batch: Batch,
                            parts: dict[str, tuple[Tensor, Batch]]) -> Tensor:
        """Question prediction (3.4.2) on a mixed batch: from the answer id of a descriptive question, and from
        every real choice's flag of a multiple-choice one (averaged per question), as the single-kind batches."""
        rows, answers = [], []
        if "descriptive" in parts:
            rows.append(parts["descriptive"][0])
            answers.append(parts["descriptive"][1]["answer"])
        if "multiple_choice" in parts:
            part_rows, part = parts["multiple_choice"]
            c = part["choices"].shape[1]
            pairs = choice_pairs(part)
            rows.append(part_rows[pairs // c])
            answers.append(part["answer"].reshape(-1)[pairs] + ANSWER_VOCAB_SIZE)
        index, answer = torch.cat(rows), torch.cat(answers).long()
        per_pair = self.question_loss(z[index], answer, batch["question"][index])
        b = logits.is_choice.shape[0]
        counts = torch.zeros(b, device=z.device, dtype=per_pair.dtype).index_add(0, index, torch.ones_like(per_pair))
        return torch.zeros_like(counts).index_add(0, index, per_pair) / counts.clamp(min=1)

    @staticmethod
    @torch.no_grad()
    def mixed_accuracy(logits: MixedLogits, parts: dict[str, tuple[Tensor, Batch]]) -> dict[str, Tensor]:
        """Per sample, NaN on the other kind: ``accuracy`` (descriptive), ``choice_accuracy`` (share of a
        question's real options right) and ``question_accuracy`` (all of them right)."""
        b = logits.is_choice.shape[0]
        nan = torch.full((b,), float("nan"), device=logits.is_choice.device)
        res = {"accuracy": nan.clone(), "choice_accuracy": nan.clone(), "question_accuracy": nan.clone()}
        if logits.descriptive is not None:
            rows, part = parts["descriptive"]
            res["accuracy"][rows] = (logits.descriptive.argmax(-1) == part["answer"]).float()
        if logits.multiple_choice is not None:
            rows, part = parts["multiple_choice"]
            share, all_right = padded_option_accuracy(logits.multiple_choice.float(), part["answer"], part[MIXED_KEY])
            res["choice_accuracy"][rows] = share
            res["question_accuracy"][rows] = all_right
        return res

    def task_logits(self, batch: Batch) -> Tensor | MixedLogits:
        """The head's logits on ``batch`` (as :meth:`answer`), or :class:`MixedLogits` for a mixed batch; the
        interface the CLEVRER scorers share with Aloe."""
        out = self.infer(batch["video"])
        last = out["iterations"][-1]
        if self.is_mixed(batch):
            return self.mixed_logits(last, out["features"], batch, mixed_parts(batch))
        question = batch["question"] if has_key(batch, "question") else None
        choices = batch["choices"] if has_key(batch, "choices") else None
        return self.head_logits(last, out["features"], question, choices)[1]

    def accuracy(self, output: str, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Per-sample scores ``[B]``: answer / choice accuracy, or top-1 / top-5 (and grid L1 when localizing).

        Multi-hot labels (CATER's action tasks) give per-class ``label_accuracy`` and top-k hits (any true
        class among the k highest logits). CATER scores these tasks by mAP over the whole split:
        :meth:`evaluate_batch` hands the logits and labels to the evaluation for that (``map``).
        """
        if output == "multiple_choice":
            return {"choice_accuracy": ((logits > 0).long() == target.reshape(-1)).float()}
        if output == "descriptive":
            return {"accuracy": (logits.argmax(-1) == target).float()}
        res: dict[str, Tensor] = {}
        unlabelled = None
        if target.dim() == 2:
            res["label_accuracy"] = ((logits > 0).long() == target).float().mean(-1)
            unlabelled = ~target.bool().any(-1)
            # some true class is among the k highest iff the best-scored true class is: score that one
            target = logits.detach().masked_fill(~target.bool(), float("-inf")).argmax(-1)
        ks = (1, 5) if logits.shape[-1] >= 5 else (1,)
        for k in ks:  # no true class: no hit is defined (NaN, skipped by the evaluation mean)
            hit = top_k_accuracy(logits.float(), target, k=k).float()
            res[f"top{k}"] = hit if unlabelled is None else hit.masked_fill(unlabelled, float("nan"))
        if self.cfg.task == "localization":
            res["l1"] = grid_l1_distance(logits.float(), target, grid=self.cfg.grid).float()
        return res

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        out = self(batch)
        video = batch["video"]
        res = {"loss": out.extra["per_sample"], "mse": (out.recon - video).square().mean(dim=(1, 2, 3, 4))}
        target = self._target(batch)
        if "mixed_accuracy" in out.extra:    # computed by forward with the loss
            res.update(out.extra["mixed_accuracy"])
        elif out.logits is not None and target is not None:
            res.update(self.accuracy(out.extra["output"], out.logits, target))
            if target.dim() == 2:       # multi-hot action labels: mAP over the split
                res[RANKING + "map"] = ranking(out.logits, target)
        if has_key(batch, "segmentation"):
            res["fg_ari"] = fg_ari(batch["segmentation"], out.masks, per="video").float()
        return res

    @torch.no_grad()
    def segment(self, video: Tensor) -> Tensor:
        """Soft masks ``[B, T, K, H, W]`` of the final iteration."""
        return self.infer(video)["iterations"][-1].decoded.masks

    @torch.no_grad()
    def answer(self, video: Tensor, question: Tensor | None = None, choices: Tensor | None = None) -> Tensor:
        """Head logits: descriptive ``[B, 22]`` (answer ids 1..21), a choice's ``[B]`` (> 0: correct),
        or classes ``[B, C]``."""
        out = self.infer(video)
        return self.head_logits(out["iterations"][-1], out["features"], question, choices)[1]

    @torch.no_grad()
    def rollout(self, video: Tensor, steps: int, sample: bool | None = None) -> Output:
        """Sample the conditional prior for ``steps`` unseen steps after ``video [B, T, 3, H, W]`` (Figure 7).

        ``sample=False`` follows the prior's means instead (the default samples in generative mode only)."""
        check_range(steps, "rollout steps", low=1, integer=True)
        self.check_video(video)
        b, t = video.shape[:2]
        encoded = self.encode_frames(video)
        gated, _ = self.gated_readout(self.initial_context(b, t, video.device, video.dtype), encoded.prepared)
        _, z = self.conditional_prior(gated, steps, sample=self.cfg.generative if sample is None else sample)
        decoded = self.decoder(z)
        return Output(loss=torch.zeros((), device=video.device), slots=z, masks=decoded.masks, recon=decoded.recon)

    @torch.no_grad()
    def media(self, batch: Batch) -> dict[str, Tensor]:
        """The last iteration's decoding of the clip (inference only: no loss, no task head), with each slot's RGB."""
        decoded = self.infer(batch["video"])["iterations"][-1].decoded
        return {"video": batch["video"], "recon": decoded.recon.clamp(0, 1), "masks": decoded.masks,
                "per_slot_rgb": decoded.rgb.clamp(0, 1)}


def paper_config(dataset: str) -> SlotTransformer.Config:
    """The Tables 5-6 settings for ``clevrer``, ``cater`` or ``kinetics600`` (for reference and tests)."""
    common: dict[str, Any] = dict(iterations=4)
    table = {
        "clevrer": dict(resolution=64, max_frames=64, num_slots=8, slot_dim=64, context_layers=8, context_heads=4,
                        context_attention_dim=128, context_mlp=[64, 128], task="clevrer", head_embed_dim=64,
                        head_layers=8, head_heads=4, head_attention_dim=128, head_mlp=[128, 128],
                        head_final_mlp=[2048, 2048]),
        "cater": dict(resolution=64, max_frames=80, num_slots=10, slot_dim=64, context_layers=8, context_heads=4,
                      context_attention_dim=256, context_mlp=[64, 256], task="localization", num_classes=36,
                      head_embed_dim=64, head_layers=8, head_heads=4, head_attention_dim=256, head_mlp=[256, 256],
                      head_final_mlp=[2048, 2048], question_prediction=False),
        "kinetics600": dict(resolution=256, max_frames=300, num_slots=8, slot_dim=128, context_layers=16,
                            context_heads=4,
                            context_attention_dim=256, context_mlp=[128, 256], task="classification",
                            num_classes=600, head_embed_dim=128, head_layers=16, head_heads=4,
                            head_attention_dim=256, head_mlp=[256, 256], head_final_mlp=[2048, 2048, 2048, 2048],
                            question_prediction=False),
    }
    if dataset not in table:
        raise ConfigError(f"paper_config dataset must be one of {sorted(table)}, got {dataset!r}")
    return SlotTransformer.Config(**common, **table[dataset])

