"""Adjusted Rand Index (ARI) and foreground ARI (FG-ARI) between ground-truth and predicted segmentations.

ARI (Hubert & Arabie, 1985) compares two clusterings of the same pixels by counting pixel pairs, corrected
for chance: 1 for identical partitions (up to relabelling), about 0 for a random one. Object-centric work
scores it either **per frame** (each frame its own clustering, as SlotFormer and VideoSAUR ``ImageARI``) or
**per video** (one clustering over all ``T*H*W`` pixels, as SAVi, OCLF and VideoSAUR ``VideoARI``), which
also asks that a slot keep its object over time.

Edge cases (see ``docs/metrics.md``):

* A zero denominator happens only when both partitions are a single cluster or both are all singletons;
  we return 1.0 there, like SAVi, OCLF, VideoSAUR and scikit-learn. The DeepMind TF1 reference returns
  NaN in one of these cases (FG-ARI with a single foreground object, see reference section 4.1).
* A frame or video without any labelled pixel (all ignore, or all background for FG-ARI) has no score:
  we return NaN and :func:`average_scores` skips it, as VideoSAUR skips samples without a mask.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from slotvideo.errors import ConfigError, ShapeError, check_shape

Per = Literal["frame", "video"]

IGNORE_LABEL = -1
BACKGROUND_LABEL = 0


def _is_integer(x: Tensor) -> bool:
    return not (x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool)


def prepare_ids(segmentation: Tensor, prediction: Tensor) -> tuple[Tensor, Tensor, bool]:
    """Check the inputs and return integer ids ``true [B, T, H, W]``, ``pred [B, T, H, W]`` and ``is_image``.

    ``prediction`` is either soft masks (floating, ``[B, T, K, H, W]``; argmax over ``K``) or integer slot
    ids of the same shape as ``segmentation``. Image inputs (``[B, H, W]`` / ``[B, K, H, W]``) get ``T = 1``.
    """
    if not isinstance(segmentation, Tensor) or segmentation.dim() not in (3, 4):
        got = list(segmentation.shape) if isinstance(segmentation, Tensor) else type(segmentation).__name__
        raise ShapeError(f"segmentation must have shape [B, T, H, W] or [B, H, W], got {got}")
    if not _is_integer(segmentation):
        raise ShapeError(f"segmentation must be an integer tensor [B, T, H, W] (0 = background, "
                         f"-1 = ignore), got dtype {segmentation.dtype}")
    is_image = segmentation.dim() == 3
    true = segmentation.unsqueeze(1) if is_image else segmentation
    sizes = check_shape(true, "B T H W", "segmentation")
    if not isinstance(prediction, Tensor):
        raise ShapeError(f"prediction must be a tensor, got {type(prediction).__name__}")
    if prediction.dtype.is_floating_point:
        pred = prediction.unsqueeze(1) if is_image else prediction
        spec = "B K H W" if is_image else "B T K H W"
        if pred.dim() != 5:
            raise ShapeError(f"prediction (soft masks) must have shape [{', '.join(spec.split())}], "
                             f"got {list(prediction.shape)}")
        check_shape(pred, "B T K H W", "prediction (soft masks)", **sizes)
        pred = pred.argmax(dim=2)
    elif not _is_integer(prediction):
        raise ShapeError(f"prediction must be soft masks (floating) or integer slot ids, got dtype {prediction.dtype}")
    else:
        if tuple(prediction.shape) != tuple(segmentation.shape):
            raise ShapeError(f"prediction (integer ids) must have the shape of segmentation "
                             f"{list(segmentation.shape)}, got {list(prediction.shape)}")
        pred = prediction.unsqueeze(1) if is_image else prediction
        if pred.numel() and int(pred.min()) < 0:
            raise ShapeError("prediction (integer ids) must be >= 0, got negative ids")
    if true.numel() and int(true.min()) < IGNORE_LABEL:
        raise ShapeError(f"segmentation ids must be >= -1 (-1 = ignore), got {int(true.min())}")
    return true.long(), pred.long(), is_image


def contingency_table(true: Tensor, pred: Tensor, valid: Tensor, per: Per) -> Tensor:
    """Pixel counts ``n[g, k, c]`` of predicted id ``k`` and true id ``c`` in group ``g``, in float64.

    Groups are frames (``[B*T]``) or videos (``[B]``). Pixels where ``valid`` is false count nowhere.
    One ``bincount`` over a flat (group, k, c) index builds all tables at once; that is the scatter form
    of the one-hot einsum ``sum_p onehot(k)_p onehot(c)_p`` without materialising the one-hots.
    """
    b, t = true.shape[:2]
    n_groups = b * t if per == "frame" else b
    n_pred = int(pred.max()) + 1 if pred.numel() else 1
    n_true = max(int(true.max()) + 1, 1) if true.numel() else 1
    group = torch.arange(n_groups, device=true.device)
    group = group.view(b, t, 1, 1) if per == "frame" else group.view(b, 1, 1, 1)
    flat = (group * n_pred + pred) * n_true + true.clamp(min=0)
    counts = torch.bincount(flat[valid], minlength=n_groups * n_pred * n_true)
    return counts.to(torch.float64).view(n_groups, n_pred, n_true)


def check_per(per: str) -> None:
    if per not in ("frame", "video"):
        raise ConfigError(f"per must be 'frame' or 'video', got {per!r}")


def ari_from_contingency(table: Tensor) -> Tensor:
    """ARI of each contingency table ``[G, K_pred, K_true]`` -> ``[G]`` (float64).

    Pair counts are written ``n (n - 1)`` instead of ``n choose 2``: the factor 1/2 cancels in the ratio.
    """
    n = table.sum(dim=(1, 2))
    a = table.sum(dim=2)  # predicted cluster sizes
    b = table.sum(dim=1)  # true cluster sizes
    rindex = (table * (table - 1)).sum(dim=(1, 2))
    aindex = (a * (a - 1)).sum(dim=1)
    bindex = (b * (b - 1)).sum(dim=1)
    # With one labelled pixel n (n - 1) = 0 and so are aindex, bindex: clip like SAVi to get 0, not 0/0.
    expected = aindex * bindex / (n * (n - 1)).clamp(min=1)
    max_index = (aindex + bindex) / 2
    denominator = max_index - expected
    ari = (rindex - expected) / torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    ari = torch.where(denominator == 0, torch.ones_like(ari), ari)
    return torch.where(n == 0, torch.full_like(ari, float("nan")), ari)


def ari(segmentation: Tensor, prediction: Tensor, *, per: Per = "frame", foreground: bool = False) -> Tensor:
    """Adjusted Rand Index of each frame (``[B, T]``) or each video (``[B]``), float64.

    Args:
        segmentation: int ``[B, T, H, W]`` or ``[B, H, W]``; 0 = background, 1..N objects, -1 = ignore.
        prediction: soft masks ``[B, T, K, H, W]`` / ``[B, K, H, W]`` (argmax over K) or integer slot ids
            shaped like ``segmentation``.
        per: ``"frame"`` scores every frame on its own; ``"video"`` scores all ``T*H*W`` pixels as one
            clustering, so a slot that swaps objects over time is penalised.
        foreground: drop background pixels (label 0) as well as ignore pixels (FG-ARI).

    Returns ``[B, T]`` for ``per="frame"`` on videos, ``[B]`` otherwise (image inputs always give ``[B]``).
    NaN marks a frame/video with no labelled pixel; :func:`average_scores` skips it.
    """
    check_per(per)
    true, pred, is_image = prepare_ids(segmentation, prediction)
    valid = true > BACKGROUND_LABEL if foreground else true > IGNORE_LABEL
    scores = ari_from_contingency(contingency_table(true, pred, valid, per))
    if per == "frame" and not is_image:
        return scores.view(true.shape[0], true.shape[1])
    return scores


def fg_ari(segmentation: Tensor, prediction: Tensor, *, per: Per = "frame") -> Tensor:
    """Foreground ARI: :func:`ari` with background (0) and ignore (-1) pixels left out."""
    return ari(segmentation, prediction, per=per, foreground=True)


def average_scores(scores: Tensor) -> Tensor:
    """Mean of all non-NaN entries of ``scores`` (a scalar tensor); NaN if every entry is NaN.

    NaN entries are frames/videos without labelled pixels, which have no score rather than a bad one.
    To average over a whole dataset, concatenate the per-batch scores first, then call this once.
    """
    if not isinstance(scores, Tensor):
        raise ShapeError(f"scores must be a tensor, got {type(scores).__name__}")
    keep = ~torch.isnan(scores)
    count = keep.sum()
    total = torch.where(keep, scores, torch.zeros_like(scores)).sum()
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))
