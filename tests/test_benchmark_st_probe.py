"""benchmarks/slot_transformer_probe.py: a fresh head on a finished run's frozen slots."""
import argparse
import json

import pytest
import torch

balls = pytest.importorskip("benchmarks.slot_transformer_balls")
probe = pytest.importorskip("benchmarks.slot_transformer_probe")

TINY = ["data.params.num_frames=4", "data.train.num=8", "data.batch_size=2", "train.log_every=1",
        "train.ckpt_every=2", "data.params.horizon=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-iteration run of slot_transformer_balls.py, trained two steps and scored."""
    work = tmp_path_factory.mktemp("probe")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(balls.RUNS, "tiny", TINY)
        balls.run("tiny", argparse.Namespace(steps=2, test_samples=12, train_samples=8), work)
    return work


def test_frozen_inputs_are_what_the_runs_own_head_reads(trained):
    from slotvideo.train.checkpoint import load_run

    cfg, model, _ = load_run(trained / "runs" / "st-balls-tiny")
    inputs, labels = probe.frozen_inputs(model, balls.open_clips(cfg, "test", 12))
    assert len(inputs) == 2 and labels.shape == (12,)         # one set of head inputs per iteration
    assert inputs[0]["z"].shape == (12, 4, 4, 32) and inputs[1]["masks"].shape == (12, 4, 4, 16, 16)
    assert not torch.equal(inputs[0]["z"], inputs[1]["z"])      # the second iteration refines z
    # the run's own head on the last iteration's inputs scores exactly as the balls benchmark scored the run
    row = json.loads((trained / "st_balls" / "tiny.json").read_text())
    assert probe.head_scores(model, model.head, inputs[-1], labels)["top1"] == pytest.approx(row["test"]["top1"])


def test_train_head_fits_only_a_new_head(trained):
    from slotvideo.train.checkpoint import load_run

    cfg, model, _ = load_run(trained / "runs" / "st-balls-tiny")
    model.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs, labels = probe.frozen_inputs(model, balls.open_clips(cfg, "train", 8))
    head = probe.train_head(model, cfg, inputs[-1], labels, 60)
    assert head is not model.head and not head.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())   # the run stays frozen
    fresh = probe.train_head(model, cfg, inputs[-1], labels, 0)    # the same seed: the same initialisation
    assert any(not torch.equal(a, b) for a, b in zip(head.parameters(), fresh.parameters()))
    loss = [model.qa_loss("classes", probe.head_logits(h, inputs[-1], slice(None)), labels).mean() for h in (fresh, head)]
    assert loss[1] < loss[0]                                      # 60 steps on 8 clips fit them


def test_run_writes_a_row_per_iteration_and_renders(trained):
    rows = probe.run("tiny", argparse.Namespace(steps=3, test_samples=12, work=str(trained)), trained)
    assert [r["iteration"] for r in rows] == [1, 2] and all(r["steps"] == 3 for r in rows)
    joint = json.loads((trained / "st_balls" / "tiny.json").read_text())["test"]["top1"]
    assert all(r["joint_test_top1"] == joint and 0 <= r["test"]["top1"] <= r["test"]["top5"] <= 1 for r in rows)
    assert sorted(p.name for p in (trained / "st_probe").iterdir()) == ["tiny-z1.json", "tiny-z2.json"]
    table = probe.render(trained)
    assert "| tiny | 2 | z_1 | 3 |" in table and "| tiny | 2 | z_2 | 3 |" in table


def test_a_run_not_trained_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no trained run; train it first"):
        probe.run("locate", argparse.Namespace(steps=1, test_samples=4, work=str(tmp_path)), tmp_path)
