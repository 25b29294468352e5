"""Name registries: configs name models, datasets, generators and optimizers by string.

    @register("model", "setcon")
    class SetCon(VideoModel): ...

    build = lookup("model", "setcon")
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from .errors import ConfigError

KINDS = ("model", "dataset", "generator", "optimizer", "scheduler")
_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}

# Modules whose import registers the built-in entries; imported lazily on first lookup so that
# importing one layer never drags in the layers above it.
_BUILTIN_MODULES = {
    "model": ("slotvideo.models",),
    "dataset": ("slotvideo.data",),
    "generator": ("slotvideo.data",),
    "optimizer": ("slotvideo.train.optim",),
    "scheduler": ("slotvideo.train.optim",),
}


def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Decorator that registers ``obj`` under ``kind``/``name``."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown registry kind {kind!r}; kinds are {KINDS}")

    def wrap(obj: Any) -> Any:
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not obj and _qualname(existing) != _qualname(obj):
            raise ValueError(f"{kind} {name!r} is registered twice: {_qualname(existing)} and {_qualname(obj)}")
        _REGISTRY[kind][name] = obj
        return obj

    return wrap


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _load_builtins(kind: str) -> None:
    for module in _BUILTIN_MODULES.get(kind, ()):
        importlib.import_module(module)


def lookup(kind: str, name: str, key: str | None = None) -> Any:
    """Return the object registered as ``kind``/``name``; ``key`` names the config key in errors."""
    if name not in _REGISTRY[kind]:
        _load_builtins(kind)
    if name not in _REGISTRY[kind]:
        where = f"{key}: " if key else ""
        raise ConfigError(f"{where}unknown {kind} {name!r}; known {kind}s are {sorted(_REGISTRY[kind])}")
    return _REGISTRY[kind][name]


def names(kind: str) -> list[str]:
    """All registered names of ``kind`` (built-ins included)."""
    _load_builtins(kind)
    return sorted(_REGISTRY[kind])
