"""Video models from per-frame parts: map a module over time, or scan a step function over time.

``scan_over_time`` is the one place that loops over frames; everything else folds time into the batch.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from slotvideo.errors import ConfigError, ShapeError, check_range


def _tree_map(fn: Callable[[Tensor], Any], tree: Any) -> Any:
    """Apply ``fn`` to every tensor in nested tuples/lists/dicts; other leaves (e.g. None) pass through."""
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_tree_map(fn, v) for v in tree)
    return tree


def _tree_stack(trees: list[Any], dim: int) -> Any:
    """Stack a list of same-structured trees leaf-wise along ``dim``."""
    first = trees[0]
    if isinstance(first, Tensor):
        return torch.stack(trees, dim=dim)
    if isinstance(first, dict):
        return {k: _tree_stack([t[k] for t in trees], dim) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_tree_stack([t[i] for t in trees], dim) for i in range(len(first)))
    return first


def map_over_time(fn: Callable[..., Any], x: Tensor, *more: Tensor, **kwargs: Any) -> Any:
    """``fn`` applied to ``x [B, T, ...]`` (and ``more`` tensors ``[B, T, ...]``) with time folded into batch.

    ``fn`` sees ``[B*T, ...]`` inputs; every tensor in its output (a tensor or a tuple/list/dict of them)
    gets its leading ``B*T`` unfolded back to ``[B, T, ...]``. ``kwargs`` are passed through unchanged.
    """
    if x.dim() < 2:
        raise ShapeError(f"map_over_time input must have shape [B, T, ...], got {list(x.shape)}")
    b, t = x.shape[:2]
    for i, m in enumerate(more):
        if not isinstance(m, Tensor) or tuple(m.shape[:2]) != (b, t):
            shape = list(m.shape) if isinstance(m, Tensor) else type(m).__name__
            raise ShapeError(f"map_over_time extra input {i} must have shape [B={b}, T={t}, ...], got {shape}")
    out = fn(x.flatten(0, 1), *(m.flatten(0, 1) for m in more), **kwargs)

    def unfold(y: Tensor) -> Tensor:
        if y.dim() == 0 or y.shape[0] != b * t:
            raise ShapeError(f"map_over_time: the mapped function must return [B*T={b * t}, ...] tensors, "
                             f"got {list(y.shape)}")
        return y.unflatten(0, (b, t))

    return _tree_map(unfold, out)


def scan_over_time(step_fn: Callable[[Any, Any], tuple[Any, Any]], init_state: Any, inputs: Any = None,
                   steps: int | None = None) -> tuple[Any, Any]:
    """Run ``state, out = step_fn(state, input_t)`` over time; return ``(final_state, outputs)``.

    ``inputs`` is a tensor ``[B, T, ...]`` or a tuple/list/dict of them sharing ``T``; each step gets the
    slice at ``t``. With ``inputs=None``, ``steps`` sets the length and ``step_fn`` gets ``None``
    (rollouts driven only by the state). Outputs (any tree of tensors) are stacked along dim 1.
    """
    lengths: set[int] = set()
    _tree_map(lambda v: lengths.add(v.shape[1]) if v.dim() >= 2 else lengths.add(-1), inputs)
    if -1 in lengths:
        raise ShapeError("scan_over_time inputs must be [B, T, ...] tensors")
    if len(lengths) > 1:
        raise ShapeError(f"scan_over_time inputs disagree on T: {sorted(lengths)}")
    if inputs is None or not lengths:
        if steps is None:
            raise ConfigError("scan_over_time needs inputs [B, T, ...] or steps")
        check_range(steps, "scan_over_time steps", low=1, integer=True)
        length = steps
    else:
        length = lengths.pop()
        if steps is not None and steps != length:
            raise ConfigError(f"scan_over_time steps={steps} disagrees with inputs of length T={length}")
    state, outputs = init_state, []
    for t in range(length):
        step_input = None if inputs is None else _tree_map(lambda v: v[:, t], inputs)
        state, out = step_fn(state, step_input)
        outputs.append(out)
    return state, _tree_stack(outputs, dim=1)
