"""VIM: Variational Independent Modules for video prediction (Assouel, Castrejon et al. 2022).

A recurrent state-space model whose state is a set of K slots ``h^k`` and whose transition is a bank of
M independently parametrized modules (docs/vim.md maps every equation to this file):

* **Discovery** ``h_0 = SlotAttention(CNN(c))`` over the first (context) frame (Table 2 encoder).
* **Candidates** ``s^k_m = f_m(h^k_{t-1})`` for all M modules at once (:class:`ModuleBank`, Table 4).
* **Module selection** ``r^k_t``: key-query attention with keys ``key(s^k_m)`` (2-layer MLPs 64-64, A.1).
  Prior query ``query(h^k_{t-1})``; posterior query ``query_post(x^k_t)`` where ``x^k_t`` is slot k's
  grouping of the target frame (eq. 4). Sampled by Gumbel-softmax at tau = 1: relaxed while training,
  hard (one-hot) in eval mode.
* **Latent update** ``f = sum_m r_m s_m``; prior ``N(mu, sigma) = MLP(f)``, posterior ``MLP([f; x^k_t])``;
  ``h^k_t = LayerNorm(h^k_{t-1} + z^k_t + f)``.
* **Observation model**: spatial broadcast decoder of every slot, spatial Gaussian mixture over slots.
* **ELBO**: ``sum_t log p(x_t | h_t) - KL_gauss - KL_module`` (3.3); frame 0 is reconstructed from ``h_0``.
* **VIM-k** (5.2): ``iterations`` select-and-update steps between two frames before rendering; the
  grouping ``x^k`` is recomputed from the intermediate state each time, so every iteration can choose
  the module that best explains what is still unexplained.
* **Schedule** (A.2): ``pretrain_steps`` on first frames only, then a sequence-length curriculum
  (``curriculum_start`` frames, ``+curriculum_increment`` every ``curriculum_every`` steps, up to
  ``curriculum_max``); :meth:`on_step` sets the stage, the forward pass crops a random window.

The deterministic baselines of appendix B (SCOFF; RIM = SCOFF with one module) are this same model with
``variational=False`` and ``teacher_forcing=True`` (see :mod:`slotvideo.models.vim_baselines`): each slot
reads the PREVIOUS ground-truth frame instead of the target, the Gaussian update is its mean, the module
is chosen by hard straight-through Gumbel-softmax (tau 1, as SCOFF's code; argmax at test time) and the
loss is the reconstruction alone.

Deliberate simplifications, each also in docs/vim.md: eq. 4's weighted SUM is the weighted MEAN of
Slot Attention (same competition over slots, better scaled); Table 4's final ReLU on the module output
is dropped (the module output is an additive update and must be able to be negative); one context
frame; the CPU configs shrink widths and decoder resolution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape
from slotvideo.metrics.ari import fg_ari
from slotvideo.metrics.centroids import mask_centroids
from slotvideo.metrics.image import mse
from slotvideo.models.base import Output, VideoModel
from slotvideo.nn.decoders import Decoded, SpatialBroadcastDecoder, check_broadcast_config
from slotvideo.nn.distributions import (DiagonalGaussian, categorical_kl, gaussian_mixture_log_likelihood,
                                        gumbel_softmax)
from slotvideo.nn.encoders import SizePreservingCNN
from slotvideo.nn.mlp import MLP
from slotvideo.nn.module_bank import ModuleBank, select
from slotvideo.nn.position import SoftPositionEmbed
from slotvideo.nn.slot_attention import InvertedAttention, SlotAttention
from slotvideo.nn.time import scan_over_time
from slotvideo.registry import register


class Transition(NamedTuple):
    """One frame-to-frame transition of every slot (``I`` = VIM-k iterations)."""

    state: Tensor          # [B, K, D] h_t after the last iteration
    states: Tensor         # [B, I, K, D] h after each iteration
    selection: Tensor      # [B, I, K, M] r (one-hot in eval mode)
    kl_z: Tensor           # [B] Gaussian KL, summed over iterations, slots and dims
    kl_r: Tensor           # [B] module KL, summed over iterations and slots
    attention: Tensor      # [B, K, N] grouping of the observed frame at the last iteration (or empty)
    usage: Tensor          # [B, M] posterior selection probabilities summed over iterations and slots (or empty)


class Encoder(nn.Module):
    """Table 2: ``[..., 3, H, W]`` -> ``[..., N, feature_dim]``: convs, position encoding, LayerNorm, two Linear+ReLU.

    ``stride`` > 1 on the first conv is a CPU economy (fewer tokens for slot attention); the paper's is 1.
    """

    def __init__(self, channels: list[int], kernel_size: int, feature_dim: int, stride: int = 1) -> None:
        super().__init__()
        self.cnn = SizePreservingCNN(3, channels, kernel_size, [stride] + [1] * (len(channels) - 1))
        self.position = SoftPositionEmbed(channels[-1])
        self.norm = nn.LayerNorm(channels[-1])
        self.mlp = MLP(channels[-1], [feature_dim], feature_dim, final_activation="relu")

    def forward(self, frames: Tensor) -> Tensor:
        features = self.position(self.cnn(frames * 2.0 - 1.0))
        return self.mlp(self.norm(features.flatten(-2).transpose(-1, -2)))


class KeyQuerySelection(nn.Module):
    """Scores of M candidates against a query: ``<key(s_m), query(q)> / sqrt(d)`` (A.1: 2-layer MLPs 64-64).

    The prior's query reads the slot state ``h`` and the posterior's reads the grouping ``x`` of the
    target frame (both ``slot_dim`` wide), so each has its own query network; the keys are shared.
    The scores themselves are needed (they are the logits of the categorical prior and posterior), so
    this is not a place for ``F.scaled_dot_product_attention``, which only returns the mixed values.

    ``bound > 0`` replaces the scaled dot product by ``bound * cos(key, query)`` (not in the paper): the
    logits then stay in ``[-bound, bound]``, so the softmax cannot saturate on one module, which with
    unbounded logits starves every other module of gradient (measured: docs/vim.md, "module selection").
    """

    def __init__(self, candidate_dim: int, query_dim: int, hidden: int, key_dim: int, bound: float = 0.0) -> None:
        super().__init__()
        self.key = MLP(candidate_dim, [hidden], key_dim)
        self.query = MLP(query_dim, [hidden], key_dim)
        self.posterior_query = MLP(query_dim, [hidden], key_dim)
        self.scale = key_dim ** -0.5
        self.bound = bound

    def logits(self, keys: Tensor, query_input: Tensor, posterior: bool = False) -> Tensor:
        """``keys [..., M, key_dim]`` (from ``self.key``), ``query_input [..., query_dim]`` -> ``[..., M]``."""
        query = (self.posterior_query if posterior else self.query)(query_input)
        if self.bound > 0:
            keys, query = F.normalize(keys, dim=-1), F.normalize(query, dim=-1) * self.bound
        else:
            query = query * self.scale
        return (keys @ query.unsqueeze(-1)).squeeze(-1)


def kl_terms(posterior: DiagonalGaussian, prior: DiagonalGaussian, posterior_logits: Tensor,
             prior_logits: Tensor) -> tuple[Tensor, Tensor]:
    """VIM's two KL terms (3.3) for slots ``[B, K, ...]``, each summed over slots (and latent dims): ``[B]``.

    Gaussian KL ``KL(q(z | f, x) || p(z | f))`` and module KL ``KL(q(r | x, h) || p(r | h))``, both closed form.
    """
    return posterior.kl(prior).sum((-1, -2)), categorical_kl(posterior_logits, prior_logits).sum(-1)


@register("model", "vim")
class VIM(VideoModel):
    """Variational Independent Modules; the module docstring maps the paper to the code."""

    name = "vim"

    @dataclass
    class Config:
        resolution: int = field(default=32, metadata={"min": 4})
        num_slots: int = field(default=4, metadata={"min": 1})           # K
        num_modules: int = field(default=4, metadata={"min": 1})         # M
        slot_dim: int = field(default=64, metadata={"min": 1})           # D = size of h and z
        encoder_channels: list[int] = field(default_factory=lambda: [64, 64, 64, 64])   # Table 2
        encoder_kernel: int = field(default=5, metadata={"min": 1})
        encoder_stride: int = field(default=1, metadata={"min": 1})    # first conv; >1 only in CPU configs
        feature_dim: int = field(default=64, metadata={"min": 1})
        share_encoder: bool = False       # one CNN for discovery and inference (a CPU economy)
        slot_attention_iters: int = field(default=3, metadata={"min": 1})
        slot_attention_hidden: int = field(default=128, metadata={"min": 1})
        # discovery slots start from a shared learned Gaussian (the paper's slot attention) or from one
        # learned vector per slot (breaks the slot symmetry at once; a CPU-budget choice)
        slot_init: str = field(default="gaussian", metadata={"choices": ("gaussian", "learned")})
        module_hidden: list[int] = field(default_factory=lambda: [128, 128, 128])       # Table 4
        latent_hidden: int = field(default=64, metadata={"min": 1})       # Table 4 stochastic update
        selection_hidden: int = field(default=64, metadata={"min": 1})    # A.1 key/query MLPs
        selection_dim: int = field(default=64, metadata={"min": 1})
        # 0: the paper's key . query / sqrt(d); > 0: selection logits bound * cos(key, query) (see KeyQuerySelection)
        selection_bound: float = field(default=0.0, metadata={"min": 0.0})
        # what the selection keys read: the module outputs s_m ("update") or the next states they lead to ("state")
        candidate_keys: str = field(default="update", metadata={"choices": ("update", "state")})
        decoder_channels: list[int] = field(default_factory=lambda: [64, 64, 64])       # Table 3
        decoder_kernel: int = field(default=5, metadata={"min": 1})
        broadcast_resolution: int = field(default=0, metadata={"min": 0})  # 0: full resolution (Table 3)
        sigma: float = field(default=0.1, metadata={"min": 1e-6})          # pixel std of the mixture
        min_std: float = field(default=1e-4, metadata={"min": 0.0})
        tau: float = field(default=1.0, metadata={"min": 1e-6})            # Gumbel-softmax temperature
        hard_train: bool = False          # straight-through one-hot selections while training too
        iterations: int = field(default=1, metadata={"min": 1})           # VIM-k
        variational: bool = True          # False: deterministic baselines (SCOFF/RIM)
        teacher_forcing: bool = False     # True: slots read the previous GT frame (SCOFF/RIM)
        kl_weight: float = field(default=1.0, metadata={"min": 0.0})
        # not in the paper: weight of usage_imbalance, KL(batch module usage || uniform) of the posterior
        # selection, a load-balancing term against every slot choosing the same module (0 = off)
        usage_weight: float = field(default=0.0, metadata={"min": 0.0})
        # the load-balancing term applies only before this optimizer step (0 = at every step): it can keep the
        # modules in use while they specialise, then let a superfluous module fall out of use (section 5.1)
        usage_until: int = field(default=0, metadata={"min": 0})
        # training schedule (A.2), in optimizer steps
        pretrain_steps: int = field(default=0, metadata={"min": 0})
        curriculum_start: int = field(default=6, metadata={"min": 2})
        curriculum_increment: int = field(default=2, metadata={"min": 0})
        curriculum_every: int = field(default=1000, metadata={"min": 1})
        curriculum_max: int = field(default=20, metadata={"min": 2})

    def __init__(self, cfg: "VIM.Config | None" = None) -> None:
        super().__init__()
        cfg = self.configure(cfg)
        d = cfg.slot_dim
        enc = (list(cfg.encoder_channels), cfg.encoder_kernel, cfg.feature_dim, cfg.encoder_stride)
        self.encoder = Encoder(*enc)
        self.inference_encoder = self.encoder if cfg.share_encoder else Encoder(*enc)
        self.discovery = SlotAttention(cfg.feature_dim, d, cfg.num_slots, cfg.slot_attention_iters,
                                       cfg.slot_attention_hidden, init=cfg.slot_init)
        self.grouping = InvertedAttention(cfg.feature_dim, d)       # eq. 4
        self.modules_bank = ModuleBank(cfg.num_modules, d, list(cfg.module_hidden), d, norm_layers=(1,))
        self.selection = KeyQuerySelection(d, d, cfg.selection_hidden, cfg.selection_dim, cfg.selection_bound)
        self.prior_net = MLP(d, [cfg.latent_hidden], 2 * d)
        self.posterior_net = MLP(2 * d, [cfg.latent_hidden], 2 * d)
        self.update_norm = nn.LayerNorm(d)
        self.decoder = SpatialBroadcastDecoder(d, cfg.resolution, 3, list(cfg.decoder_channels), cfg.decoder_kernel,
                                               cfg.broadcast_resolution or None, final_kernel_size=cfg.decoder_kernel)
        self.stage_length: int | None = None     # frames per training clip at the current step; None = all
        self.balancing = self.balancing_at(0)   # whether the load-balancing term applies at the current step

    @staticmethod
    def validate(cfg: "VIM.Config") -> None:
        for key in ("resolution", "num_slots", "num_modules", "slot_dim", "feature_dim", "encoder_kernel",
                    "slot_attention_iters", "slot_attention_hidden", "latent_hidden", "selection_hidden",
                    "selection_dim", "decoder_kernel", "iterations", "curriculum_every", "encoder_stride"):
            check_range(getattr(cfg, key), f"model.{key}", low=1, integer=True)
        check_range(cfg.curriculum_start, "model.curriculum_start", low=2, integer=True)
        check_range(cfg.curriculum_max, "model.curriculum_max", low=cfg.curriculum_start, integer=True)
        for key in ("encoder_channels", "module_hidden", "decoder_channels"):
            if len(getattr(cfg, key)) < (2 if key == "module_hidden" else 1):
                raise ConfigError(f"model.{key} must name at least {2 if key == 'module_hidden' else 1} layers")
        if cfg.broadcast_resolution:
            check_broadcast_config(cfg.resolution, cfg.broadcast_resolution, len(cfg.decoder_channels))
        if cfg.teacher_forcing and cfg.variational:
            raise ConfigError("model.teacher_forcing needs model.variational=false: the posterior must see "
                              "the target frame, teacher forcing shows the previous one")

    @classmethod
    def check_config(cls, model_cfg: "VIM.Config", full_cfg: Any) -> None:
        cls.validate(model_cfg)
        params = full_cfg.data.params if "params" in full_cfg.data else {}
        res = params.get("resolution")
        if res is not None and int(res) != model_cfg.resolution:
            raise ConfigError(f"model.resolution ({model_cfg.resolution}) must equal data.params.resolution ({res})")

    # ------------------------------------------------------------------ schedule
    def curriculum_length(self, step: int) -> int | None:
        """Training clip length at ``step``: 1 while pre-training, then the A.2 curriculum."""
        cfg = self.cfg
        if step < cfg.pretrain_steps:
            return 1
        stage = (step - cfg.pretrain_steps) // cfg.curriculum_every
        return min(cfg.curriculum_start + cfg.curriculum_increment * stage, cfg.curriculum_max)

    def balancing_at(self, step: int) -> bool:
        """Whether the load-balancing term (``usage_weight``) is trained on at ``step`` (``usage_until``)."""
        cfg = self.cfg
        return cfg.usage_weight > 0 and (cfg.usage_until == 0 or step < cfg.usage_until)

    def on_step(self, step: int) -> None:
        self.stage_length = self.curriculum_length(step)
        self.balancing = self.balancing_at(step)

    # ------------------------------------------------------------------ parts of the model
    def check_video(self, video: Tensor) -> None:
        res = self.cfg.resolution
        check_shape(video, f"B T 3 {res} {res}", "video")
        if not video.dtype.is_floating_point:
            raise ShapeError(f"video must be float in [0, 1], got dtype {video.dtype}")

    def discover(self, frame: Tensor) -> tuple[Tensor, Tensor]:
        """``h_0 [B, K, D]`` and its attention ``[B, K, N]`` from a context frame ``[B, 3, H, W]``."""
        out = self.discovery(self.encoder(frame))
        return out.slots, out.attention

    def candidates(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """All module outputs ``s [..., K, M, D]`` and their selection keys ``[..., K, M, selection_dim]``.

        ``candidate_keys: update`` keys the module outputs ``s_m`` themselves; ``state`` keys the candidate
        next states ``LayerNorm(h + s_m)`` (the update without z), which the posterior query, read from the
        target frame's grouping ``x``, can be compared with directly.
        """
        s = self.modules_bank(h)
        if self.cfg.candidate_keys == "state":
            return s, self.selection.key(self.update_norm(h.unsqueeze(-2) + s))
        return s, self.selection.key(s)

    def _select(self, logits: Tensor, sample: bool = True) -> Tensor:
        """VIM: a Gumbel-softmax sample (hard outside training). SCOFF: hard straight-through Gumbel while
        training, argmax otherwise. ``sample=False``: the argmax (the selection posterior's mode)."""
        if not sample or not (self.cfg.variational or self.training):
            return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
        hard = self.cfg.hard_train or not self.training or not self.cfg.variational
        return gumbel_softmax(logits, self.cfg.tau, hard=hard)

    def update(self, h: Tensor, f: Tensor, z: Tensor) -> Tensor:
        """``h_t = LayerNorm(h_{t-1} + z_t + f(h_{t-1}, r_t))``."""
        return self.update_norm(h + z + f)

    def infer_step(self, h: Tensor, features: Tensor, iterations: int, sample: bool = True) -> Transition:
        """Posterior transition ``h_{t-1} -> h_t`` given the features ``[B, N, F]`` of the observed frame.

        ``sample=False`` takes the posterior's mode instead of a sample: the most probable module
        (argmax of the selection logits, no Gumbel noise) and the mean of ``q(z)``.
        """
        prepared = self.grouping.prepare(features)
        states, selections, kl_z, kl_r = [], [], h.new_zeros(h.shape[0]), h.new_zeros(h.shape[0])
        usage = h.new_zeros(h.shape[0], self.cfg.num_modules)
        for _ in range(iterations):  # VIM-k: a few select-and-update steps, each re-reading the frame
            s, keys = self.candidates(h)
            readout = self.grouping.attend(h, prepared)
            x = readout.updates                                               # x^k_t, eq. 4
            # VIM: posterior query from the grouping of the target frame. SCOFF: the object file, having
            # read its (previous-frame) input, picks the schema with the same query network.
            post_logits = self.selection.logits(keys, x, posterior=True)
            r = self._select(post_logits, sample)
            usage = usage + post_logits.softmax(-1).sum(-2)
            f = select(s, r)
            posterior = DiagonalGaussian.from_params(self.posterior_net(torch.cat([f, x], -1)), min_std=self.cfg.min_std)
            if self.cfg.variational:
                prior = DiagonalGaussian.from_params(self.prior_net(f), min_std=self.cfg.min_std)
                z = posterior.rsample() if sample else posterior.mean
                step_kl_z, step_kl_r = kl_terms(posterior, prior, post_logits, self.selection.logits(keys, h))
                kl_z, kl_r = kl_z + step_kl_z, kl_r + step_kl_r
            else:
                z = posterior.mean
            h = self.update(h, f, z)
            states.append(h)
            selections.append(r)
        return Transition(h, torch.stack(states, 1), torch.stack(selections, 1), kl_z, kl_r, readout.attention, usage)

    def prior_step(self, h: Tensor, iterations: int, modules: Tensor | None = None) -> Transition:
        """Generative transition: ``r ~ p(r | h)`` (or the given ``modules [B, I, K]`` indices), ``z ~ p(z | f)``."""
        states, selections = [], []
        for i in range(iterations):
            s, keys = self.candidates(h)
            if modules is not None:
                r = F.one_hot(modules[:, i], self.cfg.num_modules).to(h.dtype)
            else:
                logits = self.selection.logits(keys, h)
                r = gumbel_softmax(logits, self.cfg.tau, hard=True) if self.cfg.variational else self._select(logits)
            f = select(s, r)
            if self.cfg.variational:
                z = DiagonalGaussian.from_params(self.prior_net(f), min_std=self.cfg.min_std).rsample()
            else:  # the deterministic baselines have no prior; with no frame to read, the update is f alone
                z = torch.zeros_like(f)
            h = self.update(h, f, z)
            states.append(h)
            selections.append(r)
        zeros = h.new_zeros(h.shape[0])
        return Transition(h, torch.stack(states, 1), torch.stack(selections, 1), zeros, zeros, h.new_zeros(0),
                          h.new_zeros(0))

    def decode(self, slots: Tensor) -> Decoded:
        return self.decoder(slots)

    # ------------------------------------------------------------------ inference over a video
    def infer(self, video: Tensor, iterations: int | None = None, sample: bool = True) -> dict[str, Tensor]:
        """Posterior states of every frame of ``video [B, T, 3, H, W]`` (``sample=False``: posterior mode,
        see :meth:`infer_step`).

        Returns ``slots [B, T, K, D]`` (``h_0`` then ``h_1..h_{T-1}``), ``iteration_slots
        [B, T-1, I, K, D]``, ``selection [B, T-1, I, K, M]``, ``kl_z``/``kl_r [B, T-1]``.
        """
        self.check_video(video)
        iterations = self.cfg.iterations if iterations is None else iterations
        check_range(iterations, "iterations", low=1, integer=True)
        h0, _ = self.discover(video[:, 0])
        b, t = video.shape[:2]
        k, d, m = self.cfg.num_slots, self.cfg.slot_dim, self.cfg.num_modules
        if t == 1:
            empty = video.new_zeros(b, 0)
            return {"slots": h0[:, None], "iteration_slots": video.new_zeros(b, 0, iterations, k, d),
                    "selection": video.new_zeros(b, 0, iterations, k, m), "kl_z": empty, "kl_r": empty,
                    "usage": video.new_zeros(b, 0, m)}
        # Teacher forcing (baselines) shows the slots frame t-1 on the way to t; VIM's posterior sees frame t.
        observed = video[:, :-1] if self.cfg.teacher_forcing else video[:, 1:]
        features = self.inference_encoder(observed)

        def step(h: Tensor, feats: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
            tr = self.infer_step(h, feats, iterations, sample)
            return tr.state, (tr.state, tr.states, tr.selection, tr.kl_z, tr.kl_r, tr.usage)

        _, (states, iteration_states, selection, kl_z, kl_r, usage) = scan_over_time(step, h0, features)
        return {"slots": torch.cat([h0[:, None], states], 1), "iteration_slots": iteration_states,
                "selection": selection, "kl_z": kl_z, "kl_r": kl_r, "usage": usage}

    def _clip(self, video: Tensor) -> Tensor:
        length = self.stage_length
        if not self.training or length is None or length >= video.shape[1]:
            return video
        start = int(torch.randint(0, video.shape[1] - length + 1, ()))
        return video[:, start:start + length]

    def forward(self, batch: Batch) -> Output:
        video = self._clip(batch["video"])
        inferred = self.infer(video)
        decoded = self.decode(inferred["slots"])
        log_lik = gaussian_mixture_log_likelihood(video, decoded.rgb, decoded.mask_logits, sigma=self.cfg.sigma)
        nll = -log_lik.sum((-1, -2, -3)).mean()              # sum over pixels and frames, mean over batch
        kl_z = inferred["kl_z"].sum(-1).mean()
        kl_r = inferred["kl_r"].sum(-1).mean()
        loss = nll + self.cfg.kl_weight * (kl_z + kl_r)
        terms = {"nll": nll.detach(), "mse": F.mse_loss(decoded.recon, video).detach(),
                 "frames": torch.tensor(float(video.shape[1]))}
        if inferred["selection"].numel():
            balance = usage_imbalance(inferred["usage"])
            if self.balancing:
                loss = loss + self.cfg.usage_weight * balance
            terms["module_perplexity"] = module_perplexity(inferred["selection"].detach())
            terms["usage_imbalance"] = balance.detach()
        if self.cfg.variational:
            terms |= {"kl_z": kl_z.detach(), "kl_r": kl_r.detach()}
        return Output(loss=loss, terms=terms, slots=inferred["slots"], masks=decoded.masks, recon=decoded.recon,
                      extra={"selection": inferred["selection"]})

    # ------------------------------------------------------------------ using a trained model
    @torch.no_grad()
    def segment(self, video: Tensor) -> Tensor:
        """Soft masks ``[B, T, K, H, W]`` (sum to 1 over K) of ``video [B, T, 3, H, W]`` under the posterior."""
        return self.decode(self.infer(video)["slots"]).masks

    @torch.no_grad()
    def rollout(self, video: Tensor, steps: int, samples: Optional[int] = None,
                iterations: int | None = None) -> Output:
        """Sample futures of ``video [B, T, 3, H, W]``: infer the posterior state of its last frame, then run
        the generative model (prior module choice and prior update) for ``steps`` frames.

        ``samples=None`` returns ``recon [B, steps, 3, H, W]``, ``masks [B, steps, K, H, W]`` and ``slots
        [B, steps, K, D]``; ``samples=S`` draws S futures per video and puts them on a new dim 1
        (``recon [B, S, steps, 3, H, W]`` ...). ``extra["selection"]`` holds the sampled modules
        ``[B(, S), steps, I, K]``.
        """
        check_range(steps, "rollout steps", low=1, integer=True)
        if samples is not None:
            check_range(samples, "rollout samples", low=1, integer=True)
        iterations = self.cfg.iterations if iterations is None else iterations
        h = self.infer(video, iterations)["slots"][:, -1]
        s = samples or 1
        h = h.repeat_interleave(s, 0)

        def step(state: Tensor, _: None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
            tr = self.prior_step(state, iterations)
            return tr.state, (tr.state, tr.selection.argmax(-1))

        _, (future, modules) = scan_over_time(step, h, steps=steps)
        decoded = self.decode(future)
        out = {"slots": future, "masks": decoded.masks, "recon": decoded.recon.clamp(0, 1), "selection": modules}
        if samples is not None:
            out = {key: v.unflatten(0, (-1, s)) for key, v in out.items()}
        return Output(loss=video.new_zeros(()), slots=out["slots"], masks=out["masks"], recon=out["recon"],
                      extra={"selection": out["selection"]})

    @torch.no_grad()
    def replay(self, context: Tensor, modules: Tensor, noise: bool = False) -> Output:
        """Render the slots discovered in ``context [B, 3, H, W]`` moved by given module indices
        ``modules [B, T, I, K]`` (5.3 dynamics transfer; Figure 2 right with one module repeated).

        The Gaussian update is the prior mean unless ``noise``; returns ``T + 1`` frames (context first),
        with the full decoder output (per-slot colours too) in ``extra["decoded"]``.
        """
        h, _ = self.discover(context)
        check_shape(modules, f"B T I {self.cfg.num_slots}", "modules")
        frames = [h]
        for t in range(modules.shape[1]):   # loop over the few replayed frames; each step is vectorised
            for i in range(modules.shape[2]):
                s, _ = self.candidates(h)
                f = select(s, F.one_hot(modules[:, t, i].long(), self.cfg.num_modules).to(h.dtype))
                prior = DiagonalGaussian.from_params(self.prior_net(f), min_std=self.cfg.min_std)
                z = (prior.rsample() if noise else prior.mean) if self.cfg.variational else torch.zeros_like(f)
                h = self.update(h, f, z)
            frames.append(h)
        slots = torch.stack(frames, 1)
        decoded = self.decode(slots)
        return Output(loss=slots.new_zeros(()), slots=slots, masks=decoded.masks, recon=decoded.recon.clamp(0, 1),
                      extra={"decoded": decoded})

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> dict[str, Tensor]:
        """Per-sample ``mse`` (posterior reconstruction), ``nll``, ``kl_z``, ``kl_r``; ``fg_ari`` with ground truth."""
        video = batch["video"]
        inferred = self.infer(video)
        decoded = self.decode(inferred["slots"])
        log_lik = gaussian_mixture_log_likelihood(video, decoded.rgb, decoded.mask_logits, sigma=self.cfg.sigma)
        out = {"mse": mse(decoded.recon, video, per="sample", reduction="none"),
               "nll": -log_lik.sum((-1, -2, -3)), "kl_z": inferred["kl_z"].sum(-1), "kl_r": inferred["kl_r"].sum(-1)}
        if "segmentation" in batch:
            out["fg_ari"] = fg_ari(batch["segmentation"], decoded.masks, per="video")
        return {key: v.float() for key, v in out.items()}

    @torch.no_grad()
    def media(self, batch: Batch) -> dict[str, Tensor]:
        decoded = self.decode(self.infer(batch["video"])["slots"])
        return {"video": batch["video"], "recon": decoded.recon.clamp(0, 1), "masks": decoded.masks}


def _usage_entropy(weights: Tensor) -> Tensor:
    """Entropy of the overall module usage: ``weights [..., M]`` summed over every other dim, normalised."""
    total = weights.flatten(0, -2).sum(0)
    u = total / total.sum().clamp_min(1e-12)
    return -(u * u.clamp_min(1e-12).log()).sum()


def usage_imbalance(usage: Tensor) -> Tensor:
    """``KL(u || uniform) = log M - H(u)`` of the batch's module usage ``u``, from summed posterior
    selection probabilities ``usage [..., M]``: 0 when every module is chosen equally often overall."""
    return math.log(usage.shape[-1]) - _usage_entropy(usage)


def module_perplexity(selection: Tensor) -> Tensor:
    """``exp(entropy)`` of the mean selection ``[..., M]``: how many modules are in use (1 to M)."""
    return torch.exp(_usage_entropy(selection))


def object_centroids(decoded: Decoded) -> Tensor:
    """Centroid ``[..., K, 2]`` (row, col) of what each slot draws: every pixel weighted by the slot's mask
    times the brightness of its colour there (``sum_c clamp(rgb_k, 0, 1)``).

    For objects on a black background (Random Walk). The plain mask centroid (:func:`mask_centroids`) counts
    the background pixels each slot happens to own (any slot draws black equally well, so they split the
    background arbitrarily), which pulls a ball's centroid ~3 px towards the middle of a 16x16 frame; weighting
    by drawn brightness leaves only the ball (0.1 px median error on first frames of a trained model)."""
    return mask_centroids(decoded.masks * decoded.rgb.clamp(0, 1).sum(-3))
