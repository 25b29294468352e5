"""The train / evaluate / bench verbs, called in-process through slotvideo.cli.main."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from slotvideo.cli import main
from slotvideo.train.bench import benchmark
from slotvideo.train.config import load_config


def test_train_then_evaluate(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "runs"
    assert main(["train", str(config_file), f"run.dir={root}", "train.steps=3", "train.media_every=3",
                 "--no-progress"]) == 0
    assert "finished" in capsys.readouterr().out
    run = root / "tiny"
    assert (run / "media" / "step_3.png").is_file() and (run / "curves.png").is_file()
    # a term that is NaN on some steps is averaged over the others (1.0 whenever defined), never poisoned
    logged = [json.loads(line)["terms"]["first_odd"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if '"terms"' in line]
    assert logged and all(v == 1.0 or v != v for v in logged)
    assert main(["evaluate", str(run), "data.val.num=5", "data.batch_size=2"]) == 0
    out = capsys.readouterr().out
    assert "5 samples" in out and "odd_only" in out
    result = json.loads((run / "eval.json").read_text())
    assert result["num_samples"] == 5 and result["step"] == 3 and result["split"] == "val"
    assert result["counts"] == {"mse": 5, "odd_only": 2}  # NaN values are skipped
    assert main(["evaluate", str(run), "data.split=test", "--no-write"]) == 0
    assert "split test" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "missing.yaml"], "config file 'missing.yaml' does not exist"),
    (["train", "{cfg}", "train.stpes=3"], "did you mean train.steps?"),
    (["evaluate", "{tmp}/no_run"], "run directory"),
])
def test_errors_are_one_line(argv: list[str], message: str, config_file: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture) -> None:
    argv = [a.format(cfg=config_file, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith(f"slotvideo {argv[0]}: error:")


def test_bench(config_file: Path, capsys: pytest.CaptureFixture) -> None:
    numbers = benchmark(load_config(config_file), steps=4, warmup=1)
    assert numbers["steps"] == 4 and numbers["steps_per_s"] > 0
    assert numbers["frames_per_s"] == pytest.approx(numbers["steps_per_s"] * 4 * 2)
    assert 0 <= numbers["outside_share"] < 1 and numbers["memory_kind"].startswith("process max RSS")
    assert main(["bench", str(config_file), "--steps", "2", "--warmup", "1"]) == 0
    assert "steps/s" in capsys.readouterr().out


def test_time_budget_stops_like_a_signal_and_resumes(config_file: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    import json

    runs = tmp_path / "runs"
    argv = ["train", str(config_file), f"run.dir={runs}", "run.name=budget", "train.steps=50", "--no-progress"]
    assert main([*argv, "train.max_minutes=0"]) == 0  # the budget is spent after the first step
    assert "time budget" in capsys.readouterr().err
    run = runs / "budget"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "curves.png").is_file()
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == [1]  # the partial window is logged
    assert main([*argv, "run.resume=true"]) == 0
    assert "finished" in capsys.readouterr().out
