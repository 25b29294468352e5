"""Fixtures of the workbench tests: the tiny model/dataset and a config writer."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_workbench  # noqa: E402,F401  (registers "_tiny" and "_tinyvideo")

BASE = """\
seed: 3
model:
  name: _tinyvideo
  hidden: 8
data:
  name: _tiny
  batch_size: 4
  train: {num: 16}
  val: {num: 6}
train:
  steps: 6
  log_every: 2
  eval_every: 3
  eval_batches: 2
  ckpt_every: 3
  keep_checkpoints: 2
  accelerator: cpu
optim:
  main:
    name: adam
    lr: 0.01
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(BASE)
    return path


@pytest.fixture
def run_dir_overrides(tmp_path: Path) -> list[str]:
    return [f"run.dir={tmp_path / 'runs'}"]
