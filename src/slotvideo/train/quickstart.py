"""The main job in one call: generate Bouncing Balls, train the baseline on CPU, score it, draw it.

:func:`quickstart` needs no download and no preparation. It trains the slot-attention video baseline
with the config of ``configs/slot_attention_video/bouncing_balls.yaml`` (kept here as :data:`CONFIG`
so an installed package needs no repository checkout; a test checks the two agree) for a wall-clock
budget, then evaluates FG-ARI on held-out videos and writes an overlay GIF and the training curves.

The budget is wall-clock: ``train.max_minutes`` stops the loop when it runs out (the step finishes
and a checkpoint is saved). The learning-rate schedule is constant after warm-up, so where training
stops does not change how it trains. A few timed steps size the nominal step count (kept out of reach).
"""
from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, check_range

CONFIG: dict[str, Any] = {
    "seed": 0,
    "model": {
        "name": "slot-attention-video",
        "resolution": 16,
        "num_slots": 4,
        "slot_dim": 32,
        "hidden": 64,
        "feature_dim": 32,
        "encoder_channels": [16, 16, 16],
        "encoder_kernel": 3,
        "decoder_channels": [32, 32],
        "decoder_kernel": 3,
        "broadcast_resolution": 16,
        "slot_init": "learned",
        "iters_first": 3,
        "iters": 1,
        "transition_hidden": 64,
        "train_frames": 3,
    },
    "data": {
        "name": "bouncing-balls",
        "batch_size": 16,
        "num_workers": 0,
        "params": {"resolution": 32, "num_frames": 12, "num_balls": 3},
        "train": {"split": "train", "num": 872},
        "val": {"split": "val", "num": 128},
    },
    "train": {
        "steps": 3000,
        "log_every": 50,
        "eval_every": 1000,
        "eval_batches": 8,
        "ckpt_every": 1000,
        "media_every": 1000,
        "grad_clip": 1.0,
    },
    "optim": {"main": {"name": "adam", "lr": 2.0e-3, "schedule": {"name": "constant", "warmup_steps": 200}}},
}

# Fraction of the budget kept back for evaluation and pictures after training.
RESERVE_FRACTION = 0.1
TIMING_STEPS = 3
# Step count = SLACK x the steps the measured speed predicts: the deadline (train.max_minutes) normally
# stops training first, and the progress bar's total and ETA stay close to the truth.
SLACK = 1.25


def quickstart_config(out: str | os.PathLike, overrides: list[str] | tuple[str, ...] = (),
                      cache_dir: str | os.PathLike | None = None) -> Any:
    """The validated run config of the quickstart, writing its run to ``out``."""
    from .config import build_config, parse_overrides
    from omegaconf import OmegaConf

    out = Path(out)
    data = copy.deepcopy(CONFIG)
    data["run"] = {"dir": str(out.parent), "name": out.name}
    if cache_dir is not None:
        data["data"]["cache_dir"] = str(cache_dir)
    merged = OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(data), parse_overrides(list(overrides))))
    return build_config(merged, default_name=out.name, source="quickstart config")


def seconds_per_step(cfg: Any, steps: int = TIMING_STEPS) -> float:
    """Measured seconds per training step of the configured model on a random batch of the configured shape."""
    from .config import build_model

    model = build_model(cfg)
    model.train()
    p = cfg.data.params
    res, frames = int(p.get("resolution", cfg.model.get("resolution", 32))), int(p.get("num_frames", 12))
    from ..data.batch import Batch

    batch = Batch({"video": torch.rand(cfg.data.batch_size, frames, 3, res, res)})
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    with torch.random.fork_rng():
        model(batch).loss.backward()  # the first step pays for allocations; not timed
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            model(batch).loss.backward()
            opt.step()
    return (time.perf_counter() - start) / steps


def _clear_run(out: Path, overwrite: bool) -> None:
    if not (out / "checkpoints" / "last.ckpt").exists():
        return
    if not overwrite:
        raise ConfigError(f"--out {out} already holds a trained run; pass --overwrite to replace it, "
                          f"or choose another --out")
    if not (out / "config.yaml").is_file():
        raise ConfigError(f"--out {out} does not look like a slotvideo run (no config.yaml); not deleting it")
    shutil.rmtree(out)


def quickstart(minutes: float = 15.0, out: str | os.PathLike = "runs/quickstart", *, steps: int | None = None,
               overrides: list[str] | tuple[str, ...] = (), overwrite: bool = False,
               cache_dir: str | os.PathLike | None = None, progress: bool = True,
               log: Any = print) -> dict[str, Any]:
    """Train, evaluate and visualise the baseline; returns paths and held-out metrics.

    ``steps`` fixes the number of steps instead of deriving it from ``minutes``; ``overrides`` are config
    ``key=value`` items (e.g. ``data.val.num=16``).
    """
    from ..eval.evaluate import evaluate_run
    from ..eval.segment import overlay_frames, segment_frames
    from ..data.video_io import to_uint8, write_video
    from .checkpoint import load_model
    from .run import open_split, train

    check_range(minutes, "--minutes", low=0.0)
    if steps is not None:
        check_range(steps, "--steps", low=1, integer=True)
    out = Path(out)
    _clear_run(out, overwrite)
    cfg = quickstart_config(out, overrides, cache_dir)
    budget = minutes * 60.0
    started = time.perf_counter()
    timed = steps is None

    if timed:
        log(f"generating Bouncing Balls ({cfg.data.train.num} training, {cfg.data.val.num} held-out videos) "
            f"in {cfg.data.cache_dir}")
        open_split(cfg, "train"), open_split(cfg, "val")  # written once to the cache; train() reads it back
        per_step = seconds_per_step(cfg)
        left = budget * (1 - RESERVE_FRACTION) - (time.perf_counter() - started)
        # The clock, not the count, ends training: the count only has to be out of reach (speed on a
        # shared machine drifts), and with a constant learning rate an early stop changes nothing.
        steps = max(1, int(SLACK * left / per_step))
        log(f"{per_step:.3f} s per step measured; training for {max(left, 0) / 60:.1f} minutes "
            f"(about {int(left / per_step)} steps)")
    budget_left = max(budget * (1 - RESERVE_FRACTION) - (time.perf_counter() - started), 0.0) / 60.0
    cfg = quickstart_config(out, [*overrides, f"train.steps={steps}",
                                  f"train.eval_every={min(cfg.train.eval_every, steps)}",
                                  f"train.ckpt_every={min(cfg.train.ckpt_every, steps)}",
                                  f"train.media_every={min(cfg.train.media_every, steps)}",
                                  *([f"train.max_minutes={budget_left:.4f}"] if timed else [])], cache_dir)
    result = train(cfg, progress=progress)
    run_dir = Path(result["run_dir"])

    curves = run_dir / "curves.png"  # drawn by the loop, also when the time budget stops it

    evaluation = evaluate_run(run_dir, device="cpu")
    model = load_model(run_dir)
    val = open_split(cfg, "val")
    frames = to_uint8(val[0]["video"])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ids, _, _ = segment_frames(model, frames)
    gif = write_video(run_dir / "media" / "overlay.gif", overlay_frames(frames, ids), fps=6)
    np.save(run_dir / "media" / "overlay_masks.npy", ids)
    return {"run_dir": run_dir, "steps": result["step"], "stopped": result["stopped"],
            "train_seconds": result["seconds"], "metrics": evaluation["metrics"],
            "num_eval": evaluation["num_samples"], "eval_json": run_dir / "eval.json",
            "gif": gif, "curves": curves if curves.exists() else None,
            "seconds": time.perf_counter() - started}
