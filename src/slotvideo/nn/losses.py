"""Contrastive losses: a generic InfoNCE and SetCon's set contrastive loss built on it.

Scores are inner products divided by a temperature (SetCon, eq. 2: ``g = exp(z_p . z_s / tau)``);
InfoNCE is the cross-entropy of picking the positive among the candidates.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape


def info_nce(anchors: Tensor, positives: Tensor, negatives: Tensor | None = None, temperature: float = 1.0,
             negatives_mask: Tensor | None = None, in_batch: bool = True, reduction: str = "mean") -> Tensor:
    """InfoNCE for ``anchors [N, D]`` paired with ``positives [N, D]``.

    Candidates of anchor ``i``: its positive ``positives[i]``; with ``in_batch`` also every other row
    of ``positives``; and every row of ``negatives [M, D]`` except where ``negatives_mask [N, M]`` is
    True (e.g. the anchor itself when ``negatives`` are the anchors). Returns the mean loss, or the
    per-anchor losses ``[N]`` with ``reduction="none"``.
    """
    check_range(temperature, "info_nce temperature", low=1e-12)
    sizes = check_shape(anchors, "N D", "info_nce anchors")
    check_shape(positives, "N D", "info_nce positives", **sizes)
    if reduction not in ("mean", "none"):
        raise ConfigError(f"info_nce reduction must be 'mean' or 'none', got {reduction!r}")
    n = sizes["N"]
    if in_batch:
        logits = anchors @ positives.T
        target = torch.arange(n, device=anchors.device)
    else:
        logits = (anchors * positives).sum(dim=-1, keepdim=True)
        target = torch.zeros(n, dtype=torch.long, device=anchors.device)
    if negatives is not None:
        m = check_shape(negatives, "M D", "info_nce negatives", D=sizes["D"])["M"]
        neg_logits = anchors @ negatives.T
        if negatives_mask is not None:
            check_shape(negatives_mask, "N M", "info_nce negatives_mask", N=n, M=m)
            if negatives_mask.dtype != torch.bool:
                raise ShapeError(f"info_nce negatives_mask must be bool (True = excluded), got {negatives_mask.dtype}")
            neg_logits = neg_logits.masked_fill(negatives_mask, float("-inf"))
        logits = torch.cat([logits, neg_logits], dim=-1)
    elif negatives_mask is not None:
        raise ConfigError("info_nce negatives_mask needs negatives")
    return F.cross_entropy(logits / temperature, target, reduction=reduction)


def set_contrastive_loss(z_pred: Tensor, z_target: Tensor, temperature: float = 0.5,
                         reduction: str = "mean") -> Tensor:
    """SetCon's loss (eq. 2): each predicted set vector ``z_p`` must pick its own ``z_s``.

    ``z_pred`` and ``z_target`` are ``[..., D]`` with matching leading dims (e.g. ``[B, T, D]``); all
    leading positions (every sample and time step) form one batch of ``N``. The candidates of ``z_p^i``
    are all ``N`` target vectors and all predicted vectors except ``z_p^i`` itself: ``2N - 1`` in all.
    ``reduction="none"`` returns per-position losses with the leading shape.
    """
    check_shape(z_pred, "... D", "set_contrastive_loss z_pred")
    if z_pred.shape != z_target.shape:
        raise ShapeError(f"set_contrastive_loss z_target must have the shape of z_pred {list(z_pred.shape)}, "
                         f"got {list(z_target.shape)}")
    anchors, positives = z_pred.reshape(-1, z_pred.shape[-1]), z_target.reshape(-1, z_target.shape[-1])
    self_mask = torch.eye(anchors.shape[0], dtype=torch.bool, device=anchors.device)
    loss = info_nce(anchors, positives, negatives=anchors, temperature=temperature,
                    negatives_mask=self_mask, reduction=reduction)
    return loss if reduction == "mean" else loss.reshape(z_pred.shape[:-1])
