"""The step-based training loop (on Lightning Fabric), the same for every model.

One step::

    model.on_step(step)                      # curricula, temperature schedules
    out = model(batch)                       # -> Output; out.loss is minimised, out.terms logged
    fabric.backward(out.loss)                # one backward of the total loss
    clip the global grad norm (train.grad_clip; the norm before clipping is logged as terms.grad_norm),
    step every optimizer, zero grads,
    step every LR schedule, update the EMA, advance the sampler

Every ``log_every`` steps the window means of loss and terms (over ranks too; a term that is NaN on a step,
e.g. the accuracy of a question kind the batch does not hold, is left out of its mean) go to
``metrics.jsonl`` and TensorBoard; losses stay on the device between log steps so the loop does
not synchronise with the GPU every step. Every ``eval_every`` steps (and at the end) the mean of
``model.evaluate_batch`` over ``eval_batches`` validation batches is logged with a ``val/`` prefix;
every ``media_every`` steps ``model.media(batch)`` becomes ``media/step_<N>.png``. Evaluation and
media run with EMA weights (when enabled) and with the RNG state saved and restored around them,
so they never change what training does: a resumed run is bit-identical to an uninterrupted one.

SIGTERM / SIGINT finish the current step, save a checkpoint and return (``stopped`` in the
result); resume with ``run.resume=true``.
"""
from __future__ import annotations

import contextlib
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__
from ..data.batch import collate
from ..errors import SlotvideoError
from ..eval.evaluate import NanMean
from .checkpoint import FORMAT, FORMAT_VERSION, CheckpointManager, rng_state
from .config import to_yaml


class TrainingDiverged(SlotvideoError):
    """The loss became NaN or infinite."""


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block (evaluation, media) without disturbing any RNG the training stream uses."""
    py, npy = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(py)
    np.random.set_state(npy)


TIME_BUDGET = "the time budget (train.max_minutes)"


class TrainLoop:
    def __init__(self, *, fabric: Any, cfg: Any, model: torch.nn.Module, fmodel: torch.nn.Module,
                 optimizers: dict[str, Any], schedulers: dict[str, Any], ema: Any, train_loader: Any,
                 val_loader: Any, val_set: Any, run_dir: Path, logger: Any,
                 checkpoints: CheckpointManager | None, start_step: int, measure: bool = False,
                 progress: bool = True):
        self.fabric, self.cfg, self.model, self.fmodel = fabric, cfg, model, fmodel
        self.optimizers, self.schedulers, self.ema = optimizers, schedulers, ema
        self.train_loader, self.val_loader, self.val_set = train_loader, val_loader, val_set
        self.sampler = train_loader.batch_sampler
        self.run_dir, self.logger, self.checkpoints = Path(run_dir), logger, checkpoints
        self.step = start_step
        self.measure = measure
        self.progress = progress and fabric.is_global_zero
        self.timings: list[tuple[float, float]] = []   # (whole step, model part) seconds, when measuring
        self.frames_per_step = 0                        # global batch * T of the last step (bench)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self._stop: str | None = None
        self._deadline: float | None = None   # perf_counter time at which train.max_minutes runs out
        self._last_saved = -1
        self._last_eval = -1
        self._last_val: dict[str, float] = {}

    # ---------------------------------------------------------------------------------- signals
    def _handle(self, signum: int, frame: Any) -> None:
        if self._stop is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C aborts without waiting for the checkpoint
        self._stop = signal.Signals(signum).name
        if self.progress:
            print(f"\n{self._stop}: finishing step {self.step + 1}, then saving a checkpoint "
                  "(Ctrl-C again to abort)", file=sys.stderr)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    # ------------------------------------------------------------------------------------- step
    def _sync(self) -> None:
        if self.fabric.device.type == "cuda":
            torch.cuda.synchronize(self.fabric.device)

    def _train_step(self, batch: Any) -> tuple[Any, torch.Tensor | None]:
        out = self.fmodel(batch)
        self.fabric.backward(out.loss)
        clip = self.cfg.train.grad_clip
        norm = None
        if clip is not None:
            opts = list(self.optimizers.values())
            for opt in opts[1:]:  # fabric.clip_gradients unscales the first; the others here
                self.fabric.strategy.precision.unscale_gradients(opt)
            norm = self.fabric.clip_gradients(self.fmodel, opts[0], max_norm=clip)
        for opt in self.optimizers.values():
            opt.step()
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        for sched in self.schedulers.values():
            sched.step()
        if self.ema is not None:
            self.ema.update()
        return out, norm

    # -------------------------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        cfg = self.cfg.train
        total = cfg.steps
        device = self.fabric.device
        self.model.train()
        data = iter(self.train_loader)
        bar = tqdm(total=total, initial=self.step, disable=not self.progress, dynamic_ncols=True,
                   unit="step", desc=str(self.cfg.run.name), file=sys.stderr)
        start = time.perf_counter()
        if cfg.max_minutes is not None:
            self._deadline = start + 60.0 * cfg.max_minutes
        window_start, window_steps = start, 0
        loss_sum: torch.Tensor | None = None
        term_sums: dict[str, torch.Tensor] = {}
        last_loss = math.nan
        with self._signals():
            while self.step < total:
                t0 = time.perf_counter()
                self.model.on_step(self.step)
                batch = next(data).to(device, non_blocking=True)
                if self.measure:
                    self._sync()
                t1 = time.perf_counter()
                out, grad_norm = self._train_step(batch)
                if self.measure:
                    self._sync()
                t2 = time.perf_counter()
                self.sampler.advance()
                self.step += 1
                window_steps += 1
                loss = out.loss.detach().float()
                loss_sum = loss if loss_sum is None else loss_sum + loss
                terms = out.terms if grad_norm is None else {**out.terms, "grad_norm": grad_norm}
                for k, v in terms.items():  # [sum, count]: a NaN term (undefined on this batch) is skipped
                    v = v.detach().float()
                    entry = torch.stack([torch.nan_to_num(v, nan=0.0), (~torch.isnan(v)).float()])
                    term_sums[k] = term_sums[k] + entry if k in term_sums else entry
                bar.update(1)

                if self.step % cfg.log_every == 0 or self.step == total:
                    now = time.perf_counter()
                    last_loss = self._log(loss_sum, term_sums, window_steps, now - window_start, now - start, bar)
                    loss_sum, term_sums = None, {}
                    window_start, window_steps = now, 0
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.val_loader is not None:
                    self._evaluate()
                if cfg.media_every and self.step % cfg.media_every == 0 and self.val_set is not None:
                    self._media()
                if self.checkpoints is not None and cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
                    self._save()
                if self._stop_requested():
                    if window_steps:  # the last, partial window still goes to the logs
                        now = time.perf_counter()
                        last_loss = self._log(loss_sum, term_sums, window_steps, now - window_start,
                                              now - start, bar)
                    break
                if self.measure:
                    self.timings.append((time.perf_counter() - t0, t2 - t1))
                    if "video" in batch:
                        self.frames_per_step = int(batch["video"].shape[0] * batch["video"].shape[1]) * \
                            self.fabric.world_size
        bar.close()

        stopped = self._stop is not None and self.step < total
        if not stopped and cfg.eval_every and self.val_loader is not None and self._last_eval != self.step:
            self._evaluate()
        if self.checkpoints is not None and self._last_saved != self.step:
            self._save()
        if stopped and self.fabric.is_global_zero:
            where = f"; checkpoint saved to {self.checkpoints.last}" if self.checkpoints is not None else ""
            print(f"stopped by {self._stop} at step {self.step}{where}; continue with run.resume=true",
                  file=sys.stderr)
        self.logger.flush()
        if self.checkpoints is not None and self.fabric.is_global_zero and (not stopped or self._out_of_time):
            self._curves()
        return {"run_dir": str(self.run_dir), "rank": self.fabric.global_rank, "step": self.step, "loss": last_loss, "val": dict(self._last_val),
                "stopped": stopped, "seconds": time.perf_counter() - start, "device": str(device),
                "timings": list(self.timings), "frames_per_step": self.frames_per_step}

    @property
    def _out_of_time(self) -> bool:
        return self._stop == TIME_BUDGET

    def _stop_requested(self) -> bool:
        if self._stop is None and self._deadline is not None and time.perf_counter() >= self._deadline:
            self._stop = TIME_BUDGET
        stop = self._stop is not None
        if self.fabric.world_size > 1:  # every rank must leave the loop at the same step
            stop = self.fabric.strategy.reduce_boolean_decision(stop, all=False)
            if stop and self._stop is None:
                self._stop = "a signal on another rank"
        return stop

    # -------------------------------------------------------------------------------------- logs
    def _log(self, loss_sum: torch.Tensor, term_sums: dict[str, torch.Tensor], steps: int, seconds: float,
             elapsed: float, bar: Any) -> float:
        names = sorted(term_sums)
        sums = torch.stack([torch.stack([loss_sum, torch.full_like(loss_sum, steps)])] + [term_sums[n] for n in names])
        if self.fabric.world_size > 1:
            sums = self.fabric.all_reduce(sums, reduce_op="sum")
        values = (sums[:, 0] / sums[:, 1]).tolist()   # a term NaN on every step of the window stays NaN
        loss = values[0]
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the loss is {loss} at step {self.step}; lower optim.*.lr or set train.grad_clip")
        lrs = {name: opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()}
        record = {"loss": loss, "terms": dict(zip(names, values[1:])), "lr": lrs,
                  "steps_per_s": steps / max(seconds, 1e-9), "time": round(elapsed, 3)}
        self.logger.log(self.step, record)
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        return loss

    # ----------------------------------------------------------------------------------- evaluate
    def _ema_weights(self) -> Any:
        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def _evaluate(self) -> None:
        self._last_eval = self.step
        device = self.fabric.device
        acc = NanMean()
        self.model.eval()
        with preserved_rng(), self._ema_weights(), torch.no_grad():
            for batch in self.val_loader:
                batch = batch.to(device, non_blocking=True)
                acc.add(self.fmodel.evaluate_batch(batch), batch.size)
        self.model.train()
        names = sorted(acc.sums)
        if self.fabric.world_size > 1:
            names = self.fabric.broadcast(names, src=0)
            means, _, samples = acc.reduce(lambda t: self.fabric.all_reduce(t, reduce_op="sum"), names)
        else:
            means, _, samples = acc.reduce(names=names)
        self._last_val = means
        self.logger.log(self.step, {**{f"val/{k}": v for k, v in means.items()}, "val/samples": samples})

    def _media(self) -> None:
        from ..viz.grids import media_grid, save_png

        n = max(min(self.cfg.data.batch_size // self.fabric.world_size, 4), 1)
        batch = collate([self.val_set[i] for i in range(min(n, len(self.val_set)))]).to(self.fabric.device)
        self.model.eval()
        with preserved_rng(), self._ema_weights(), torch.no_grad():
            media = self.fmodel.media(batch)
        self.model.train()
        if not self.fabric.is_global_zero or "masks" not in media:
            return
        save_png(self.run_dir / "media" / f"step_{self.step}.png", media_grid(media, max_frames=8))

    def _curves(self) -> None:
        from ..viz.curves import plot_curves, read_metrics

        path = self.run_dir / "metrics.jsonl"
        keys = [k for k in read_metrics(path) if k not in ("time", "val/samples")]
        if keys:
            plot_curves(path, self.run_dir / "curves.png", keys=keys)

    # ---------------------------------------------------------------------------------- checkpoint
    def _save(self) -> None:
        rng = rng_state()
        if self.fabric.world_size > 1:
            rngs: list[Any] = [None] * self.fabric.world_size
            torch.distributed.all_gather_object(rngs, rng)
        else:
            rngs = [rng]
        fsdp = self.cfg.train.strategy == "fsdp"
        model_state = (self.fabric.strategy.get_module_state_dict(self.fmodel._forward_module) if fsdp
                       else self.model.state_dict())
        opt_states = {n: (self.fabric.strategy.get_optimizer_state(o) if fsdp else o.state_dict())
                      for n, o in self.optimizers.items()}
        if self.fabric.is_global_zero:
            state = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "slotvideo_version": __version__,
                "model_name": str(self.cfg.model.name), "config_yaml": to_yaml(self.cfg),
                "step": self.step, "world_size": self.fabric.world_size,
                "model": model_state,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizers": opt_states,
                "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
                "sampler": self.sampler.state_dict(),
                "rng": rngs,
            }
            self.checkpoints.save(state)
        self._last_saved = self.step
        self.fabric.barrier()
