"""Config loading: schema defaults, overrides, and errors that name the full dotted key."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from slotvideo.errors import ConfigError
from slotvideo.train.config import build_model, config_from_yaml, load_config, model_config, to_yaml


def test_defaults_overrides_and_model_config(config_file: Path) -> None:
    cfg = load_config(config_file, ["train.steps=9", "data.batch_size=2", "seed=5", "optim.main.lr=1e-3",
                                    "model.dropout=0"])
    assert cfg.run.name == "tiny" and cfg.run.dir == "runs" and cfg.run.resume is False
    assert (cfg.train.steps, cfg.data.batch_size, cfg.seed) == (9, 2, 5)
    assert cfg.optim.main.lr == pytest.approx(1e-3) and isinstance(cfg.optim.main.lr, float)
    assert cfg.data.cache_dir == ".cache/slotvideo" and cfg.train.precision == "32-true"
    mc = model_config(cfg)
    assert type(mc).__name__ == "Config" and mc.hidden == 8 and mc.dropout == 0.0 and mc.channels == [3]
    assert build_model(cfg).name == "_tinyvideo"
    # the saved YAML loads back to the same config
    again = config_from_yaml(to_yaml(cfg))
    assert OmegaConf.to_container(again) == OmegaConf.to_container(cfg)
    with pytest.raises(Exception):
        cfg.train.steps = 3  # read-only


@pytest.mark.parametrize("override, message", [
    ("train.stpes=3", "train.stpes: unknown key; did you mean train.steps?"),
    ("model.hiden=3", "model.hiden: unknown key; did you mean model.hidden?"),
    ("model.hidden=four", "model.hidden: expected int, got 'four'"),
    ("model.hidden=0", "model.hidden: must be in [1, inf], got 0"),
    ("model.channels=[a]", "model.channels[0]: expected int, got 'a'"),
    ("train.strategy=dp", "train.strategy: expected one of ['auto', 'ddp', 'fsdp'], got 'dp'"),
    ("train.grad_clip=big", "train.grad_clip: expected float or null, got 'big'"),
    ("optim.main.name=adamx", "optim.main.name: unknown optimizer 'adamx'"),
    ("optim.main.schedule.name=linear", "optim.main.schedule.name: unknown scheduler 'linear'"),
    ("data.name=nope", "data.name: unknown dataset 'nope'"),
    ("model.name=nope", "model.name: unknown model 'nope'"),
    ("data.batch_size=3", "data.batch_size: the global batch (3) must be divisible"),
    ("model.hidden=100", None),  # fine in fp32 ...
])
def test_errors_name_the_key(config_file: Path, override: str, message: str | None) -> None:
    extra = ["train.devices=2"] if override == "data.batch_size=3" else []
    if message is None:
        load_config(config_file, [override])
        with pytest.raises(ConfigError, match=r"model.hidden: at most 64"):  # ... check_config refuses bf16
            load_config(config_file, [override, "train.precision=bf16-mixed"])
        return
    with pytest.raises(ConfigError) as e:
        load_config(config_file, [override] + extra)
    assert message in str(e.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad)
    bad.write_text("data: {name: _tiny}\n")
    with pytest.raises(ConfigError, match="model.name: missing"):
        load_config(bad)
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(bad, ["train.steps"])


def test_optim_sections_replace_the_default(config_file: Path) -> None:
    text = config_file.read_text().replace("optim:\n  main:\n    name: adam\n    lr: 0.01\n",
                                           "optim:\n  main: {name: lamb, lr: 0.01}\n  decoder: {name: sgd, momentum: 0.9}\n")
    cfg = config_from_yaml(text)
    assert sorted(cfg.optim) == ["decoder", "main"] and cfg.optim.decoder.momentum == 0.9
    cfg = config_from_yaml(config_file.read_text().split("optim:")[0])
    assert list(cfg.optim) == ["main"] and cfg.optim.main.name == "adam"


def test_empty_mapping_override_replaces_the_files_mapping() -> None:
    # a plain merge of {} would keep the file's model.monet keys; "key={}" must empty the mapping
    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs" / "aloe" / "clevrer_mini.yaml",
                      ["model.frontend=resnet", "model.monet={}", "model.monet_pretrain_steps=0"])
    assert cfg.model.frontend == "resnet" and dict(cfg.model.monet) == {}
    with pytest.raises(ConfigError, match="model.monet"):
        load_config(root / "configs" / "aloe" / "clevrer_mini.yaml", ["model.frontend=resnet"])
