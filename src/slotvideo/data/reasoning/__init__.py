"""Generated reasoning datasets written in official layouts: ``clevrer-mini`` (CLEVRER) and ``cater-mini`` (CATER).

Importing this package registers both generators. :func:`generate_layout` is the one hook a command
calls: ``generate_layout(name, out_dir, num, seed, workers=2, params=None, progress=True)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .cater_mini import CaterMini, generate_cater_mini
from .clevrer_mini import ClevrerMini, generate_clevrer_mini

LAYOUT_GENERATORS = {"clevrer-mini": generate_clevrer_mini, "cater-mini": generate_cater_mini}


def generate_layout(name: str, out_dir: str | Path, num: int, seed: int = 0, workers: int = 2,
                    params: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Write dataset ``name`` (a key of :data:`LAYOUT_GENERATORS`) to ``out_dir``; returns its stats."""
    if name not in LAYOUT_GENERATORS:
        raise ConfigError(f"unknown layout generator {name!r}; known: {sorted(LAYOUT_GENERATORS)}")
    return LAYOUT_GENERATORS[name](out_dir, num, seed, workers, progress, **(params or {}))


from . import datasets  # noqa: E402,F401  (registers the clevrer-mini and cater-mini datasets)

__all__ = ["CaterMini", "ClevrerMini", "LAYOUT_GENERATORS", "generate_cater_mini", "generate_clevrer_mini",
           "generate_layout"]
