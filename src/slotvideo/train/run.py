"""Glue: from a loaded config to a finished (or resumed) run.

Everything is built from the config through the registry; nothing here knows a particular model.
Datasets come from ONE place, :func:`open_split`, which calls
``slotvideo.data.open_dataset(data.name, split, num=..., seed=data.seed, params=data.params,
cache_dir=data.cache_dir)``; that looks the name up in the ``"dataset"`` registry (a generator class
or a factory ``f(split, *, num, seed, params, cache_dir)``) and returns a map-style dataset of sample
dicts (see ``slotvideo.data.batch``).

Run directory (``<run.dir>/<run.name>/``)::

    config.yaml            the resolved config (written once setup has succeeded)
    metrics.jsonl          one JSON line per log / evaluation step
    tb/                    TensorBoard events
    checkpoints/           last.ckpt (always complete) + step_XXXXXXX.ckpt (newest train.keep_checkpoints)
    media/step_<N>.png     reconstruction / mask grids every train.media_every steps
    curves.png             training curves, drawn at the end
    eval.json              written by ``slotvideo evaluate``

Setup (datasets, model, optimizers, a first batch) runs before anything is written, so a config
or data error leaves no run directory behind; a run that crashes later leaves no checkpoint newer
than its last complete save.
"""
from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning_fabric import Fabric
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from ..data import open_dataset
from ..data.batch import Batch, collate
from ..errors import CheckpointError, ConfigError, DataError
from ..registry import lookup
from .checkpoint import CheckpointManager, atomic_write_text, init_weights, read_checkpoint, set_rng_state
from .config import build_model, plain, to_yaml
from .logging import RunLogger
from .loop import TrainLoop
from .optim import EMA, build_optimizers, build_schedulers
from .sampler import BalancedBatchSampler, ResumableBatchSampler


# ------------------------------------------------------------------------------------------ data

def open_split(cfg: DictConfig, which: str) -> Dataset:
    """The dataset of ``data.train`` or ``data.val`` through the registered dataset builder."""
    section = cfg.data[which]
    lookup("dataset", cfg.data.name, key="data.name")  # the error names the config key
    dataset = open_dataset(cfg.data.name, section.split, num=section.num, seed=cfg.data.seed,
                           params=plain(cfg.data.params), cache_dir=cfg.data.cache_dir)
    if len(dataset) == 0:
        raise DataError(f"data.{which}: dataset {cfg.data.name!r} split {section.split!r} is empty")
    return dataset


class BatchLoader:
    """Iterates a DataLoader as :class:`Batch` objects.

    Workers send plain dicts: a ``Batch`` does not survive pickling between processes (it defines
    no ``__reduce__``), so the main process wraps each collated dict.
    """

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.batch_sampler: ResumableBatchSampler = loader.batch_sampler

    def __iter__(self) -> Iterator[Batch]:
        return (Batch(d) for d in self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def _collate_dict(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(collate(samples))


def make_loader(dataset: Dataset, cfg: DictConfig, *, rank: int, world_size: int, train: bool,
                max_batches: int | None, what: str) -> BatchLoader:
    """Batches over our :class:`ResumableBatchSampler` (shuffled + endless when ``train``)."""
    if train and cfg.data.balance:
        groups = getattr(dataset, "balance_groups", None)
        if groups is None:
            raise ConfigError(f"data.balance: {what} ({type(dataset).__name__}) has no groups to balance; it needs "
                              "a dataset with balance_groups() (clevrer task: mixed, cater camera: both)")
        sampler: ResumableBatchSampler = BalancedBatchSampler(groups(), cfg.data.batch_size, rank=rank,
                                                              world_size=world_size, seed=cfg.seed,
                                                              max_batches=max_batches, what=what)
    else:
        sampler = ResumableBatchSampler(len(dataset), cfg.data.batch_size, rank=rank, world_size=world_size,
                                        seed=cfg.seed, shuffle=train, drop_last=train, infinite=train,
                                        max_batches=max_batches, what=what)
    workers = cfg.data.num_workers
    return BatchLoader(DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=_collate_dict,
                      persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(),
                      worker_init_fn=_worker_ignores_sigint if workers > 0 else None,
                      # the workers' base seed comes from here, not from the global RNG, so that
                      # creating an iterator does not shift the training randomness (exact resume)
                      generator=torch.Generator().manual_seed(cfg.seed)))


def _worker_ignores_sigint(worker_id: int) -> None:
    """Ctrl-C reaches the whole process group; the main process stops cleanly, so workers must not die."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---------------------------------------------------------------------------------------- fabric

def make_fabric(train_cfg: Any) -> Fabric:
    strategy: Any = train_cfg.strategy
    if strategy == "ddp":
        from lightning_fabric.strategies import DDPStrategy

        strategy = DDPStrategy(find_unused_parameters=False)
    elif strategy == "fsdp":
        from lightning_fabric.strategies import FSDPStrategy

        strategy = FSDPStrategy(state_dict_type="full", use_orig_params=True)
    try:
        return Fabric(accelerator=train_cfg.accelerator, devices=train_cfg.devices, num_nodes=train_cfg.num_nodes,
                      strategy=strategy, precision=train_cfg.precision)
    except (ValueError, RuntimeError, TypeError) as e:
        raise ConfigError(f"train: cannot set up accelerator={train_cfg.accelerator} devices={train_cfg.devices} "
                          f"strategy={train_cfg.strategy} precision={train_cfg.precision}: "
                          f"{str(e).splitlines()[0]}") from None


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def stream_seed(seed: int, rank: int) -> int:
    """Seed of a rank's training randomness (dropout, sampling): distinct per rank."""
    return int(np.random.SeedSequence([seed, rank, 1]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------- train

def run_dir_of(cfg: DictConfig) -> Path:
    return Path(cfg.run.dir) / str(cfg.run.name)


def check_run_dir(cfg: DictConfig) -> Path | None:
    """The checkpoint to resume from (``run.resume``), or None; refuses to overwrite a trained run."""
    last = run_dir_of(cfg) / "checkpoints" / "last.ckpt"
    if cfg.run.resume:
        if not last.is_file():
            raise CheckpointError(f"run.resume=true but {last} does not exist; start the run without run.resume")
        return last
    if last.exists():
        raise ConfigError(f"run.name: {run_dir_of(cfg)} already holds a trained run; pass run.resume=true to "
                          f"continue it, or choose another run.name")
    return None


def train(cfg: DictConfig, *, measure: bool = False, progress: bool = True, write_media: bool = True,
          checkpoints: bool = True) -> dict[str, Any]:
    """Train (or resume) the run described by ``cfg``; returns a summary of the finished run.

    ``measure`` times the model part of every step for :mod:`slotvideo.train.bench`;
    ``checkpoints=False`` (bench) writes no checkpoint and no curves, and does not check the run dir.
    """
    resume_from = check_run_dir(cfg) if checkpoints else None
    if resume_from is not None and cfg.train.strategy == "fsdp":
        raise ConfigError("run.resume: resuming an FSDP run is not supported yet")
    state = read_checkpoint(resume_from, expect_model=cfg.model.name) if resume_from is not None else None

    fabric = make_fabric(cfg.train)
    fabric.launch()
    rank, world = fabric.global_rank, fabric.world_size

    seed_all(cfg.seed)  # same model initialisation on every rank
    train_set = open_split(cfg, "train")
    needs_val = cfg.train.eval_every > 0 or (cfg.train.media_every > 0 and write_media)
    val_set = open_split(cfg, "val") if needs_val else None
    model = build_model(cfg)
    if state is not None:
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CheckpointError(f"{resume_from}: weights do not fit the configured model: "
                                  f"{str(e).splitlines()[0]}") from None
    elif cfg.train.init_from:
        fresh = init_weights(model, cfg.train.init_from, expect_model=cfg.model.name)
        if fabric.is_global_zero:
            named = f" ({', '.join(fresh[:4])}{', ...' if len(fresh) > 4 else ''})" if fresh else ""
            print(f"train.init_from: weights from {cfg.train.init_from}; {len(fresh)} tensors keep their "
                  f"initialisation{named}", flush=True)
    module = torch.compile(model) if cfg.train.compile else model
    fmodel = fabric.setup_module(module)
    fmodel.mark_forward_method("evaluate_batch")
    fmodel.mark_forward_method("media")

    optimizers = build_optimizers(model, cfg.optim, cfg.data.batch_size)
    schedulers = build_schedulers(optimizers, cfg.optim, cfg.train.steps, cfg.data.batch_size)
    wrapped = fabric.setup_optimizers(*optimizers.values())
    wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
    fabric_opts = dict(zip(optimizers, wrapped))
    ema = EMA(model, cfg.train.ema.decay) if cfg.train.ema.decay is not None else None

    train_loader = make_loader(train_set, cfg, rank=rank, world_size=world, train=True, max_batches=None,
                               what="data.train")
    val_loader = None
    if val_set is not None:
        val_loader = make_loader(val_set, cfg, rank=rank, world_size=world, train=False,
                                 max_batches=cfg.train.eval_batches, what="data.val")
    start_step = 0
    if state is not None:
        start_step = _restore(state, optimizers, schedulers, ema, train_loader.batch_sampler, rank, world,
                              resume_from)
    else:
        seed_all(stream_seed(cfg.seed, rank))

    run_dir = run_dir_of(cfg)
    if fabric.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(to_yaml(cfg), run_dir / "config.yaml")
    fabric.barrier()
    logger = RunLogger(run_dir, enabled=fabric.is_global_zero,
                       resume_step=start_step if state is not None else None)
    loop = TrainLoop(
        fabric=fabric, cfg=cfg, model=model, fmodel=fmodel, optimizers=fabric_opts, schedulers=schedulers,
        ema=ema, train_loader=train_loader, val_loader=val_loader, val_set=val_set if write_media else None,
        run_dir=run_dir, logger=logger,
        checkpoints=CheckpointManager(run_dir / "checkpoints", cfg.train.keep_checkpoints) if checkpoints else None,
        start_step=start_step, measure=measure, progress=progress,
    )
    try:
        return loop.run()
    finally:
        logger.close()


def _restore(state: dict[str, Any], optimizers: dict, schedulers: dict, ema: EMA | None,
             sampler: ResumableBatchSampler, rank: int, world: int, path: Path) -> int:
    if sorted(state.get("optimizers", {})) != sorted(optimizers):
        raise CheckpointError(f"{path}: checkpoint has optimizers {sorted(state.get('optimizers', {}))}, "
                              f"the config has {sorted(optimizers)}")
    try:
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            schedulers[name].load_state_dict(state["schedulers"][name])
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{path}: optimizer state does not fit: {str(e).splitlines()[0]}") from None
    if ema is not None:
        if state.get("ema"):
            ema.load_state_dict(state["ema"])
        # a run that starts using EMA on resume starts its average from the current weights
    sampler.load_state_dict(state["sampler"])
    rngs = state["rng"]
    set_rng_state(rngs[rank] if len(rngs) == world else rngs[0])
    if len(rngs) != world:
        print(f"note: {path} was written by {len(rngs)} processes, this run has {world}; "
              "training continues but not bit-identically")
    return int(state["step"])
