"""Two CPU processes (gloo DDP) through the real CLI: same parameters, disjoint samples per step."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from slotvideo.train.checkpoint import read_checkpoint

HERE = Path(__file__).parent


@pytest.mark.slow
def test_ddp_two_cpu_processes(config_file: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    cmd = [sys.executable, str(HERE / "launch_cli.py"), "train", str(config_file), f"run.dir={tmp_path / 'runs'}",
           "train.devices=2", "train.strategy=ddp", "train.accelerator=cpu", "train.steps=3",
           "train.ckpt_every=2", f"model.dump_dir={dump}", f"data.params.log_dir={dump}", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "finished" in proc.stdout

    params = sorted(dump.glob("params_*.txt"))
    indices = sorted(dump.glob("indices_*.txt"))
    assert len(params) == 2 and len(indices) == 2  # two processes
    a, b = (p.read_text().splitlines() for p in params)
    assert a == b and len(a) == 3  # identical parameter checksums before every step

    # global batch 4 over 2 ranks: 2 samples each per step, 3 steps in one 16-sample epoch
    seen = [[int(x) for x in p.read_text().split()] for p in indices]
    assert [len(s) for s in seen] == [6, 6]
    assert not set(seen[0]) & set(seen[1]) and len(set(seen[0]) | set(seen[1])) == 12

    state = read_checkpoint(tmp_path / "runs" / "tiny")
    assert state["step"] == 3 and state["world_size"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # per-rank dropout streams
