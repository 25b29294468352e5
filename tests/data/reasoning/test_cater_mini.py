"""cater-mini: release layout read by the real loader, official localize labels, hidden snitch, baseline."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from slotvideo.data.cater import Cater
from slotvideo.data.reasoning import generate_cater_mini
from slotvideo.data.reasoning.cater_layout import action_labels, localize_label, order_classes
from slotvideo.data.reasoning.cater_sim import sample_cater_scene
from slotvideo.data.rle import decode
from slotvideo.errors import ConfigError, DataError
from slotvideo.metrics.cater import position_to_class
from slotvideo.registry import lookup


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cater_mini")
    stats = generate_cater_mini(out, 10, seed=1, workers=2, progress=False, size=32, num_frames=24)
    return out, stats


def test_release_layout_is_read_by_the_loader(dataset: tuple[Path, dict]) -> None:
    out, stats = dataset
    variant = out / "all_actions"
    assert (variant / "videos/CLEVR_new_000000.avi").is_file()
    for task, shape in (("localize", ()), ("actions_present", (14,)), ("actions_order_uniq", (301,))):
        ds = Cater(out, "train", task=task, actions="all_actions")
        sample = ds[0]
        assert tuple(sample["video"].shape) == (24, 3, 32, 32)
        assert tuple(sample["label"].shape) == shape
    assert len(Cater(out, "val", task="localize")) == 3
    assert stats["videos"] == 10


def test_localize_label_is_the_official_cell(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    lines = (out / "all_actions/lists/localize/train.txt").read_text().split("\n")
    for line in filter(None, lines):
        name, label = line.split()
        scene = json.loads((out / "all_actions/scenes" / name.replace(".avi", ".json")).read_text())
        snitch = [o for o in scene["objects"] if o["shape"] == "spl"][0]
        final = snitch["locations"][str(len(snitch["locations"]) - 1)]
        assert int(label) == int(position_to_class(torch.tensor(final)))
    # Hand-checked examples of the formula (reference 2.2).
    assert [localize_label(p) for p in ([-3, -3], [2.9, -3], [-3, 2.9], [0.5, -0.5])] == [0, 5, 30, 15]
    assert localize_label([2.9, 2.9], cols=2) == 15 and localize_label([-3, -3], cols=4) == 0


def test_masks_hide_the_contained_snitch(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    for scene_file in sorted((out / "all_actions/scenes").glob("*.json"))[:4]:
        masks = json.loads((out / "all_actions/masks" / scene_file.name).read_text())
        assert len(masks["frames"]) == 24
        for frame in masks["frames"]:
            for o in frame["objects"]:
                assert decode(o["mask"]).shape == (32, 32)


def test_hidden_snitch_share_and_last_visible_baseline() -> None:
    hidden, hits = 0, []
    for i in range(120):
        scene = sample_cater_scene(np.random.default_rng([9, i]), 32)
        if scene.container[-1, 0] < 0:
            continue
        hidden += 1
        visible = np.nonzero(scene.container[:, 0] < 0)[0]
        last = scene.position[visible[-1], 0]
        hits.append(localize_label(last) == localize_label(scene.position[-1, 0]))
    assert 0.2 < hidden / 120 < 0.9
    assert np.mean(hits) < 0.9  # the cone carries the hidden snitch away from where it was last seen


def test_action_classes_and_bad_params() -> None:
    assert len(order_classes()) == 301
    scene = {"objects": [{"instance": "Spl_0", "shape": "spl"}, {"instance": "Cone_0", "shape": "cone"}],
             "movements": {"Spl_0": [["_slide", None, 10, 15]], "Cone_0": [["_contain", "Spl_0", 0, 8]]}}
    present, order = action_labels(scene)
    assert present == [2, 11]
    # "contain before slide" is kept as its official twin "slide after contain" (spl classes come first).
    slide_after_contain = order_classes().index(((("spl", "_slide"), ("cone", "_contain")), "after"))
    assert order == [slide_after_contain]
    with pytest.raises(ConfigError, match="camera"):
        generate_cater_mini("/nonexistent", 2, camera="orbit")
    assert lookup("generator", "cater-mini").writes_layout


def test_moving_camera_variant(tmp_path: Path) -> None:
    generate_cater_mini(tmp_path, 2, seed=0, workers=1, progress=False, size=32, num_frames=16, camera="moving",
                        actions="max2action")
    scene = json.loads((tmp_path / "max2action_cameramotion/scenes/CLEVR_new_000000.json").read_text())
    eyes = np.array(list(scene["camera_locations"].values()))
    assert np.ptp(eyes, axis=0).max() > 0.1
    count = lambda m: sum(len(v) for v in sample_cater_scene(np.random.default_rng(4), 32, max_motions=m)  # noqa: E731
                          .movements.values())
    assert count(2) < count(99)  # max2action moves at most two objects per segment
    assert Cater(tmp_path, "train", task="actions_present", camera="moving")[0]["label"].shape == (14,)


def test_loader_reads_instance_masks_with_stable_ids(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = dataset
    from slotvideo.data.cater import SNITCH_ID
    from slotvideo.data.kinetics import ClipReader
    ds = Cater(out, "train", task="localize", masks=True, reader=ClipReader(num_frames=8, stride=3, sampling="stride"))
    sample = ds[1]
    seg = sample["segmentation"]
    assert seg.shape == (8, 32, 32) and seg.dtype == torch.long
    path = ds.videos[1][0]
    scene = json.loads((out / "all_actions/scenes" / f"{path.stem}.json").read_text())
    masks = json.loads((out / "all_actions/masks" / f"{path.stem}.json").read_text())
    snitch = scene["objects"][SNITCH_ID - 1]
    assert snitch["shape"] == "spl"
    for t, frame in enumerate(range(0, 24, 3)):  # stride 3 from frame 0: frames 0, 3, ..., 21
        objs = {o["instance"]: decode(o["mask"]) for o in masks["frames"][frame]["objects"]}
        expected = np.zeros((32, 32), dtype=np.int64)
        for k, o in reversed(list(enumerate(scene["objects"]))):  # the first listed object wins overlaps
            if o["instance"] in objs:
                expected[objs[o["instance"]]] = k + 1
        assert np.array_equal(seg[t].numpy(), expected), f"frame {frame}"
    assert "segmentation" not in Cater(out, "train", task="localize")[1]
    # a copy of the variant without masks/ gives -1 (ignored), a mask naming an unknown object fails clearly
    import shutil
    copy = tmp_path / "all_actions"
    shutil.copytree(out / "all_actions", copy)
    shutil.rmtree(copy / "masks")
    with pytest.warns(UserWarning, match="without masks"):
        unmasked = Cater(tmp_path, "train", task="localize", masks=True)
    assert bool((unmasked[0]["segmentation"] == -1).all())
    shutil.copytree(out / "all_actions/masks", copy / "masks")
    first = Cater(tmp_path, "train", task="localize", masks=True).videos[0][0]
    bad = json.loads((copy / "masks" / f"{first.stem}.json").read_text())
    bad["frames"][0]["objects"][0]["instance"] = "Nobody_9"
    (copy / "masks" / f"{first.stem}.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match="Nobody_9"):
        Cater(tmp_path, "train", task="localize", masks=True)[0]
