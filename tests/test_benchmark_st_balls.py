"""benchmarks/slot_transformer_balls.py: train two steps, score against the ground-truth references, render."""
import argparse
import json

import numpy as np
import pytest

balls = pytest.importorskip("benchmarks.slot_transformer_balls")

TINY = ["data.params.num_frames=4", "data.train.num=8", "data.batch_size=2", "train.log_every=1",
        "train.ckpt_every=2"]


@pytest.mark.parametrize("horizon", [0, 3])
def test_train_score_and_render(tmp_path, monkeypatch, horizon):
    name = f"tiny-h{horizon}"
    monkeypatch.setitem(balls.RUNS, name, [*TINY, f"data.params.horizon={horizon}"])
    row = balls.run(name, argparse.Namespace(steps=2, test_samples=40, train_samples=6), tmp_path)
    assert row["steps"] == 2 and row["horizon"] == horizon and row["test_samples"] == 40 and row["train_clips"] == 8
    for split in ("train", "test"):
        s = row[split]
        assert 0 <= s["top1"] <= s["top5"] <= 1 and s["l1"] >= 0 and -1 <= s["fg_ari"] <= 1
    base = row["baselines"]
    # recomputed here from the clips: the label is the cell of the target's centre horizon frames on
    cfg_params = {"resolution": 16, "num_frames": 4, "num_balls": 3, "radius": 2.0, "speed": 1.0, "task": "locate",
                  "horizon": horizon}
    from slotvideo.data.generated import GeneratedDataset, generator_for
    from slotvideo.data.synthetic.bouncing_balls import cell_class

    test = GeneratedDataset(generator_for("bouncing-balls", cfg_params), 40, split="test")
    raws = [test.raw(i) for i in range(40)]
    labels = np.array([int(r["label"]) for r in raws])
    last_cell = cell_class(np.stack([r["positions"][-1, 0] for r in raws]), 16, 6)
    assert base["last seen cell"]["top1"] == pytest.approx(float((last_cell == labels).mean()))
    if horizon == 0:          # the question is the last seen cell itself, and a straight line of no steps stays there
        assert base["last seen cell"]["top1"] == base["straight line, walls"]["top1"] == 1.0
        assert base["last seen cell"]["l1"] == 0.0
    train = GeneratedDataset(generator_for("bouncing-balls", cfg_params), 8, split="train")
    counts = np.bincount([int(train.raw(i)["label"]) for i in range(8)], minlength=36)
    assert base["frequency"]["top1"] == pytest.approx(float((labels == counts.argmax()).mean()))
    assert json.loads((tmp_path / "st_balls" / f"{name}.json").read_text())["run"] == name
    table = balls.render(tmp_path)
    assert f"| {name} | data.params.num_frames=4" in table and "| *straight line, walls* (no model) |" in table
    assert f"Horizon {horizon} (40 test clips)" in table


def test_claims_compare_held_out_top1():
    def row(train, test):
        return {"train": {"top1": train}, "test": {"top1": test}}

    rows = {"locate": row(0.9, 0.6), "locate-gen": row(0.8, 0.5), "locate-it1": row(0.95, 0.4),
            "locate-it4": row(0.8, 0.7)}
    text = "\n".join(balls.claims(rows))
    assert "generative beats deterministic (5): missed (held-out top-1 0.500 vs 0.600)" in text
    assert "overfit less (smaller train - held-out top-1 gap): met (locate-it1 +0.550, locate +0.300, locate-it4 +0.100)" in text
    assert "generalise better (held-out top-1): met" in text
    assert "LSTM" not in text                                   # rows not run are left out
    # the same claims against another base run: only its own ablation rows count
    rows_h0 = {"locate-h0-872": row(0.96, 0.36), "locate-h0-872-it1": row(0.99, 0.30), "locate-h0-872-none": row(0.9, 0.4)}
    text = "\n".join(balls.claims({**rows, **rows_h0}, "locate-h0-872"))
    assert "the object-prediction loss beats none (5): missed (held-out top-1 0.360 vs 0.400)" in text
    assert "overfit less (smaller train - held-out top-1 gap): met (locate-h0-872-it1 +0.690, locate-h0-872 +0.600)" in text
    assert "generative" not in text


def test_every_ablation_runs_against_both_bases():
    for base in balls.BASES:
        for a, switches in balls.ABLATIONS.items():
            if not base.endswith(a):
                assert balls.RUNS[f"{base}-{a}"] == [*balls.RUNS[base], *switches]


def test_locate_config_is_the_segmenting_model_with_a_head():
    """bouncing_balls_locate.yaml is bouncing_balls_segment.yaml's model and optimiser plus the task's parts."""
    from omegaconf import OmegaConf

    from slotvideo.train.config import load_config

    locate = OmegaConf.to_container(load_config(balls.CONFIG))
    segment = OmegaConf.to_container(load_config("configs/slot_transformer/bouncing_balls_segment.yaml"))
    assert locate["optim"] == segment["optim"]
    changed = {k for k in set(locate["model"]) | set(segment["model"]) if locate["model"].get(k) != segment["model"].get(k)}
    assert changed <= {"task", "num_classes", "question_prediction", "object_weight", "qa_weight"} | {
        k for k in locate["model"] if k.startswith("head_")}
    assert {k: v for k, v in locate["data"]["params"].items() if k not in ("task", "horizon")} == segment["data"]["params"]


def test_seed_families_group_a_run_with_its_seed_rows_only():
    rows = {n: {"n": n} for n in ("locate", "locate-seed1", "locate-h0-872", "locate-h0-872-seed1",
                                  "locate-h0-872-seed2", "locate-h0-872-it1", "locate-h0-872-it4-seed1")}
    fams = balls.seed_families(rows)
    assert {n: [r["n"] for r in rs] for n, rs in fams.items()} == {
        "locate": ["locate", "locate-seed1"],
        "locate-h0-872": ["locate-h0-872", "locate-h0-872-seed1", "locate-h0-872-seed2"]}
