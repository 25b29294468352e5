"""Slot Transformer action classification: the cater-mini action config (stand-in for Kinetics-600), single-
and multi-label (CATER ``actions_order_uniq``) labels, top-1 / top-5 in ``evaluate_batch``, and ``slotvideo
train`` + ``evaluate`` + ``answer`` + ``segment`` end to end on generated CATER-style data and on the
Kinetics-layout fixture."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from slotvideo.cli import main
from slotvideo.data.batch import Batch
from slotvideo.data.cater import TASK_CLASSES
from slotvideo.errors import ConfigError, ShapeError
from slotvideo.metrics.average_precision import RANKING
from slotvideo.models.slot_transformer import SlotTransformer
from slotvideo.train.config import build_model, load_config, plain

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "slot_transformer"
ACTIONS = CONFIGS / "cater_mini_actions.yaml"
C = TASK_CLASSES["actions_order_uniq"]
B, T = 2, 4
# A smaller model than the config's, for a few fast steps on a 2-core CPU.
SMALL = ["model.resolution=16", "data.params.size=[16,16]", "data.params.num_frames=4", "model.num_slots=3",
         "model.iterations=1", "model.context_layers=1", "model.head_layers=1", "model.object_prediction=false"]


def small_model(overrides: tuple[str, ...] = ()) -> SlotTransformer:
    torch.manual_seed(0)
    return build_model(load_config(ACTIONS, [*SMALL, *overrides]))


def labels(kind: str, seed: int = 0) -> torch.Tensor:
    """Kinetics-style class ids ``[B]`` or CATER-style multi-hot ``[B, C]`` (1-3 true classes each)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "single":
        return torch.randint(0, C, (B,), generator=g)
    hot = torch.zeros(B, C, dtype=torch.long)
    for i in range(B):
        hot[i, torch.randperm(C, generator=g)[: i + 1]] = 1
    return hot


def batch(kind: str, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch({"video": torch.rand(B, T, 3, 16, 16, generator=g), "label": labels(kind, seed)})


def test_config_is_cater_mini_data_with_the_kinetics_optimizer():
    cfg = load_config(ACTIONS)
    assert (cfg.model.task, cfg.model.num_classes) == ("classification", C) and C == 301
    assert cfg.data.name == "cater-mini" and cfg.data.params.task == "actions_order_uniq"
    assert cfg.data.params.actions == cfg.data.params.generate.actions == "max2action"  # CATER Tasks 1-2 variant
    localize = plain(load_config(CONFIGS / "cater_mini.yaml"))
    actions = plain(cfg)
    for key in ("size", "num_frames", "sampling", "camera"):
        assert actions["data"]["params"][key] == localize["data"]["params"][key]
    for key in ("size", "num_frames", "num_videos"):
        assert actions["data"]["params"]["generate"][key] == localize["data"]["params"]["generate"][key]
    kinetics = plain(load_config(CONFIGS / "kinetics600.yaml"))
    assert actions["optim"] == kinetics["optim"]
    assert actions["optim"]["main"]["name"] == "sgd"
    assert actions["optim"]["main"]["schedule"]["name"] == "cosine"
    assert actions["optim"]["main"]["schedule"]["warmup_steps"] > 0
    model = build_model(cfg).eval()
    assert isinstance(model, SlotTransformer)
    video = torch.rand(1, cfg.data.params.num_frames, 3, cfg.model.resolution, cfg.model.resolution)
    assert model.answer(video).shape == (1, C)


def test_class_count_must_match_the_data():
    with pytest.raises(ConfigError, match=r"model.num_classes \(14\) must be the 301 classes"):
        load_config(ACTIONS, ["model.num_classes=14"])
    atomic = load_config(ACTIONS, ["data.params.task=actions_present", "model.num_classes=14"])
    assert atomic.model.num_classes == TASK_CLASSES["actions_present"]
    with pytest.raises(ConfigError, match="model.num_classes"):
        load_config(CONFIGS / "kinetics600.yaml", ["model.num_classes=5"])
    m = small_model()
    with pytest.raises(ShapeError, match="model.num_classes"):
        m(Batch({"video": torch.rand(B, T, 3, 16, 16), "label": torch.zeros(B, C + 1, dtype=torch.long)}))


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_a_few_steps_lower_the_loss(kind):
    m = small_model()
    b = batch(kind)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses, qa = [], []
    for step in range(10):
        torch.manual_seed(step)
        out = m(b)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
        qa.append(out.terms["qa"].item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    assert qa[-1] < qa[0]


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_evaluate_batch_reports_top1_top5(kind):
    m = small_model().eval()
    b = batch(kind)
    res = m.evaluate_batch(b)
    assert {"loss", "mse", "top1", "top5"} <= set(res)
    for key in ("top1", "top5"):
        assert res[key].shape == (B,) and bool(((res[key] == 0) | (res[key] == 1)).all())
    assert bool((res["top5"] >= res["top1"]).all())
    # brute force: a hit when some true class is among the k highest logits
    torch.manual_seed(0)
    logits = m.answer(b.video)
    true = [[int(b.label[i])] if kind == "single" else b.label[i].nonzero().flatten().tolist() for i in range(B)]
    for k in (1, 5):
        top = logits.topk(k, dim=-1).indices.tolist()
        expected = [float(bool(set(top[i]) & set(true[i]))) for i in range(B)]
        assert m.accuracy("classes", logits, b.label)[f"top{k}"].tolist() == expected
    if kind == "multi":
        assert 0 <= float(res["label_accuracy"].min()) and float(res["label_accuracy"].max()) <= 1
        # the split-level mAP gets the logits and labels of every sample
        assert torch.equal(res[RANKING + "map"][:, 1], b.label.float())
        assert res[RANKING + "map"].shape == (B, 2, C) and bool(res[RANKING + "map"][:, 0].isfinite().all())
    else:
        assert RANKING + "map" not in res


def test_multi_label_hits_by_hand():
    m = small_model()
    logits = torch.tensor([[0.0, 5.0, 4.0, 3.0, 2.0, 1.0, -1.0],   # true {2}: second highest -> top-5 only
                           [9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],    # true {0, 6}: 0 is the argmax -> top-1
                           [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])   # no true class -> undefined
    target = torch.tensor([[0, 0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]])
    res = m.accuracy("classes", logits, target)
    assert res["top1"][:2].tolist() == [0.0, 1.0] and res["top5"][:2].tolist() == [1.0, 1.0]
    assert math.isnan(res["top1"][2]) and math.isnan(res["top5"][2])
    assert res["label_accuracy"].tolist() == pytest.approx([3 / 7, 6 / 7, 1 / 7])


@pytest.mark.parametrize("config, data", [
    (ACTIONS, ["data.params.generate.num_videos=8", "data.params.generate.size=16",
               "data.params.generate.num_frames=12", "data.params.generate.workers=1"]),
    (CONFIGS / "kinetics600.yaml", []),
])
def test_train_and_evaluate_end_to_end(config, data, tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = [str(config), f"run.dir={runs}", f"data.cache_dir={tmp_path / 'cache'}", "run.name=e2e", *SMALL, *data,
            "data.batch_size=2", "train.steps=2", "train.eval_every=2", "train.eval_batches=1", "train.log_every=1",
            "train.ckpt_every=2", "train.media_every=0"]
    assert main(["train", *argv, "--no-progress"]) == 0
    assert "finished" in capsys.readouterr().out
    run = runs / "e2e"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert main(["evaluate", str(run)]) == 0
    result = json.loads((run / "eval.json").read_text())
    metrics = result["metrics"]
    assert result["step"] == 2 and 0 <= metrics["top1"] <= 1
    if config == ACTIONS:
        assert 0 <= metrics["top5"] <= 1 and 0 <= metrics["label_accuracy"] <= 1
        assert 0 <= metrics["map"] <= 1 and result["counts"]["map"] == result["num_samples"]
    else:
        assert "map" not in metrics
    # slotvideo answer and segment on the same run, from a video file of another size and length
    clip = tmp_path / "clip.npy"
    np.save(clip, (np.random.default_rng(0).random((10, 24, 20, 3)) * 255).astype(np.uint8))
    capsys.readouterr()
    assert main(["answer", str(run), str(clip)]) == 0
    best = capsys.readouterr().out.split()[:2]
    assert best[0] == "class" and 0 <= int(best[1]) < (C if config == ACTIONS else 3)
    assert main(["segment", str(run), str(clip), "--out", str(tmp_path / "seg")]) == 0
    assert np.load(tmp_path / "seg" / "masks.npy").shape == (10, 24, 20)
