"""``slotvideo bench``: how fast a config trains, and how much of a step is not the model.

It runs the real training loop (same data loading, logging and optimizer steps, no checkpoints,
evaluation or media) for ``warmup + steps`` steps in a temporary run directory, synchronising
the device around the model part of each step (forward, backward, clipping, optimizer and EMA
updates). ``outside_share`` is the part of the wall time of a step spent elsewhere: waiting for
data, moving it to the device, logging, the progress bar. The loop aims to keep it under 5%.

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU; on the CPU it is the process's
maximum resident set size (``resource.getrusage``), which includes everything Python loaded.
"""
from __future__ import annotations

import resource
import sys
import tempfile
from typing import Any

import torch
from omegaconf import DictConfig

from .config import config_from_yaml, to_yaml
from .run import train


def benchmark(cfg: DictConfig, steps: int = 20, warmup: int = 5, progress: bool = False) -> dict[str, Any]:
    """Time ``steps`` training steps of ``cfg`` after ``warmup`` untimed ones; returns the numbers."""
    if steps < 1 or warmup < 0:
        from ..errors import ConfigError

        raise ConfigError(f"bench: --steps must be >= 1 and --warmup >= 0, got {steps} and {warmup}")
    with tempfile.TemporaryDirectory(prefix="slotvideo-bench-") as tmp:
        run_cfg = config_from_yaml(to_yaml(cfg), [
            f"train.steps={steps + warmup}", "train.eval_every=0", "train.media_every=0", "train.ckpt_every=0",
            f"run.dir={tmp}", "run.resume=false",
        ], source="bench config")
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        result = train(run_cfg, measure=True, progress=progress, checkpoints=False)
    timings = result["timings"][warmup:]
    whole = sum(t for t, _ in timings)
    model = sum(m for _, m in timings)
    n = len(timings)
    on_gpu = result["device"].startswith("cuda")
    if on_gpu:
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
        memory_kind = "cuda max_memory_allocated"
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        if sys.platform == "darwin":
            peak_mib /= 1024  # bytes on macOS
        memory_kind = "process max RSS (CPU)"
    steps_per_s = n / whole if whole > 0 else float("nan")
    return {
        "rank": result["rank"], "config": str(cfg.run.name), "model": str(cfg.model.name), "device": result["device"],
        "precision": str(cfg.train.precision), "batch_size": int(cfg.data.batch_size),
        "steps": n, "warmup": warmup,
        "steps_per_s": steps_per_s,
        "frames_per_s": steps_per_s * result["frames_per_step"],
        "step_ms": 1000 * whole / max(n, 1),
        "model_ms": 1000 * model / max(n, 1),
        "outside_share": (whole - model) / whole if whole > 0 else float("nan"),
        "peak_memory_mib": peak_mib,
        "memory_kind": memory_kind,
    }


def format_table(numbers: dict[str, Any]) -> str:
    rows = [
        ("config", numbers["config"]), ("model", numbers["model"]), ("device", numbers["device"]),
        ("precision", numbers["precision"]), ("global batch", numbers["batch_size"]),
        ("timed steps (warm-up)", f"{numbers['steps']} ({numbers['warmup']})"),
        ("steps/s", f"{numbers['steps_per_s']:.3f}"), ("frames/s", f"{numbers['frames_per_s']:.1f}"),
        ("step time", f"{numbers['step_ms']:.1f} ms"), ("model time", f"{numbers['model_ms']:.1f} ms"),
        ("outside the model", f"{100 * numbers['outside_share']:.1f} %"),
        ("peak memory", f"{numbers['peak_memory_mib']:.0f} MiB ({numbers['memory_kind']})"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
