"""Probabilistic pieces: diagonal Gaussians, the pixel-wise mixture likelihood over slots, Gumbel-softmax.

Everything returns per-element values (per latent dim, per pixel, per distribution); the caller decides
how to reduce, because the five systems reduce differently (seed-model-details.md section 14).
All log-densities include their normalising constants and are computed in log space.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape

_LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """``N(mean, diag(std^2))`` over the last dims of ``mean``/``std`` (same shape, or broadcastable)."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        try:
            shape = torch.broadcast_shapes(mean.shape, std.shape)
        except RuntimeError as e:
            raise ShapeError(f"DiagonalGaussian mean {list(mean.shape)} and std {list(std.shape)} "
                             "must broadcast") from e
        self.mean = mean.expand(shape)
        self.std = std.expand(shape)

    @classmethod
    def from_params(cls, params: Tensor, scale: str = "softplus", min_std: float = 0.0) -> DiagonalGaussian:
        """Split ``params [..., 2Z]`` into mean and raw scale ``[..., Z]`` each.

        ``scale="softplus"``: ``std = softplus(raw) + min_std``; ``scale="exp"``: ``raw`` is ``log std``,
        ``std = exp(raw) + min_std``. ``min_std`` keeps the std away from 0 (e.g. G-SWM's 1e-4).
        """
        check_shape(params, "... P", "DiagonalGaussian params")
        if params.shape[-1] % 2:
            raise ShapeError(f"DiagonalGaussian params must have an even last dim [..., 2Z], got {list(params.shape)}")
        check_range(min_std, "DiagonalGaussian min_std", low=0.0)
        mean, raw = params.chunk(2, dim=-1)
        if scale == "softplus":
            std = F.softplus(raw)
        elif scale == "exp":
            std = raw.exp()
        else:
            raise ConfigError(f"DiagonalGaussian scale must be 'softplus' or 'exp', got {scale!r}")
        return cls(mean, std + min_std)

    @classmethod
    def standard(cls, like: Tensor) -> DiagonalGaussian:
        """``N(0, I)`` with the shape, dtype and device of ``like``."""
        return cls(torch.zeros_like(like), torch.ones_like(like))

    @property
    def variance(self) -> Tensor:
        return self.std.square()

    def detach(self) -> DiagonalGaussian:
        """The same distribution with no gradient to its parameters (e.g. a stop-gradient prior)."""
        return DiagonalGaussian(self.mean.detach(), self.std.detach())

    def rsample(self) -> Tensor:
        """Reparameterised sample ``mean + std * eps``: gradients reach ``mean`` and ``std``."""
        return self.mean + self.std * torch.randn_like(self.mean)

    def log_prob(self, x: Tensor) -> Tensor:
        """Per-dim log density of ``x``."""
        return -0.5 * ((x - self.mean) / self.std).square() - self.std.log() - 0.5 * _LOG_2PI

    def entropy(self) -> Tensor:
        """Per-dim differential entropy."""
        return 0.5 * (1 + _LOG_2PI) + self.std.log()

    def kl(self, other: DiagonalGaussian) -> Tensor:
        """Per-dim ``KL(self || other)`` in closed form."""
        var_ratio = (self.std / other.std).square()
        mean_term = ((self.mean - other.mean) / other.std).square()
        return 0.5 * (var_ratio + mean_term - 1 - var_ratio.log())

    def kl_standard_normal(self) -> Tensor:
        """Per-dim ``KL(self || N(0, 1))``."""
        return 0.5 * (self.variance + self.mean.square() - 1) - self.std.log()


def _sigma_tensor(sigma: float | Tensor, means: Tensor) -> Tensor:
    """``sigma`` as a tensor broadcastable to ``means [..., K, C, H, W]`` (a ``[K]`` tensor is per slot)."""
    if not isinstance(sigma, Tensor):
        check_range(sigma, "mixture sigma", low=1e-12)
        return torch.tensor(float(sigma), dtype=means.dtype, device=means.device)
    if bool((sigma <= 0).any()):
        raise ConfigError("mixture sigma must be > 0 everywhere")
    k = means.shape[-4]
    if sigma.dim() == 1 and sigma.shape[0] in (1, k):
        return sigma.to(means.dtype)[:, None, None, None]
    try:
        torch.broadcast_shapes(sigma.shape, means.shape)
    except RuntimeError as e:
        raise ShapeError(f"mixture sigma must be a float, a [K={k}] tensor or broadcastable to means "
                         f"{list(means.shape)}, got {list(sigma.shape)}") from e
    return sigma.to(means.dtype)


def gaussian_mixture_log_likelihood(x: Tensor, means: Tensor, mask_logits: Tensor | None = None,
                                    log_masks: Tensor | None = None, sigma: float | Tensor = 0.1,
                                    per_channel: bool = False) -> Tensor:
    """Per-pixel log-likelihood of ``x [..., C, H, W]`` under a mixture over ``K`` slots.

    ``p(x_hw) = sum_k m_khw N(x_hw; means_khw, sigma_k^2 I)`` with mixing weights from ``mask_logits``
    (softmaxed over K here) or already-normalised ``log_masks``, both ``[..., K, 1, H, W]``. Returns
    ``[..., H, W]``: the Gaussian is joint over the channels (IODINE, OP3, Slot Transformer). With
    ``per_channel=True`` each channel is its own mixture, as MONet's reimplementations compute it,
    and the result is ``[..., C, H, W]``.
    """
    sizes = check_shape(x, "... C H W", "mixture x")
    check_shape(means, "... K C H W", "mixture means", C=sizes["C"], H=sizes["H"], W=sizes["W"])
    if (mask_logits is None) == (log_masks is None):
        raise ConfigError("gaussian_mixture_log_likelihood needs exactly one of mask_logits or log_masks")
    weights = mask_logits if log_masks is None else log_masks
    check_shape(weights, "... K 1 H W", "mask_logits" if log_masks is None else "log_masks",
                K=means.shape[-4], H=sizes["H"], W=sizes["W"])
    log_w = weights.log_softmax(dim=-4) if log_masks is None else log_masks
    sigma_t = _sigma_tensor(sigma, means)
    component = -0.5 * ((x.unsqueeze(-4) - means) / sigma_t).square() - sigma_t.log() - 0.5 * _LOG_2PI
    if per_channel:
        return torch.logsumexp(log_w + component, dim=-4)
    return torch.logsumexp(log_w.squeeze(-3) + component.sum(dim=-3), dim=-3)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, dim: int = -1) -> Tensor:
    """A relaxed one-hot sample ``softmax((logits + g) / tau)`` with Gumbel noise ``g``.

    ``hard=True`` returns the exact one-hot of the sample's argmax in the forward pass and the relaxed
    sample's gradient in the backward pass (straight-through).
    """
    check_range(tau, "gumbel_softmax tau", low=1e-12)
    # -log(Exp(1)) is Gumbel(0, 1); exponential_ never returns 0, so no log(0).
    gumbels = -torch.empty_like(logits).exponential_().log()
    soft = ((logits + gumbels) / tau).softmax(dim=dim)
    if not hard:
        return soft
    index = soft.argmax(dim=dim, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(dim, index, 1.0)
    return one_hot - soft.detach() + soft


def categorical_kl(q_logits: Tensor, p_logits: Tensor, dim: int = -1) -> Tensor:
    """``KL(q || p)`` of categoricals given by (unnormalised) logits, reduced over ``dim`` only."""
    try:
        torch.broadcast_shapes(q_logits.shape, p_logits.shape)
    except RuntimeError as e:
        raise ShapeError(f"categorical_kl q_logits {list(q_logits.shape)} and p_logits {list(p_logits.shape)} "
                         "must broadcast") from e
    log_q = q_logits.log_softmax(dim=dim)
    log_p = p_logits.log_softmax(dim=dim)
    q = log_q.exp()
    # Categories q rules out contribute 0 (not 0 * -inf = NaN).
    return torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q)).sum(dim=dim)
