"""The gradient input of iterative amortized inference (Marino et al. 2018; IODINE; OP3; PARTS; Slot Transformer).

A refinement network sees ``grad_lambda L``, the gradient of the loss with respect to the current posterior
parameters. Two facts from the reference code (seed-model-details.md sections 2.1, 6.1, 8) fix how:

* it is a **stop-gradient** input: computed with ``create_graph=False`` and detached, so training never
  differentiates through it (no second-order terms);
* its scale is meaningless (it grows with the number of pixels and shrinks with the batch mean), so it is
  **LayerNorm'd per slot over the parameter axis** before use: IODINE with a learned affine, Marino's AVF
  without one.

The gradient must also exist in evaluation under ``torch.no_grad``: :func:`loss_gradient` switches grad
mode on locally, and :func:`differentiable` gives a leaf to differentiate against when the parameters
carry no graph.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from slotvideo.errors import ShapeError, check_range, check_shape


def differentiable(params: Tensor) -> Tensor:
    """``params`` itself when autograd tracks it (training), else a detached leaf that requires grad.

    Call inside ``torch.enable_grad()`` and compute the loss from the returned tensor.
    """
    if params.requires_grad and torch.is_grad_enabled():
        return params
    return params.detach().requires_grad_(True)


def loss_gradient(loss: Tensor, params: Tensor) -> Tensor:
    """``d loss / d params``, detached (a stop-gradient input), same shape as ``params``.

    ``loss`` must be a scalar built from ``params`` (see :func:`differentiable`). Reduce the loss as a
    SUM over the batch so a sample's gradient does not depend on the batch size. The graph is retained:
    the caller's training loss may reuse parts of it.
    """
    if loss.dim() != 0:
        raise ShapeError(f"loss_gradient needs a scalar loss, got shape {list(loss.shape)}")
    if not params.requires_grad:
        raise ShapeError("loss_gradient params must require grad; build the loss from differentiable(params)")
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(loss, params, retain_graph=True, create_graph=False)
    return grad.detach()


class NormalizedGradient(nn.Module):
    """LayerNorm of a detached gradient over its last axis ``[..., P]`` (per slot), optionally with a learned affine.

    ``affine=True`` is IODINE's ``snt.LayerNorm`` on ``dzp``; ``affine=False`` is Marino's AVF. The input
    is detached here as well, so passing a graph-carrying gradient cannot leak second-order terms.
    """

    def __init__(self, dim: int, affine: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        check_range(dim, "NormalizedGradient dim", low=1, integer=True)
        self.dim = dim
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=affine)

    def forward(self, grad: Tensor) -> Tensor:
        check_shape(grad, "... P", "gradient", P=self.dim)
        return self.norm(grad.detach())
