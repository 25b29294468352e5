"""Kinetics-600 loader on fixture data: annotation CSVs, list files, class index, missing clips, bad inputs."""
import csv
import shutil

import pytest

from slotvideo.data.batch import collate
from slotvideo.data.fixtures import KINETICS_CLASSES, write_kinetics
from slotvideo.data.generated import open_dataset
from slotvideo.data.kinetics import clip_name, open_kinetics600, read_annotation_csv
from slotvideo.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_kinetics(tmp_path_factory.mktemp("k600") / "kinetics600")


def test_csv_layout_class_index_and_missing_clips(root):
    with pytest.warns(UserWarning, match="skipped 1 missing clips .*YouTube") as caught:
        ds = open_dataset("kinetics600", "train", params={"root": str(root), "num_frames": 4, "size": "16x16"})
    assert len(caught) == 1  # reported once, with the count
    assert ds.classes == sorted(KINETICS_CLASSES) and ds.missing == 1 and len(ds) == 5
    rows = read_annotation_csv(root / "annotations/kinetics-600_train.csv", need_label=True)
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch.video.shape == (5, 4, 3, 16, 16)
    assert batch.label.tolist() == [sorted(KINETICS_CLASSES).index(r["label"]) for r in rows[:5]]
    assert (root / "train/playing cards" / f"{clip_name(rows[2]['youtube_id'], 20, 30)}.mp4").is_file()


def test_val_and_test_splits(root):
    val = open_kinetics600("val", params={"root": str(root), "num_frames": 2, "size": 8})
    assert len(val) == 3 and val.missing == 0 and val[1]["label"].item() == 1
    test = open_kinetics600("test", params={"root": str(root), "num_frames": 2, "size": 8})
    assert len(test) == 2 and set(test[0]) == {"video"}  # no labels in the test CSV


def test_list_file_layout_matches_csv_labels(root):
    with pytest.warns(UserWarning, match="1 missing clips"):
        listed = open_kinetics600("train", params={"root": str(root), "layout": "list", "num_frames": 2, "size": 8})
    with pytest.warns(UserWarning):
        from_csv = open_kinetics600("train", params={"root": str(root), "num_frames": 2, "size": 8})
    assert [it[1] for it in listed.items] == [it[1] for it in from_csv.items]
    assert [it[0].resolve() for it in listed.items] == [it[0].resolve() for it in from_csv.items]


def test_fallback_to_youtube_id_and_renamed_class_folders(root, tmp_path):
    copy = tmp_path / "k"
    shutil.copytree(root, copy)
    shutil.move(copy / "val/playing cards", copy / "val/playing_cards")  # mmaction2 renames spaces
    clip = next((copy / "val/zumba").glob("*.mp4"))
    clip.rename(clip.with_name(clip.name.split("_")[0] + ".mp4"))  # a clip saved under its bare id
    ds = open_kinetics600("val", params={"root": str(copy), "num_frames": 2, "size": 8})
    assert ds.missing == 0 and len(ds) == 3


def test_bad_inputs(root, tmp_path):
    copy = tmp_path / "k"
    shutil.copytree(root, copy)
    val_csv = copy / "annotations/kinetics-600_val.csv"
    rows = list(csv.reader(val_csv.open()))
    rows[2][0] = "juggling chainsaws"
    csv.writer(val_csv.open("w", newline="")).writerows(rows)
    with pytest.raises(DataError, match="kinetics-600_val.csv:3: label 'juggling chainsaws' is not a class"):
        open_kinetics600("val", params={"root": str(copy)})
    rows[2][0], rows[2][2] = "zumba", "ten"
    csv.writer(val_csv.open("w", newline="")).writerows(rows)
    with pytest.raises(DataError, match="kinetics-600_val.csv:3: time_start/time_end must be integers"):
        open_kinetics600("val", params={"root": str(copy)})
    lst = copy / "kinetics600_val_list_videos.txt"
    lst.write_text(lst.read_text() + "zumba/x.mp4 600\n")
    with pytest.raises(DataError, match=r"kinetics600_val_list_videos.txt:4: label 600 is outside \[0, 599\]"):
        open_kinetics600("val", params={"root": str(copy), "layout": "list"})
    clip = next((copy / "train/zumba").glob("*.mp4"))
    clip.write_bytes(clip.read_bytes()[:100])
    with pytest.warns(UserWarning):
        ds = open_kinetics600("train", params={"root": str(copy), "num_frames": 2, "size": 8})
    broken = [i for i, it in enumerate(ds.items) if it[0].name == clip.name][0]
    with pytest.raises(DataError, match=clip.name):
        ds[broken]
    for p in (copy / "annotations").glob("*.csv"):
        p.unlink()
    (copy / "kinetics600_train_list_videos.txt").unlink()
    with pytest.raises(DataError, match="expected one annotation CSV or one list file"):
        open_kinetics600("train", params={"root": str(copy)})
    with pytest.raises(ConfigError, match="layout"):
        open_kinetics600("train", params={"root": str(copy), "layout": "folders"})


def test_inspect_reports_missing_clips_and_labels(root, capsys):
    import json

    from slotvideo.cli import main

    assert main(["data", "inspect", "kinetics600", "--root", str(root), "--param", "num_frames=3",
                 "--param", "size=8x8"]) == 0
    summary = json.loads(capsys.readouterr().out)
    train = summary["splits"]["train"]
    assert (train["listed"], train["found"], train["missing"], train["classes"]) == (6, 5, 1, 3)
    assert train["sample"]["frames"] == 3 and train["sample"]["height"] == 8 and "label" in train["sample"]["keys"]
    assert "1 missing clips" in train["warnings"][0]
    assert summary["splits"]["test"]["sample"]["keys"] == ["video"]
