"""``slotvideo segment`` / ``slotvideo rollout`` on every input kind, from a run trained for one step."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from slotvideo.cli import main
from slotvideo.data.video_io import write_video

CONFIG = "configs/slot_attention_video/bouncing_balls.yaml"
TINY = ["model.encoder_channels=[4]", "model.decoder_channels=[4,4]", "model.slot_dim=8", "model.feature_dim=8",
        "model.hidden=8", "model.transition_hidden=8", "data.batch_size=2", "data.train.num=2", "data.val.num=2",
        "data.params.num_frames=3", "train.steps=1", "train.eval_every=0", "train.media_every=0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("seg")
    config = request.config.rootpath / CONFIG
    assert main(["train", str(config), *TINY, f"run.dir={root}", "run.name=tiny",
                 f"data.cache_dir={root / 'cache'}", "--no-progress"]) == 0
    return root / "tiny"


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return (rng.random((4, 40, 56, 3)) * 255).astype(np.uint8)  # not the model's 32x32, not square


def _inputs(tmp_path, frames):
    npy = tmp_path / "clip.npy"
    np.save(npy, frames)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i}.png")
    return {"npy": npy, "mp4": write_video(tmp_path / "clip.mp4", frames),
            "gif": write_video(tmp_path / "clip.gif", frames), "folder": folder}


def test_segment_every_input_kind(run_dir, frames, tmp_path, capsys):
    for kind, path in _inputs(tmp_path, frames).items():
        out = tmp_path / f"out_{kind}"
        assert main(["segment", str(run_dir), str(path), "--out", str(out)]) == 0, kind
        masks = np.load(out / "masks.npy")
        assert masks.shape == (4, 40, 56), kind     # the input's resolution, not the model's
        assert masks.min() >= 0 and masks.max() < 4
        assert (out / "overlay.gif").stat().st_size > 0 and (out / "overlay.mp4").stat().st_size > 0
    assert "masks" in capsys.readouterr().out


def test_segment_frames_option(run_dir, frames, tmp_path):
    path = _inputs(tmp_path, frames)["npy"]
    assert main(["segment", str(run_dir), str(path), "--out", str(tmp_path / "o"), "--frames", "2"]) == 0
    assert np.load(tmp_path / "o" / "masks.npy").shape == (2, 40, 56)


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mp4", "does not exist"),
    (lambda d: (np.save(d / "f.npy", np.zeros((2, 8, 8, 3), np.float32)), d / "f.npy")[1], "uint8"),
    (lambda d: (np.save(d / "g.npy", np.zeros((8, 8, 3), np.uint8)), d / "g.npy")[1], "[T, H, W, 3]"),
    (lambda d: ((d / "bad.mp4").write_bytes(b"not a video"), d / "bad.mp4")[1], "bad.mp4"),
])
def test_segment_bad_video_exits_2(run_dir, tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert main(["segment", str(run_dir), str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "error" in err and message in err


def test_segment_missing_run_exits_2(tmp_path, capsys):
    assert main(["segment", str(tmp_path / "nope"), "x.mp4", "--out", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err


def test_rollout_samples_side_by_side(run_dir, frames, tmp_path):
    path = _inputs(tmp_path, frames)["mp4"]
    out = tmp_path / "ro"
    assert main(["rollout", str(run_dir), str(path), "--steps", "3", "--context", "2", "--samples", "2",
                 "--out", str(out)]) == 0
    assert np.load(out / "frames.npy").shape == (2, 3, 16, 16, 3)  # at the model's resolution
    assert np.load(out / "masks.npy").shape == (2, 3, 16, 16)
    assert (out / "rollout.gif").stat().st_size > 0
    assert main(["rollout", str(run_dir), str(path), "--steps", "0", "--out", str(out)]) == 2
