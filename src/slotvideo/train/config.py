"""Run configs: plain YAML + dataclass schemas + ``key=value`` overrides (OmegaConf, no Hydra).

A config file names a model and a dataset from the registry; nothing in it is code (no import
paths, no ``eval``). Loading merges, in order: the schema defaults, the YAML file, then the
command-line overrides (``OmegaConf.from_dotlist`` semantics: ``train.steps=10``; ``key={}`` empties a
mapping instead of merging nothing into it, e.g. ``model.monet={}``). Every key is
checked against the schema before anything is built, so a typo or a wrong type fails at once with
a :class:`~slotvideo.errors.ConfigError` naming the full dotted key::

    train.stpes: unknown key; did you mean train.steps?
    model.num_slots: expected int, got 'four'

Top-level schema (:class:`Config`)::

    seed: int                                  # model init, dropout, sampling of the training loop
    run:   {name: <config file stem>, dir: runs, resume: false}
    model: {name: <registered model>, ...keys of that model's Config dataclass}
    data:  {name, batch_size (GLOBAL, split over devices), num_workers, cache_dir (null: no disk cache),
            seed (of generated data), params: {...},
            train: {split: train, num: null}, val: {split: val, num: null}}
    train: {steps, log_every, eval_every, eval_batches, ckpt_every, keep_checkpoints, media_every,
            grad_clip, init_from, ema: {decay}, compile, accelerator, devices, num_nodes, strategy, precision}
    optim: {<optimizer name, default "main">: {name, lr, weight_decay, betas, momentum, eps, kwargs,
            scale_lr_by_batch, schedule: {name, warmup_steps, min_lr, decay_rate, decay_steps,
            step_size, gamma, steps}}}

Model keys. Every model registered with ``@register("model", name)`` has a nested ``Config``
dataclass and is built as ``ModelClass(cfg: ModelClass.Config)``. The ``model:`` section (minus
``name``) is validated against that dataclass. An optional classmethod
``ModelClass.check_config(model_cfg, full_cfg)`` (``model_cfg`` a ``Config`` instance, ``full_cfg``
the whole validated :class:`~omegaconf.DictConfig`) raises ``ConfigError`` for inconsistent values.
Fields may declare ``metadata={"min": .., "max": .., "choices": (..)}`` (dataclasses.field) and
those bounds are checked here too, for model and workbench keys alike.

The result of :func:`load_config` is a read-only, struct-mode ``DictConfig`` with every default
filled in and interpolations resolved; :func:`to_yaml` writes it as ``runs/<name>/config.yaml``.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError, check_bounds
from ..registry import lookup


# ----------------------------------------------------------------------------------------- schema

@dataclass
class RunConfig:
    name: str = ""          # empty means: the config file's stem
    dir: str = "runs"
    resume: bool = False


@dataclass
class SplitConfig:
    split: str = "train"
    num: Optional[int] = field(default=None, metadata={"min": 1})   # null: the dataset's default size


@dataclass
class DataConfig:
    name: str = MISSING
    batch_size: int = field(default=8, metadata={"min": 1})        # GLOBAL batch, split over all ranks
    num_workers: int = field(default=0, metadata={"min": 0})
    balance: bool = False   # equal samples per group in every training batch (the dataset's balance_groups())
    cache_dir: Optional[str] = ".cache/slotvideo"   # relative to the working directory; null = no cache
    seed: int = 0                                                   # seed of generated data (not of training)
    params: dict[str, Any] = field(default_factory=dict)            # passed to the dataset builder
    train: SplitConfig = field(default_factory=lambda: SplitConfig(split="train"))
    val: SplitConfig = field(default_factory=lambda: SplitConfig(split="val"))


@dataclass
class EMAConfig:
    decay: Optional[float] = field(default=None, metadata={"min": 0.0, "max": 1.0})


@dataclass
class TrainConfig:
    steps: int = field(default=1000, metadata={"min": 1})
    # wall-clock budget of this invocation; when it runs out the loop stops as on SIGTERM (the step
    # finishes, a checkpoint is saved) and run.resume=true continues. null = no budget
    max_minutes: Optional[float] = field(default=None, metadata={"min": 0.0})
    log_every: int = field(default=50, metadata={"min": 1})
    eval_every: int = field(default=1000, metadata={"min": 0})     # 0: no periodic evaluation
    eval_batches: int = field(default=10, metadata={"min": 1})
    ckpt_every: int = field(default=1000, metadata={"min": 0})     # 0: only at the end / on a signal
    keep_checkpoints: int = field(default=3, metadata={"min": 0})  # numbered files kept besides last.ckpt
    media_every: int = field(default=0, metadata={"min": 0})       # 0: no media
    grad_clip: Optional[float] = field(default=None, metadata={"min": 0.0})   # global norm; null = off
    # a run dir or .ckpt of the same model to start a fresh run from (e.g. a video-only run for a task run):
    # the tensors it shares with the model are copied, the rest keep their initialisation; null = none
    init_from: Optional[str] = None
    ema: EMAConfig = field(default_factory=EMAConfig)
    compile: bool = False
    accelerator: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda", "gpu", "mps")})
    devices: int = field(default=1, metadata={"min": 1})
    num_nodes: int = field(default=1, metadata={"min": 1})
    strategy: str = field(default="auto", metadata={"choices": ("auto", "ddp", "fsdp")})
    precision: str = field(default="32-true", metadata={"choices": ("32-true", "bf16-mixed", "16-mixed")})


@dataclass
class ScheduleConfig:
    name: str = "constant"                       # a registered scheduler: constant|cosine|exponential|step
    warmup_steps: int = field(default=0, metadata={"min": 0})   # linear warm-up from 0
    steps: Optional[int] = field(default=None, metadata={"min": 1})  # cosine length; null = train.steps
    min_lr: float = field(default=0.0, metadata={"min": 0.0})   # cosine floor, same units as lr
    decay_rate: float = field(default=0.5, metadata={"min": 0.0})   # exponential: rate per decay_steps
    decay_steps: int = field(default=100000, metadata={"min": 1})
    step_size: int = field(default=100000, metadata={"min": 1})     # step: multiply by gamma every step_size
    gamma: float = field(default=0.1, metadata={"min": 0.0})


@dataclass
class OptimConfig:
    name: str = "adam"                           # a registered optimizer: adam|adamw|rmsprop|sgd|lamb
    lr: float = field(default=1e-3, metadata={"min": 0.0})
    weight_decay: float = field(default=0.0, metadata={"min": 0.0})
    betas: Optional[list[float]] = None          # adam/adamw/lamb; null = the optimizer's default
    momentum: Optional[float] = None             # sgd/rmsprop
    eps: Optional[float] = None
    kwargs: dict[str, Any] = field(default_factory=dict)   # any other keyword of the optimizer
    scale_lr_by_batch: Optional[int] = field(default=None, metadata={"min": 1})  # lr *= batch_size / N
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


@dataclass
class Config:
    seed: int = 0
    run: RunConfig = field(default_factory=RunConfig)
    model: dict[str, Any] = field(default_factory=dict)      # validated against the model's Config
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: dict[str, OptimConfig] = field(default_factory=lambda: {"main": OptimConfig()})


# ---------------------------------------------------------------------------------------- loading

def load_config(path: str | os.PathLike, overrides: typing.Sequence[str] = ()) -> DictConfig:
    """Read a YAML config file, apply ``key=value`` overrides, validate and resolve it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    # configs/<model>/<dataset>.yaml -> runs/<model>-<dataset>, so two models' configs for one dataset don't collide
    model_dir = path.resolve().parent
    default_name = f"{model_dir.name}-{path.stem}" if model_dir.parent.name == "configs" else path.stem
    return config_from_yaml(path.read_text(), overrides, source=str(path), default_name=default_name)


def config_from_yaml(text: str, overrides: typing.Sequence[str] = (), source: str = "<config>",
                     default_name: str = "run") -> DictConfig:
    """Like :func:`load_config` for YAML text (e.g. the config stored in a checkpoint)."""
    try:
        raw = OmegaConf.create(text) if text.strip() else OmegaConf.create({})
    except (yaml.YAMLError, OmegaConfBaseException) as e:
        raise ConfigError(f"{source}: not valid YAML: {_one_line(e)}") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got a list")
    parsed = parse_overrides(overrides)
    for item in overrides:      # "key={}" replaces the mapping (a merge would keep the file's keys)
        key, value = item.split("=", 1)
        if value.strip() == "{}" and OmegaConf.select(raw, key) is not None:
            OmegaConf.update(raw, key, {}, merge=False)
    merged = OmegaConf.merge(raw, parsed)
    try:
        data = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{source}: {_omegaconf_message(e)}") from None
    return build_config(data, default_name=default_name, source=source)


def parse_overrides(overrides: typing.Sequence[str]) -> DictConfig:
    """``["train.steps=10", "seed=3"]`` -> a DictConfig, with a clear error for malformed items."""
    for item in overrides:
        key = item.split("=", 1)[0]
        if "=" not in item or not key or key.strip() != key:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.steps=100)")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override: {_omegaconf_message(e)}") from None


def build_config(data: dict[str, Any], default_name: str = "run", source: str = "<config>") -> DictConfig:
    """Validate a plain nested dict against the schemas and return the read-only resolved config."""
    data = dict(data)
    model_section = data.pop("model", None)
    optim_section = data.pop("optim", None)
    _check(data, Config, "", skip=("model", "optim"))
    root = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(Config), data))
    if root["data"]["name"] == "???":
        raise ConfigError("data.name: missing; name a registered dataset")
    if not root["run"]["name"]:
        root["run"]["name"] = default_name

    # optimizers: the file's sections replace the default "main" one (no silent extra optimizer)
    if optim_section is None:
        optim_section = {"main": {}}
    if not isinstance(optim_section, dict) or not optim_section:
        raise ConfigError("optim: expected a mapping from optimizer name to its settings, "
                          f"got {optim_section!r}")
    root["optim"] = {}
    for group, section in optim_section.items():
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise ConfigError(f"optim.{group}: expected the settings of an optimizer named {group!r} "
                              f"(optim.<optimizer name>.lr=...), got {section!r}")
        _check(section, OptimConfig, f"optim.{group}")
        root["optim"][group] = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(OptimConfig), section))

    # the model section, against the registered model's own Config dataclass
    if not isinstance(model_section, dict) or "name" not in model_section:
        raise ConfigError("model.name: missing; name a registered model")
    model_cls = lookup("model", str(model_section["name"]), key="model.name")
    schema = getattr(model_cls, "Config", None)
    if schema is None or not dataclasses.is_dataclass(schema):
        raise ConfigError(f"model.name: model {model_section['name']!r} has no nested Config dataclass")
    fields = {k: v for k, v in model_section.items() if k != "name"}
    _check(fields, schema, "model")
    try:
        resolved = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(schema), fields))
    except OmegaConfBaseException as e:
        raise ConfigError(f"model.{_omegaconf_message(e)}") from None
    _check_missing(resolved, "model")
    root["model"] = {"name": str(model_section["name"]), **resolved}

    cfg = OmegaConf.create(root)
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_readonly(cfg, True)
    _check_names(cfg)
    check = getattr(model_cls, "check_config", None)
    if check is not None:
        check(model_config(cfg), cfg)
    return cfg


def _check_names(cfg: DictConfig) -> None:
    """Registry names and cross-key consistency of the workbench sections."""
    lookup("dataset", cfg.data.name, key="data.name")
    for group, section in cfg.optim.items():
        lookup("optimizer", section.name, key=f"optim.{group}.name")
        lookup("scheduler", section.schedule.name, key=f"optim.{group}.schedule.name")
        if section.betas is not None and len(section.betas) not in (2, 3):
            raise ConfigError(f"optim.{group}.betas: expected 2 values, got {list(section.betas)}")
    world = cfg.train.devices * cfg.train.num_nodes
    if cfg.data.batch_size % world:
        raise ConfigError(f"data.batch_size: the global batch ({cfg.data.batch_size}) must be divisible by "
                          f"train.devices * train.num_nodes ({world})")
    if cfg.train.precision == "16-mixed" and len(cfg.optim) > 1:
        raise ConfigError("train.precision: 16-mixed supports one optimizer (one loss scaler); "
                          f"this config has {len(cfg.optim)} (use bf16-mixed)")
    if cfg.train.strategy == "fsdp" and cfg.train.ema.decay is not None:
        raise ConfigError("train.ema.decay: EMA of weights is not supported with train.strategy=fsdp")


def model_config(cfg: DictConfig) -> Any:
    """The model section of a loaded config as an instance of the model's ``Config`` dataclass."""
    model_cls = lookup("model", cfg.model.name, key="model.name")
    fields = {k: v for k, v in OmegaConf.to_container(cfg.model).items() if k != "name"}
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(model_cls.Config), fields))


def build_model(cfg: DictConfig) -> Any:
    """Construct the configured model through the registry: ``ModelClass(ModelClass.Config(...))``."""
    model_cls = lookup("model", cfg.model.name, key="model.name")
    model = model_cls(model_config(cfg))
    model.name = cfg.model.name
    return model


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)


def plain(cfg: DictConfig | Any) -> Any:
    """A DictConfig section as plain Python containers (for keyword arguments)."""
    return OmegaConf.to_container(cfg) if isinstance(cfg, DictConfig) else cfg


# ------------------------------------------------------------------------------------- validation

def _check(values: Any, schema: type, prefix: str, skip: tuple[str, ...] = ()) -> None:
    """Check a user mapping against a dataclass schema: unknown keys, types, bounds."""
    where = prefix or "config"
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key in skip:
            continue
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {prefix + '.' if prefix else ''}{close[0]}?" if close else \
                f"; known keys are {sorted(fields)}"
            raise ConfigError(f"{full}: unknown key{hint}")
        _check_value(value, hints[key], full)
        check_bounds(value, fields[key].metadata, full)


def _check_missing(values: dict[str, Any], prefix: str) -> None:
    for key, value in values.items():
        if value == "???":
            raise ConfigError(f"{prefix}.{key}: missing; this key has no default")
        if isinstance(value, dict):
            _check_missing(value, f"{prefix}.{key}")


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _check_value(value: Any, tp: Any, key: str) -> None:
    if tp is Any or value == "???":
        return
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                _check_value(value, arg, key)
                return
            except ConfigError as e:
                errors.append(e)
        if len(errors) == 1 and not _is_scalar_type(args):
            raise errors[0]
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        _check(value, tp, key)
        return
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if origin is tuple and len(args) > 1 and len(args) != len(value):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        for i, item in enumerate(value):
            if args:
                _check_value(item, args[i] if origin is tuple and len(args) > 1 else args[0], f"{key}[{i}]")
        return
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        args = typing.get_args(tp)
        if args:
            for k, v in value.items():
                _check_value(v, args[1], f"{key}.{k}")
        return
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        # a number where a name is expected is what `run.name=123` on the command line gives
        str: lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool),
    }.get(tp)
    if ok is None:
        return
    if value is None:
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got null")
    if not ok(value):
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _is_scalar_type(args: tuple[Any, ...]) -> bool:
    return all(a in (int, float, str, bool, type(None)) for a in args)


def _omegaconf_message(e: OmegaConfBaseException) -> str:
    key = getattr(e, "full_key", None)
    msg = _one_line(getattr(e, "msg", None) or e)
    return f"{key}: {msg}" if key else msg


def _one_line(e: Any) -> str:
    return " ".join(str(e).split("\n")[0].split())
