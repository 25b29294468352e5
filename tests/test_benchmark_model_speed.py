"""benchmarks/model_speed.py: every model has a timed config, and one config is timed in its own process."""
import argparse
from pathlib import Path

import pytest

speed = pytest.importorskip("benchmarks.model_speed")
ROOT = Path(__file__).resolve().parent.parent


def test_every_model_has_a_timed_config_that_exists():
    from slotvideo.train.config import load_config

    models = set()
    for name, overrides in speed.CONFIGS.items():
        path = ROOT / "configs" / f"{name}.yaml"
        assert path.is_file(), path
        models.add(load_config(path, overrides).model.name)
    assert {"slot-transformer", "aloe", "monet", "setcon", "parts", "vim", "slot-attention-video", "cnn_lstm"} <= models


def test_measure_runs_the_training_loop_in_a_fresh_process(tmp_path):
    args = argparse.Namespace(threads=1, steps=2, warmup=1)
    row = speed.measure("vim/random_walk", args, tmp_path)
    assert row["config"] == "vim/random_walk" and row["model"] == "vim" and row["steps"] == 2
    assert row["steps_per_s"] > 0 and row["model_ms"] <= row["step_ms"] and row["peak_memory_mib"] > 0
    table = speed.render([row], argparse.Namespace(threads=1, steps=2, warmup=1))
    assert "| `configs/vim/random_walk.yaml` | - | vim | 16 |" in table
