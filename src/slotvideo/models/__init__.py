"""Models, one module per system; importing this package registers every model with the registry.

Each module here (except :mod:`~slotvideo.models.base`) defines a model under ``@register("model", name)``.
They are discovered rather than listed so that adding a model file is all it takes to make it nameable
from a config; an import error in one of them surfaces here instead of as an "unknown model".
"""
from __future__ import annotations

import importlib
import pkgutil

from slotvideo.models.base import Output, ParamGroup, VideoModel

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base" and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Output", "ParamGroup", "VideoModel"]
