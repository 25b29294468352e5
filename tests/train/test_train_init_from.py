"""train.init_from: a fresh run starts from another run's weights; new tensors keep their initialisation."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from slotvideo.errors import CheckpointError
from slotvideo.train.checkpoint import init_weights, load_run, read_checkpoint
from slotvideo.train.config import build_model, load_config
from slotvideo.train.run import train


@pytest.fixture
def source(config_file: Path, tmp_path: Path) -> Path:
    train(load_config(config_file, [f"run.dir={tmp_path}", "run.name=source"]), progress=False)
    return tmp_path / "source"


def test_shared_tensors_are_copied_and_new_ones_kept(config_file: Path, source: Path) -> None:
    cfg = load_config(config_file, ["seed=11"])
    model = build_model(cfg)
    model.head = nn.Linear(2, 2)                      # a tensor the stored run does not have
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    fresh = init_weights(model, source, expect_model=cfg.model.name)
    assert fresh == ["head.bias", "head.weight"]
    stored = load_run(source)[1].state_dict()
    for key, value in stored.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert all(torch.equal(model.head.state_dict()[k], v) for k, v in head.items())


def test_a_fresh_run_starts_from_the_weights(config_file: Path, tmp_path: Path, source: Path, capsys) -> None:
    cfg = load_config(config_file, [f"run.dir={tmp_path}", "run.name=tuned", f"train.init_from={source}",
                                    "optim.main.lr=0"])       # lr 0: the run keeps the weights it started from
    assert train(cfg, progress=False)["step"] == 6
    assert "train.init_from: weights from" in capsys.readouterr().out
    a, b = read_checkpoint(source)["model"], read_checkpoint(tmp_path / "tuned")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_misfitting_or_foreign_weights_are_refused(config_file: Path, source: Path) -> None:
    wider = build_model(load_config(config_file, ["model.hidden=16"]))
    with pytest.raises(CheckpointError, match=r"init_from: \d+ weights do not fit.*encoder"):
        init_weights(wider, source)
    with pytest.raises(CheckpointError, match="checkpoint is of model '_tinyvideo'"):
        init_weights(wider, source, expect_model="setcon")
    with pytest.raises(CheckpointError, match="no weight of the checkpoint has a name"):
        init_weights(nn.Linear(2, 2), source)
