"""The training workbench: configs, optimizers, the loop, checkpoints and benchmarks.

Entry points (imported lazily so that ``slotvideo.train.optim`` can be loaded by the registry
without pulling in Lightning Fabric):

    cfg = load_config("configs/<model>/<dataset>.yaml", ["train.steps=100"])   # .config
    summary = train(cfg)                                                       # .run
    model = load_model("runs/<name>")                                          # .checkpoint
    export_safetensors("runs/<name>", "weights.safetensors")                   # .checkpoint
    numbers = benchmark(cfg, steps=20, warmup=5)                               # .bench
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_config": "config", "config_from_yaml": "config", "build_model": "config", "model_config": "config",
    "train": "run", "open_split": "run", "load_model": "checkpoint", "export_safetensors": "checkpoint",
    "read_checkpoint": "checkpoint", "benchmark": "bench",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
