"""Every shipped config loads against the schema and its model section passes the model's own checks (field
bounds and ``validate``), so a config that a model change broke fails here rather than at a user's first run."""
from __future__ import annotations

from pathlib import Path

import pytest

from slotvideo.errors import check_fields
from slotvideo.registry import lookup
from slotvideo.train.config import load_config, model_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_are_found() -> None:
    assert len(CONFIGS) >= 30
    assert {p.parent.name for p in CONFIGS} >= {"aloe", "monet", "cnn_lstm", "parts", "setcon", "slot_transformer",
                                                "vim", "slot_attention_video"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_loads_and_its_model_section_validates(path: Path) -> None:
    cfg = load_config(path)
    model_cls = lookup("model", cfg.model.name, key="model.name")
    model_cfg = model_config(cfg)
    assert isinstance(model_cfg, model_cls.Config)
    check_fields(model_cfg)
    validate = getattr(model_cls, "validate", None)
    if validate is not None:
        validate(model_cfg)
