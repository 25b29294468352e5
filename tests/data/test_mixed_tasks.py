"""Batches that mix tasks and cameras: CLEVRER ``task: mixed`` and CATER ``camera: both`` (Aloe appendix A.3)."""
import json
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from slotvideo.data import open_dataset
from slotvideo.data.batch import collate
from slotvideo.data.cater import open_cater
from slotvideo.data.clevrer import open_clevrer, read_questions
from slotvideo.data.fixtures import write_cater, write_clevrer
from slotvideo.errors import ConfigError, DataError

CLIP = {"masks": "false", "num_frames": 2, "sampling": "uniform", "size": 8}
MIXED_KEYS = {"video", "scene_index", "question", "question_type", "question_key", "choices", "choice_mask",
              "answer", "choice_answers"}


@pytest.fixture(scope="module")
def clevrer(tmp_path_factory):
    return write_clevrer(tmp_path_factory.mktemp("clevrer") / "CLEVRER", frames=16)


@pytest.fixture(scope="module")
def cater(tmp_path_factory):
    return write_cater(tmp_path_factory.mktemp("cater") / "release", variants=("all_actions",
                                                                               "all_actions_cameramotion"),
                       train=4, val=2, frames=8)


def _mixed(root, split="train", **params):
    return open_clevrer(split, params={"root": str(root), "task": "mixed", **CLIP, **params})


def test_mixed_samples_share_keys_and_dtypes_and_collate(clevrer):
    ds = _mixed(clevrer)
    questions = read_questions(clevrer / "questions/train.json")
    assert len(ds) == len(questions) == 15 and ds.max_choices == max(len(q.choices) for q in questions) == 3
    samples = [ds[i] for i in range(len(ds))]
    for s in samples:
        assert set(s) == MIXED_KEYS
        assert {k: v.dtype for k, v in s.items()} == {**{k: torch.int64 for k in MIXED_KEYS},
                                                      "video": torch.float32, "choice_mask": torch.bool}
    batch = next(iter(DataLoader(ds, batch_size=len(ds), collate_fn=collate)))
    assert batch.choices.shape == (15, 3, 12) and batch.choice_mask.shape == (15, 3)
    assert batch.answer.shape == (15,) and batch.choice_answers.shape == (15, 3)
    by_key = {(q.scene_index, q.question_id): q for q in questions}
    for i, key in enumerate(batch.question_key.tolist()):
        q = by_key[tuple(key)]
        n = len(q.choices)
        assert batch.choice_mask[i].tolist() == [k < n for k in range(3)]
        assert bool(batch.choice_mask[i].any()) == (q.type != 0)
        assert (batch.choices[i, n:] == 0).all() and (batch.choices[i, :n] != 0).any(-1).all()
        assert int(batch.answer[i]) == (q.answer if q.type == 0 else 0)
        assert batch.choice_answers[i].tolist() == [c.correct for c in q.choices] + [0] * (3 - n)


def test_mixed_matches_the_single_task_samples(clevrer):
    mixed = _mixed(clevrer)
    desc = open_clevrer("train", params={"root": str(clevrer), "task": "descriptive", **CLIP})
    pairs = open_clevrer("train", params={"root": str(clevrer), "task": "multiple_choice", **CLIP})
    by_key = {tuple(s["question_key"].tolist()): s for s in (mixed[i] for i in range(len(mixed)))}
    for s in (desc[i] for i in range(len(desc))):
        m = by_key[tuple(s["question_key"].tolist())]
        assert torch.equal(m["question"], s["question"]) and torch.equal(m["answer"], s["answer"])
        torch.testing.assert_close(m["video"], s["video"])
    for s in (pairs[i] for i in range(len(pairs))):
        m = by_key[tuple(s["question_key"].tolist())]
        c = int(s["choice_id"])
        assert torch.equal(m["choices"][c], s["choices"][0]) and bool(m["choice_mask"][c])
        assert int(m["choice_answers"][c]) == int(s["answer"][0])


def test_test_split_mixed_has_no_labels(clevrer):
    ds = _mixed(clevrer, "test")
    batch = collate([ds[i] for i in range(len(ds))])
    assert "answer" not in batch and "choice_answers" not in batch
    assert set(batch) == MIXED_KEYS - {"answer", "choice_answers"}
    assert batch.choice_mask.any(-1).tolist() == (batch.question_type != 0).tolist()


def test_max_choices_fixes_the_padding(clevrer):
    ds = _mixed(clevrer, max_choices=5)
    sample = next(ds[i] for i in range(len(ds)) if int(ds[i]["question_type"]) == 1)
    assert sample["choices"].shape == (5, 12) and sample["choice_mask"].tolist() == [True] * 3 + [False] * 2
    with pytest.raises(DataError, match="'max_choices' is 2.*has 3 choices"):
        _mixed(clevrer, max_choices=2)
    with pytest.raises(ConfigError, match="'max_choices' must be >= 1"):
        _mixed(clevrer, max_choices=0)
    # a mixed config evaluated on one task: only 'task' is overridden, max_choices is not read
    desc = open_clevrer("train", params={"root": str(clevrer), "task": "descriptive", "max_choices": 4, **CLIP})
    assert "choices" not in desc[0]


def test_bad_task_and_partly_answered_split(clevrer, tmp_path):
    with pytest.raises(ConfigError, match=r"'task' must be one of .*'mixed'.*got 'both'"):
        open_clevrer("train", params={"root": str(clevrer), "task": "both"})
    copy = tmp_path / "copy"
    shutil.copytree(clevrer, copy, ignore=shutil.ignore_patterns("clevrer_vocab.json"))
    path = copy / "questions/train.json"
    scenes = json.loads(path.read_text())
    del scenes[0]["questions"][0]["answer"]
    path.write_text(json.dumps(scenes))
    with pytest.raises(DataError, match="every question answered or none; question 0 of scene 0"):
        _mixed(copy)


def test_clevrer_mini_reads_task_mixed(tmp_path):
    gen = {"num_videos": 4, "size": 32, "num_frames": 8, "future_frames": 4, "workers": 1}
    ds = open_dataset("clevrer-mini", "train", params={"generate": gen, "task": "mixed", "num_frames": 2,
                                                       "sampling": "uniform", "size": 16}, cache_dir=tmp_path)
    batch = collate([ds[i] for i in range(len(ds))])
    assert set(batch) == MIXED_KEYS | {"segmentation"} and batch.choice_mask.shape[1] == ds.max_choices
    kinds = batch.choice_mask.any(-1)
    assert kinds.any() and (~kinds).any()  # both kinds in one batch
    assert (batch.answer[kinds] == 0).all() and (batch.answer[~kinds] >= 1).all()
    assert (batch.choice_answers[~batch.choice_mask] == 0).all()


def test_cater_both_cameras_concatenates_the_variants(cater):
    params = {"root": str(cater), "num_frames": 2, "sampling": "uniform", "size": "8x8"}
    static, moving = (open_cater("train", params={**params, "camera": c}) for c in ("static", "moving"))
    both = open_cater("train", params={**params, "camera": "both"})
    assert len(both) == len(static) + len(moving) == 8
    assert "camera" not in static[0]  # single-camera samples keep their keys
    batch = collate([both[i] for i in range(len(both))])
    assert batch.camera.dtype == torch.int64
    assert batch.camera.tolist() == [0] * len(static) + [1] * len(moving)
    assert batch.video_index.tolist() == list(range(8))  # distinct videos for clip averaging
    torch.testing.assert_close(batch.video[len(static)], moving[0]["video"])
    assert batch.label[len(static):].tolist() == [int(moving[i]["label"]) for i in range(len(moving))]
    assert both.summary()["variant"] == "all_actions+all_actions_cameramotion"
    assert len(open_cater("val", params={**params, "camera": "both"})) == 4
    with pytest.raises(ConfigError, match=r"'camera' must be one of \['static', 'moving', 'both'\]"):
        open_cater("train", params={**params, "camera": "all"})
    # data.balance's groups: the camera of every sample; one camera has nothing to balance
    assert both.balance_groups() == batch.camera.tolist()
    with pytest.raises(ConfigError, match="needs data.params.camera: both"):
        static.balance_groups()


def test_cater_mini_generates_both_cameras(tmp_path):
    gen = {"num_videos": 3, "size": 16, "num_frames": 12, "workers": 1}
    params = {"generate": gen, "task": "localize", "num_frames": 2, "sampling": "uniform", "size": 16}
    both = open_dataset("cater-mini", "train", params={**params, "camera": "both"}, cache_dir=tmp_path)
    (root,) = [p for p in tmp_path.iterdir() if p.name.startswith("cater-mini-")]
    stats = [root / f".cater-mini-{v}" / "stats.json" for v in ("all_actions", "all_actions_cameramotion")]
    assert all(s.exists() for s in stats)
    static = open_dataset("cater-mini", "train", params=params, cache_dir=tmp_path)
    assert len(both) == 2 * len(static) and sorted({int(both[i]["camera"]) for i in range(len(both))}) == [0, 1]
    before = [s.stat().st_mtime_ns for s in stats]
    open_dataset("cater-mini", "val", params={**params, "camera": "both"}, cache_dir=tmp_path)
    assert [s.stat().st_mtime_ns for s in stats] == before  # reused, not regenerated
    with pytest.raises(ConfigError, match="generate.camera"):
        open_dataset("cater-mini", "train", params={**params, "camera": "both",
                                                    "generate": {**gen, "camera": "moving"}}, cache_dir=tmp_path)
