"""Optimizers from param groups, schedules, LAMB's zero-norm guard, EMA."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from slotvideo.errors import ConfigError
from slotvideo.train.config import build_model, config_from_yaml, load_config
from slotvideo.train.optim import EMA, build_optimizers, build_schedulers, ema_weights, lr_lambda

TWO = "optim:\n  main: {name: adamw, lr: 0.01, weight_decay: 0.1, betas: [0.8, 0.9]}\n" \
      "  decoder: {name: lamb, lr: 0.02, scale_lr_by_batch: 2}\n"


def _two_optimizer_cfg(config_file: Path, extra: list[str] = ()):
    text = config_file.read_text().split("optim:")[0] + TWO
    return config_from_yaml(text, ["model.two_optimizers=true", *extra])


def test_groups_share_optimizers_and_scale_lr(config_file: Path) -> None:
    cfg = _two_optimizer_cfg(config_file)
    model = build_model(cfg)
    opts = build_optimizers(model, cfg.optim, cfg.data.batch_size)
    assert sorted(opts) == ["decoder", "main"]
    assert isinstance(opts["main"], torch.optim.AdamW) and opts["main"].param_groups[0]["betas"] == (0.8, 0.9)
    dec = opts["decoder"].param_groups[0]
    assert dec["lr"] == pytest.approx(0.02 * 4 / 2 * 0.5)  # batch scaling and the group's lr_scale
    n_params = sum(len(g["params"]) for o in opts.values() for g in o.param_groups)
    assert n_params == len(list(model.parameters()))


def test_unused_or_unknown_optimizer_is_an_error(config_file: Path) -> None:
    cfg = _two_optimizer_cfg(config_file, ["model.two_optimizers=false"])
    with pytest.raises(ConfigError, match="optim.decoder: no parameter group"):
        build_optimizers(build_model(cfg), cfg.optim, 4)
    cfg = load_config(config_file, ["model.two_optimizers=true"])
    with pytest.raises(ConfigError, match="optim.decoder: the model's parameter group 'decoder'"):
        build_optimizers(build_model(cfg), cfg.optim, 4)


def test_lamb_trains_zero_initialised_tensors(config_file: Path) -> None:
    cfg = load_config(config_file, ["optim.main.name=lamb", "optim.main.weight_decay=0.01"])
    model = build_model(cfg)
    opt = build_optimizers(model, cfg.optim, 4)["main"]
    assert model.zero_bias.abs().sum() == 0
    model.zero_bias.grad = torch.randn_like(model.zero_bias)
    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.randn_like(p)
    opt.step()
    assert model.zero_bias.abs().sum() > 0


def test_schedules() -> None:
    base = config_from_yaml("model: {name: _tinyvideo}\ndata: {name: _tiny}\n").optim.main.schedule

    def sched(**kw):
        cfg = config_from_yaml("model: {name: _tinyvideo}\ndata: {name: _tiny}\n",
                               [f"optim.main.schedule.{k}={v}" for k, v in kw.items()]).optim.main.schedule
        return lr_lambda(cfg, total_steps=100, base_lr=1.0)

    assert lr_lambda(base, 100, 1.0)(50) == 1.0
    warm = sched(name="constant", warmup_steps=10)
    assert warm(0) == pytest.approx(0.1) and warm(9) == 1.0 and warm(50) == 1.0
    cos = sched(name="cosine", warmup_steps=10, min_lr=0.1)
    assert cos(9) == pytest.approx(1.0) and cos(55) == pytest.approx(0.1 + 0.9 * 0.5) and cos(100) == pytest.approx(0.1)
    exp = sched(name="exponential", decay_rate=0.5, decay_steps=10)
    assert exp(20) == pytest.approx(0.25)
    step = sched(name="step", step_size=30, gamma=0.1)
    assert step(29) == 1.0 and step(30) == pytest.approx(0.1) and step(95) == pytest.approx(1e-3)


def test_scheduler_drives_lr(config_file: Path) -> None:
    cfg = load_config(config_file, ["optim.main.schedule.name=cosine", "optim.main.schedule.warmup_steps=2"])
    model = build_model(cfg)
    opts = build_optimizers(model, cfg.optim, 4)
    scheds = build_schedulers(opts, cfg.optim, cfg.train.steps, 4)
    lrs = []
    for _ in range(6):
        lrs.append(opts["main"].param_groups[0]["lr"])
        opts["main"].step()
        scheds["main"].step()
    assert lrs[0] == pytest.approx(0.005) and lrs[1] == pytest.approx(0.01)
    assert lrs[5] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))


def test_ema() -> None:
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.5)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(2.0)
    ema.update()
    assert torch.allclose(ema.shadow[0], start + 1.0)
    with ema.swapped_in():
        assert torch.allclose(model.weight, start + 1.0)
    assert torch.allclose(model.weight, start + 2.0)
    state = ema.state_dict()
    assert torch.allclose(ema_weights(model.state_dict(), state)["weight"], start + 1.0)
    other = EMA(model, decay=0.9)
    other.load_state_dict(state)
    assert other.decay == 0.5 and torch.equal(other.shadow[0], ema.shadow[0])
