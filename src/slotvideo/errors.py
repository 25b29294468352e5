"""Errors meant for the user, and the shape checks that raise them.

Every error a user can cause (a config typo, a wrong tensor shape, a missing file) is a
:class:`SlotvideoError` whose message names the key, file or shape at fault. The CLI prints
such errors as one line and exits non-zero instead of showing a traceback.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch


class SlotvideoError(Exception):
    """Base class of all errors with a message meant for the user."""


class ConfigError(SlotvideoError, ValueError):
    """A config key is unknown, of the wrong type, or inconsistent with another."""


class DataError(SlotvideoError, ValueError):
    """A dataset file, folder or field is missing or malformed."""


class ShapeError(SlotvideoError, ValueError):
    """A tensor passed to a block or metric has the wrong shape or dtype."""


class CheckpointError(SlotvideoError, ValueError):
    """A checkpoint is missing, corrupt, or belongs to another model."""


def check_shape(x: Any, spec: str, name: str, **known: int) -> dict[str, int]:
    """Check that ``x`` has the shape described by ``spec`` and return the named sizes.

    ``spec`` is a space separated list of dimensions: an integer must match exactly, a name binds
    to the size it first meets (and must agree afterwards, or with ``known``), ``_`` matches anything,
    and a leading ``...`` allows any number of leading dimensions.

    >>> check_shape(torch.zeros(2, 5, 8), "... N D", "inputs", D=8)
    {'N': 5, 'D': 8}
    """
    shape = tuple(getattr(x, "shape", ()))
    if not hasattr(x, "shape"):
        raise ShapeError(f"{name} must be a tensor of shape [{spec.replace(' ', ', ')}], got {type(x).__name__}")
    dims = spec.split()
    leading = bool(dims) and dims[0] == "..."
    if leading:
        dims = dims[1:]
    expected = "[" + ", ".join((["..."] if leading else []) + dims) + "]"
    if (leading and len(shape) < len(dims)) or (not leading and len(shape) != len(dims)):
        raise ShapeError(f"{name} must have shape {expected}, got {list(shape)}")
    sizes: dict[str, int] = dict(known)
    for d, s in zip(dims, shape[len(shape) - len(dims):]):
        if d == "_":
            continue
        if d.lstrip("-").isdigit():
            if int(d) != s:
                raise ShapeError(f"{name} must have shape {expected}, got {list(shape)}")
            continue
        if d in sizes and sizes[d] != s:
            raise ShapeError(f"{name} must have shape {expected} with {d}={sizes[d]}, got {list(shape)}")
        sizes[d] = s
    return sizes


def check_token_ids(ids: Any, size: int, name: str, size_key: str = "model.vocab_size") -> None:
    """Token ids (words, answers) must be int64 in ``[0, size)`` (0 = padding); ``size_key`` names the setting."""
    if ids.dtype != torch.long:
        raise ShapeError(f"{name} token ids must be int64, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise ShapeError(f"{name} ids must be in [0, {size_key}={size}), got [{int(ids.min())}, "
                         f"{int(ids.max())}]; raise {size_key}")


def check_bounds(value: Any, meta: Any, key: str) -> None:
    """``value`` against a config field's ``metadata`` (``min``, ``max``, ``choices``); ``key`` names it."""
    if value is None or isinstance(value, bool) or not meta:
        return
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: expected one of {list(meta['choices'])}, got {value!r}")
    if isinstance(value, (int, float)):
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            lo = "-inf" if low is None else low
            hi = "inf" if high is None else high
            raise ConfigError(f"{key}: must be in [{lo}, {hi}], got {value!r}")


def check_fields(cfg: Any, prefix: str = "model") -> None:
    """Every field of the dataclass instance ``cfg`` against its ``metadata``, as a YAML config is checked at
    load time: a ``Config`` built in code gets the same errors, naming ``<prefix>.<field>``."""
    for f in dataclasses.fields(cfg):
        check_bounds(getattr(cfg, f.name), f.metadata, f"{prefix}.{f.name}")


def check_range(value: Any, name: str, low: float | None = None, high: float | None = None,
                integer: bool = False) -> None:
    """Raise a :class:`ConfigError` naming ``name`` and its allowed range if ``value`` is outside it."""
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low or high is not None and value > high:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(f"{name} must be in [{lo}, {hi}], got {value!r}")
