"""Smoke test of benchmarks/slot_transformer_segmentation.py: train two steps, score, draw the table."""
import argparse
import json

import pytest

seg = pytest.importorskip("benchmarks.slot_transformer_segmentation")


def test_train_score_and_render(tmp_path, monkeypatch):
    monkeypatch.setitem(seg.RUNS, "tiny", ["data.params.num_frames=4", "data.train.num=8", "data.val.num=4",
                                           "data.batch_size=2", "train.log_every=1", "train.ckpt_every=2"])
    row = seg.run("tiny", argparse.Namespace(steps=2, dataset="bouncing-balls"), tmp_path)
    assert row["steps"] == 2 and row["val"]["videos"] == 4
    val = row["val"]
    assert -1.0 <= val["fg_ari"] <= 1.0 and -1.0 <= val["attention_fg_ari"] <= 1.0 and val["mse"] > 0
    for key in ("confidence", "attention"):                    # 4 slots: the largest weight is at least 1/4
        assert 0.25 - 1e-6 <= val[key] <= 1.0 + 1e-6
    assert val["black_mse"] > val["mean_frame_mse"] > 0        # the mean frame beats black on balls on black
    assert json.loads((tmp_path / "st_bb" / "tiny.json").read_text())["run"] == "tiny"
    table = seg.render(tmp_path)
    assert "| tiny | data.params.num_frames=4" in table and "all-black frame (no model)" in table


def test_clevrer_mini_clips_without_questions(tmp_path, monkeypatch):
    monkeypatch.setitem(seg.RUNS, "tiny", ["data.params.generate.num_videos=12", "data.params.num_frames=4",
                                           "data.val.num=2", "data.batch_size=2", "model.resolution=16",
                                           "data.params.size=[16,16]", "train.log_every=1", "train.ckpt_every=2"])
    row = seg.run("tiny", argparse.Namespace(steps=2, dataset="clevrer-mini"), tmp_path)
    assert row["dataset"] == "clevrer-mini" and row["steps"] == 2 and row["val"]["videos"] == 2
    assert (tmp_path / "runs" / "st-clevrer-tiny" / "checkpoints" / "last.ckpt").exists()
    assert -1.0 <= row["val"]["fg_ari"] <= 1.0 and 0.2 - 1e-6 <= row["val"]["confidence"] <= 1.0 + 1e-6  # 5 slots
    table = seg.render(tmp_path, dataset="clevrer-mini")
    assert "on clevrer-mini clips" in table and "| tiny | data.params.generate.num_videos=12" in table
    assert "| tiny |" not in seg.render(tmp_path)              # the Bouncing Balls table keeps its own rows
    png = seg.figure(tmp_path / "runs" / "st-clevrer-tiny", tmp_path / "clip.png")
    from PIL import Image
    width, height = Image.open(png).size                       # 7 rows (input, recon, 5 slots) of 4 frames, x4
    assert (width, height) == (4 * (4 * 18 + 2), 4 * (7 * 18 + 2))


def test_attention_masks_upsample_the_feature_grid():
    import torch

    attention = torch.rand(2, 3, 4, 4 * 4).softmax(dim=2)            # [B, T, K, h*w], 4x4 grid
    masks = seg.attention_masks(attention, 16)
    assert masks.shape == (2, 3, 4, 16, 16) and torch.allclose(masks.sum(2), torch.ones(2, 3, 16, 16))
    # each 4x4 block of the frame is one feature cell, in row-major order
    assert torch.equal(masks[:, :, :, 4:8, 12:16], attention[..., 7, None, None].expand(-1, -1, -1, 4, 4))


@pytest.mark.parametrize("config,row,steps", [("bouncing_balls_segment.yaml", "det-base-r1", 4000),
                                              ("bouncing_balls_generative.yaml", "base-gen-warm6k-sigma-sep-16k", 16000)])
def test_recipe_configs_are_their_benchmark_rows(config, row, steps):
    """A recipe config trains the model, data and optimiser of the benchmark row it names."""
    from omegaconf import OmegaConf

    from slotvideo.train.config import load_config

    bench = load_config(seg.CONFIG, ["train.eval_every=500", f"train.steps={steps}", *seg.RUNS[row]])
    recipe = load_config(f"configs/slot_transformer/{config}")
    assert bench.seed == recipe.seed
    for part in ("model", "data", "optim", "train"):
        assert OmegaConf.to_container(bench[part]) == OmegaConf.to_container(recipe[part]), part


def test_rollout_benchmark_scores_a_generative_run(tmp_path, monkeypatch):
    """benchmarks/slot_transformer_rollout.py on a two-step run: per-step metrics, references, table, GIF."""
    roll = pytest.importorskip("benchmarks.slot_transformer_rollout")
    monkeypatch.setitem(seg.RUNS, "tiny", ["data.params.num_frames=4", "data.train.num=8", "data.val.num=4",
                                           "data.batch_size=2", "train.log_every=1", "train.ckpt_every=2"])
    seg.run("tiny", argparse.Namespace(steps=2, dataset="bouncing-balls"), tmp_path)
    run = roll.load(tmp_path / "runs" / "st-bb-tiny")
    row = roll.score(run, context=6, samples=2)
    future = roll.FRAMES - 6
    assert row["videos"] == 4 and row["step"] == 2
    for key in ("mse", "best_mse", "fg_ari", "mean_path_mse", "mean_path_fg_ari", "hold_mse", "mean_frame_mse"):
        assert len(row[key]) == future, key
    assert all(b <= m + 1e-7 for b, m in zip(row["best_mse"], row["mse"]))   # the best sample is no worse
    assert row["hold_mse"][0] < row["hold_mse"][-1]             # holding the last frame drifts off as balls move
    video = run.video                                           # the references, recomputed frame by frame
    for f in (0, future - 1):
        held = sum(float(((v[5] - v[6 + f]) ** 2).mean()) for v in video) / len(video)
        mean = sum(float(((video.mean(dim=(0, 1)) - v[6 + f]) ** 2).mean()) for v in video) / len(video)
        assert row["hold_mse"][f] == pytest.approx(held, rel=1e-5)
        assert row["mean_frame_mse"][f] == pytest.approx(mean, rel=1e-5)
    table = roll.render({"tiny": {"run": "tiny", **row}})
    assert "| tiny | 2 | 6 | 2 | 1 |" in table and "| tiny | 2 | 6 | 2 | 10 |" in table
    gif = roll.gif(run, 6, tmp_path / "roll.gif", samples=2)
    from PIL import Image
    with Image.open(gif) as im:   # slotvideo rollout's panels: truth + 2 samples side by side (2-pixel gaps),
        # each a frame above its masks, enlarged to at least 128 pixels per frame (8x for 16x16)
        assert im.n_frames == roll.FRAMES and im.size == (8 * (3 * 16 + 2 * 2), 8 * 2 * 16)
