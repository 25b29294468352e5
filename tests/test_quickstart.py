"""``slotvideo quickstart``: from nothing to a trained, scored and visualised run, here on a tiny budget."""
from __future__ import annotations

import json

import yaml

from slotvideo.cli import main
from slotvideo.train.quickstart import CONFIG

SMALL = ["data.train.num=4", "data.val.num=2", "data.batch_size=2", "data.params.num_frames=3"]


def test_quickstart_config_is_the_repository_config(request):
    path = request.config.rootpath / "configs" / "slot_attention_video" / "bouncing_balls.yaml"
    assert yaml.safe_load(path.read_text()) == CONFIG


def test_quickstart_tiny_budget(tmp_path, capsys):
    out = tmp_path / "runs" / "qs"
    args = ["quickstart", "--minutes", "0.05", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", *SMALL]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "FG-ARI" in printed and str(out) in printed
    for name in ("config.yaml", "eval.json", "curves.png", "media/overlay.gif", "checkpoints/last.ckpt"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "eval.json").read_text())["metrics"]
    assert {"fg_ari", "fg_ari_frame", "mse"} <= set(metrics)
    # a second run into the same folder refuses instead of silently mixing runs
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
