"""CATER loader on fixture data in the release layout: variants, tasks, labels, clip averaging, bad inputs."""
import json
import shutil

import pytest
import torch

from slotvideo.data.batch import collate
from slotvideo.data.cater import evaluate_localization, open_cater
from slotvideo.data.fixtures import write_cater
from slotvideo.data.generated import open_dataset
from slotvideo.errors import ConfigError, DataError
from slotvideo.metrics.cater import position_to_class


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_cater(tmp_path_factory.mktemp("cater") / "release",
                       variants=("all_actions", "max2action", "all_actions_cameramotion"))


def test_localize_labels_come_from_the_snitch(root):
    ds = open_dataset("cater", "train", params={"root": str(root), "num_frames": 8, "sampling": "uniform",
                                                "size": "16x16"})
    assert ds.variant.name == "all_actions" and len(ds) == 4
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch.video.shape == (4, 8, 3, 16, 16) and batch.label.dtype == torch.int64
    for i, label in enumerate(batch.label.tolist()):
        scene = json.loads((root / "all_actions/scenes" / f"CLEVR_new_{i:06d}.json").read_text())
        locations = scene["objects"][0]["locations"]
        last = torch.tensor(locations[str(len(locations) - 1)], dtype=torch.float64)
        assert label == int(position_to_class(last))  # official rule: snitch cell at the last frame
    moving = open_cater("val", params={"root": str(root), "camera": "moving"})
    assert moving.variant.name == "all_actions_cameramotion" and len(moving) == 2
    assert moving[0]["video"].shape == (24, 3, 24, 32)  # all frames, native size by default


def test_variant_folder_as_root_and_subset_lists(root):
    ds = open_cater("train", params={"root": str(root / "max2action"), "actions": "max2action", "subset": "true"})
    assert ds.list_path.name == "train_subsetT.txt" and len(ds) == 3
    assert open_cater("test", params={"root": str(root)}).list_path.name == "val.txt"


@pytest.mark.parametrize("task,classes", [("actions_present", 14), ("actions_order_uniq", 301)])
def test_multi_label_tasks(root, task, classes):
    ds = open_cater("val", params={"root": str(root), "task": task, "num_frames": 2, "size": 8})
    assert ds.variant.name == "max2action"  # the atomic / compositional tasks' official variant
    lines = ds.list_path.read_text().split()
    label = ds[0]["label"]
    assert label.shape == (classes,) and label.dtype == torch.int64
    assert sorted(label.nonzero()[:, 0].tolist()) == [int(v) for v in lines[1].split(",")]


def test_clip_scores_are_averaged_per_video(root):
    ds = open_cater("val", params={"root": str(root), "num_frames": 4, "stride": 2, "sampling": "stride",
                                   "clips_per_video": 3, "size": 8})
    assert len(ds) == 6
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch.video_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert not torch.equal(batch.video[0], batch.video[2])  # clips start at different frames
    labels = batch.label
    logits = torch.full((6, 36), -5.0)
    # Video 0: two clips vote for the true cell, one for a cell 1 step away -> the average picks the truth.
    truth0 = int(labels[0])
    near = truth0 + 1 if truth0 % 6 < 5 else truth0 - 1
    logits[0, truth0] = logits[1, truth0] = 5.0
    logits[2, near] = 9.0
    # Video 1: every clip votes for the cell one row below/above the truth (L1 = 1).
    truth1 = int(labels[3])
    off = truth1 + 6 if truth1 < 30 else truth1 - 6
    logits[3:, off] = 5.0
    logits[3:, truth1] = 0.0  # second best: inside the top 5
    result = evaluate_localization(logits, batch.video_index, labels)
    assert result == {"top1": 0.5, "top5": 1.0, "l1": 0.5}


def test_bad_inputs(root, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(root / "all_actions", bad / "all_actions")
    lst = bad / "all_actions/lists/localize/train.txt"
    lines = lst.read_text().splitlines()
    lst.write_text("\n".join(lines[:2] + ["CLEVR_new_000002.avi 36"] + lines[3:]) + "\n")
    with pytest.raises(DataError, match=r"localize/train.txt:3: label 36 is outside \[0, 35\]"):
        open_cater("train", params={"root": str(bad)})
    lst.write_text("\n".join(lines[:2] + ["CLEVR_new_000002.avi two"] + lines[3:]) + "\n")
    with pytest.raises(DataError, match="train.txt:3: label 'two' is not an integer"):
        open_cater("train", params={"root": str(bad)})
    lst.write_text("\n".join(lines) + "\nCLEVR_new_000099.avi 4\n")
    with pytest.warns(UserWarning, match="skipped 1 missing videos"):
        ds = open_cater("train", params={"root": str(bad)})
    assert len(ds) == 4 and ds.missing == 1
    video = bad / "all_actions/videos/CLEVR_new_000000.avi"
    video.write_bytes(video.read_bytes()[:200])
    with pytest.raises(DataError, match="CLEVR_new_000000.avi"):
        ds[0]
    with pytest.raises(DataError, match="no max2action/ folder"):
        open_cater("train", params={"root": str(bad), "task": "actions_present"})
    with pytest.raises(ConfigError, match="camera"):
        open_cater("train", params={"root": str(bad), "camera": "shaky"})
    with pytest.raises(ConfigError, match="grid"):
        open_cater("train", params={"root": str(bad), "task": "actions_present", "grid": 4})


def test_inspect_lists_labels_per_split(root):
    from slotvideo.data.inspect import inspect_dataset

    summary = inspect_dataset("cater", root, {"num_frames": 5, "sampling": "uniform"})
    train, val = summary["splits"]["train"], summary["splits"]["val"]
    assert (train["listed"], val["listed"], train["num_classes"]) == (4, 2, 36)
    assert sum(train["label_counts"].values()) == 4 and train["sample"]["frames"] == 5
    assert train["sample"]["keys"] == ["label", "video", "video_index"]
