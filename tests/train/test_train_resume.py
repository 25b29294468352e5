"""Training end to end on CPU: exact resume after a SIGTERM, checkpoint files, logs, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import slotvideo
from slotvideo.errors import CheckpointError, ConfigError
from slotvideo.train.checkpoint import export_safetensors, load_run, read_checkpoint
from slotvideo.train.config import load_config
from slotvideo.train.run import train

TWO = "optim:\n  main: {name: adam, lr: 0.01, schedule: {name: cosine, warmup_steps: 2}}\n" \
      "  decoder: {name: lamb, lr: 0.01}\n"


def _cfg(config_file: Path, root: Path, *extra: str):
    text = config_file.read_text().split("optim:")[0] + TWO
    config_file.write_text(text)
    return load_config(config_file, [f"run.dir={root}", "model.two_optimizers=true", "train.grad_clip=0.5",
                                     "train.ema.decay=0.9", "model.dropout=0.5", *extra])


def test_stop_and_resume_is_bit_identical(config_file: Path, tmp_path: Path) -> None:
    straight = train(_cfg(config_file, tmp_path, "run.name=straight"), progress=False)
    assert straight["step"] == 6 and not straight["stopped"]

    first = train(_cfg(config_file, tmp_path, "run.name=resumed", "model.signal_at=3"), progress=False)
    assert first["stopped"] and first["step"] == 4  # the step under way finishes, then it saves
    stopped = read_checkpoint(tmp_path / "resumed")
    assert stopped["step"] == 4
    second = train(_cfg(config_file, tmp_path, "run.name=resumed", "run.resume=true"), progress=False)
    assert second["step"] == 6 and not second["stopped"]

    a, b = read_checkpoint(tmp_path / "straight"), read_checkpoint(tmp_path / "resumed")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][key], b["ema"]["shadow"][key]), key
    for name in ("main", "decoder"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        for idx in sa:
            for k, v in sa[idx].items():
                if isinstance(v, torch.Tensor):
                    assert torch.equal(v, sb[idx][k]), (name, idx, k)
    assert a["sampler"] == b["sampler"]
    # the log of the resumed run has each step once
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
             if "loss" in line]
    assert steps == [2, 4, 6]


def test_checkpoint_files_and_loading(config_file: Path, tmp_path: Path) -> None:
    cfg = load_config(config_file, [f"run.dir={tmp_path}", "train.steps=7"])
    train(cfg, progress=False)
    run = tmp_path / "tiny"
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step_0000006.ckpt", "step_0000007.ckpt"]  # keep_checkpoints=2
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["step"] == 7 and state["model_name"] == "_tinyvideo" and state["slotvideo_version"]
    assert (run / "config.yaml").read_text() == state["config_yaml"]
    assert set(state["rng"][0]) == {"torch", "cuda", "numpy", "python"}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    first = lines[0]
    assert set(first) == {"step", "loss", "terms", "lr", "steps_per_s", "time"} and set(first["terms"]) == {"abs", "mse", "first_odd"}
    assert any("val/mse" in x for x in lines) and list((run / "tb").iterdir())

    model = slotvideo.load(run)
    assert not model.training
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())
    same = slotvideo.load(run / "checkpoints" / "step_0000006.ckpt")
    assert not torch.equal(same.decoder.weight, model.decoder.weight)
    reads = []
    real_load = torch.load
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "load", lambda *a, **k: reads.append(a[0]) or real_load(*a, **k))
        stored, loaded, step = load_run(run / "checkpoints" / "step_0000006.ckpt")
    assert len(reads) == 1 and step == 6 and stored.train.steps == 7 and not loaded.training
    assert torch.equal(loaded.decoder.weight, same.decoder.weight)
    out = export_safetensors(run, tmp_path / "w.safetensors")
    from safetensors.torch import load_file
    assert torch.equal(load_file(out)["decoder.weight"], model.decoder.weight)

    with pytest.raises(ConfigError, match="already holds a trained run"):
        train(cfg, progress=False)


def test_bad_checkpoints(config_file: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no run directory or checkpoint"):
        slotvideo.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no checkpoint"):
        slotvideo.load(tmp_path / "empty")
    cfg = load_config(config_file, [f"run.dir={tmp_path}", "train.steps=2", "train.eval_every=0"])
    train(cfg, progress=False)
    last = tmp_path / "tiny" / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        slotvideo.load(cut)
    state = torch.load(last, weights_only=True)
    state["model_name"] = "other-model"
    other = tmp_path / "other.ckpt"
    torch.save(state, other)
    with pytest.raises(CheckpointError, match="of model 'other-model', but the config builds model '_tinyvideo'"):
        read_checkpoint(other, expect_model="_tinyvideo")
    torch.save({"format": "slotvideo-checkpoint", "model_name": "x", "config_yaml": "", "step": 1,
                "model": {}, "evil": Path("x")}, other)
    with pytest.raises(CheckpointError, match="not a slotvideo checkpoint"):
        read_checkpoint(other)
    with pytest.raises(CheckpointError, match="run.resume=true but"):
        train(load_config(config_file, [f"run.dir={tmp_path}", "run.name=fresh", "run.resume=true"]))


def test_setup_failure_leaves_no_run(config_file: Path, tmp_path: Path) -> None:
    cfg = load_config(config_file, [f"run.dir={tmp_path}", "data.batch_size=64"])  # more than the 16 samples
    with pytest.raises(ConfigError, match="data.batch_size: data.train has 16 samples"):
        train(cfg, progress=False)
    assert not (tmp_path / "tiny").exists()
