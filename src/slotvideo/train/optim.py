"""Optimizers, learning-rate schedules and an EMA of weights, built from the ``optim`` config section.

The model says which parameters go to which optimizer (:meth:`VideoModel.param_groups`); the config
says how each named optimizer behaves. Groups naming the same optimizer share it (one torch
optimizer with several param groups, each with its ``lr_scale`` and optional ``weight_decay``).

Registered optimizers (``@register("optimizer", name)``) are factories
``(param_groups: list[dict], cfg: OptimConfig section) -> torch.optim.Optimizer``:
``adam``, ``adamw``, ``rmsprop``, ``sgd`` from ``torch.optim`` and ``lamb`` from ``pytorch_optimizer``.

LAMB: ``pytorch_optimizer.Lamb`` already has the zero-norm guard of optax / TF-addons (trust
ratio 1 when ``‖w‖ = 0`` or ``‖update‖ = 0``), so zero-initialised tensors do train. We set two
defaults towards optax's ``lamb`` (reference/seed-model-details.md §10): weight decay is added to
the update *before* the trust ratio (``weight_decouple=False``), and the weight norm is not clamped
(pytorch_optimizer clamps it at 10 by default; ``kwargs: {trust_clamp: 10}`` restores that). Like
cybertronai's version it does not bias-correct the moments; with the per-tensor trust ratio the
first-moment correction cancels out, so this only matters in the first steps through ``eps``.

Registered schedules (``@register("scheduler", name)``) are factories
``(cfg: ScheduleConfig section, total_steps: int, base_lr: float) -> (step -> multiplier)``;
:func:`lr_lambda` multiplies them with the linear warm-up and the result drives a ``LambdaLR``.
``exponential`` and ``step`` decay count from step 0 (as Slot Attention / SAVi do, warm-up on top);
``cosine`` decays from the end of warm-up to ``schedule.steps`` (default ``train.steps``) down to
``min_lr`` (same units as ``lr``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from pytorch_optimizer import Lamb
from torch import nn

from ..errors import ConfigError
from ..registry import lookup, register


# ------------------------------------------------------------------------------------ optimizers

def _kwargs(cfg: Any, allowed: Iterable[str]) -> dict[str, Any]:
    """Typed fields that are set (not null) and meaningful for this optimizer, plus ``kwargs``."""
    out: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    for key in allowed:
        value = getattr(cfg, key)
        if value is not None:
            out[key] = tuple(value) if key == "betas" else value
    out.update(dict(cfg.kwargs))
    return out


def _make(cls: type, params: list[dict], cfg: Any, allowed: Iterable[str], key: str,
          **defaults: Any) -> torch.optim.Optimizer:
    kwargs = {**defaults, **_kwargs(cfg, allowed)}
    try:
        return cls(params, **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{key}: cannot build {cfg.name} with {kwargs}: {e}") from None


@register("optimizer", "adam")
def adam(params: list[dict], cfg: Any, key: str = "optim") -> torch.optim.Optimizer:
    return _make(torch.optim.Adam, params, cfg, ("betas", "eps"), key)


@register("optimizer", "adamw")
def adamw(params: list[dict], cfg: Any, key: str = "optim") -> torch.optim.Optimizer:
    return _make(torch.optim.AdamW, params, cfg, ("betas", "eps"), key)


@register("optimizer", "rmsprop")
def rmsprop(params: list[dict], cfg: Any, key: str = "optim") -> torch.optim.Optimizer:
    return _make(torch.optim.RMSprop, params, cfg, ("momentum", "eps"), key)


@register("optimizer", "sgd")
def sgd(params: list[dict], cfg: Any, key: str = "optim") -> torch.optim.Optimizer:
    return _make(torch.optim.SGD, params, cfg, ("momentum",), key)


@register("optimizer", "lamb")
def lamb(params: list[dict], cfg: Any, key: str = "optim") -> torch.optim.Optimizer:
    extra = dict(cfg.kwargs)
    clamp = extra.pop("trust_clamp", math.inf)
    kwargs = {"weight_decouple": False, **_kwargs(cfg, ("betas", "eps")), **extra}
    kwargs.pop("trust_clamp", None)
    try:
        opt = Lamb(params, **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{key}: cannot build lamb with {kwargs}: {e}") from None
    opt.clamp = float(clamp)
    return opt


def effective_lr(cfg: Any, batch_size: int) -> float:
    """``lr``, scaled by ``batch_size / scale_lr_by_batch`` when that is set (SetCon: batch/256)."""
    if cfg.scale_lr_by_batch:
        return cfg.lr * batch_size / cfg.scale_lr_by_batch
    return cfg.lr


def build_optimizers(model: nn.Module, optim_cfg: Any, batch_size: int) -> dict[str, torch.optim.Optimizer]:
    """One optimizer per name used by ``model.param_groups()``, configured by ``optim.<name>``."""
    groups_by_opt: dict[str, list[dict]] = {}
    seen: dict[int, str] = {}
    for group in model.param_groups():
        if group.optimizer not in optim_cfg:
            raise ConfigError(f"optim.{group.optimizer}: the model's parameter group {group.name!r} uses "
                              f"optimizer {group.optimizer!r}, but the config defines {sorted(optim_cfg)}")
        params = [p for p in group.params if p.requires_grad]
        for p in params:
            if id(p) in seen:
                raise ConfigError(f"model.param_groups(): a parameter is in both group {seen[id(p)]!r} "
                                  f"and group {group.name!r}")
            seen[id(p)] = group.name
        if not params:
            continue
        cfg = optim_cfg[group.optimizer]
        entry: dict[str, Any] = {"params": params, "lr": effective_lr(cfg, batch_size) * group.lr_scale,
                                 "name": group.name}
        if group.weight_decay is not None:
            entry["weight_decay"] = group.weight_decay
        groups_by_opt.setdefault(group.optimizer, []).append(entry)
    if not groups_by_opt:
        raise ConfigError("model.param_groups() returned no trainable parameters")
    unused = sorted(set(optim_cfg) - set(groups_by_opt))
    if unused:
        raise ConfigError(f"optim.{unused[0]}: no parameter group of model {getattr(model, 'name', '?')!r} "
                          f"uses this optimizer (groups use {sorted(groups_by_opt)})")
    out = {}
    for name in sorted(groups_by_opt):
        cfg = optim_cfg[name]
        factory = lookup("optimizer", cfg.name, key=f"optim.{name}.name")
        out[name] = factory(groups_by_opt[name], cfg, key=f"optim.{name}")
    return out


# ------------------------------------------------------------------------------------- schedules

@register("scheduler", "constant")
def constant(cfg: Any, total_steps: int, base_lr: float) -> Callable[[int], float]:
    return lambda step: 1.0


@register("scheduler", "cosine")
def cosine(cfg: Any, total_steps: int, base_lr: float) -> Callable[[int], float]:
    end = cfg.steps or total_steps
    floor = cfg.min_lr / base_lr if base_lr > 0 else 0.0
    span = max(end - cfg.warmup_steps, 1)

    def mult(step: int) -> float:
        t = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return mult


@register("scheduler", "exponential")
def exponential(cfg: Any, total_steps: int, base_lr: float) -> Callable[[int], float]:
    return lambda step: cfg.decay_rate ** (step / cfg.decay_steps)


@register("scheduler", "step")
def step_decay(cfg: Any, total_steps: int, base_lr: float) -> Callable[[int], float]:
    return lambda step: cfg.gamma ** (step // cfg.step_size)


def lr_lambda(cfg: Any, total_steps: int, base_lr: float, key: str = "optim.main.schedule") -> Callable[[int], float]:
    """Linear warm-up times the named decay: the multiplier of ``lr`` at a step (0-based)."""
    decay = lookup("scheduler", cfg.name, key=f"{key}.name")(cfg, total_steps, base_lr)
    warmup = cfg.warmup_steps

    def mult(step: int) -> float:
        ramp = min((step + 1) / warmup, 1.0) if warmup > 0 else 1.0
        return ramp * decay(step)

    return mult


def build_schedulers(optimizers: dict[str, torch.optim.Optimizer], optim_cfg: Any, total_steps: int,
                     batch_size: int) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    out = {}
    for name, opt in optimizers.items():
        cfg = optim_cfg[name]
        fn = lr_lambda(cfg.schedule, total_steps, effective_lr(cfg, batch_size), key=f"optim.{name}.schedule")
        out[name] = torch.optim.lr_scheduler.LambdaLR(opt, fn)
    return out


# ------------------------------------------------------------------------------------------- EMA

class EMA:
    """Exponential moving average of a model's trainable parameters (buffers follow the live model).

    ``shadow = decay * shadow + (1 - decay) * param`` after every optimizer step. Kept as a dict of
    tensors rather than a second module so that it costs one fused ``lerp`` per step and its state is
    plain tensors in the checkpoint. :meth:`swapped_in` temporarily puts the averages into the model
    (evaluation and media use the EMA weights).
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.num_updates = 0
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self.params = [params[n] for n in self.names]
        self.shadow = [p.detach().clone().float() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        self.num_updates += 1
        live = [p.detach().float() for p in self.params]
        torch._foreach_lerp_(self.shadow, live, 1.0 - self.decay)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow": dict(zip(self.names, self.shadow))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = set(self.names) - set(state["shadow"])
        if missing:
            raise ConfigError(f"EMA state lacks parameters {sorted(missing)[:3]}")
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        with torch.no_grad():
            for name, buf in zip(self.names, self.shadow):
                buf.copy_(state["shadow"][name])

    class _Swap:
        def __init__(self, ema: "EMA"):
            self.ema = ema
            self.saved: list[torch.Tensor] = []

        def __enter__(self) -> None:
            with torch.no_grad():
                self.saved = [p.detach().clone() for p in self.ema.params]
                for p, s in zip(self.ema.params, self.ema.shadow):
                    p.copy_(s)

        def __exit__(self, *exc: Any) -> None:
            with torch.no_grad():
                for p, s in zip(self.ema.params, self.saved):
                    p.copy_(s)

    def swapped_in(self) -> "EMA._Swap":
        return EMA._Swap(self)


def ema_weights(state_dict: dict[str, torch.Tensor], ema_state: dict[str, Any] | None) -> dict[str, torch.Tensor]:
    """A model state dict with the EMA averages in place of the trained parameters."""
    if not ema_state:
        return state_dict
    out = dict(state_dict)
    for name, value in ema_state["shadow"].items():
        if name in out:
            out[name] = value.to(out[name].dtype)
    return out
