"""CLEVRER loader on fixture data in the official layout: tasks, presets, masks, vocab, evaluation, bad inputs."""
import json
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from slotvideo.data.batch import collate
from slotvideo.data.clevrer import (ClevrerPredictions, open_clevrer, read_questions, write_submission)
from slotvideo.data.fixtures import write_clevrer
from slotvideo.data.generated import open_dataset
from slotvideo.data.vocab import DESCRIPTIVE_ANSWERS, ClevrerVocab, answer_id, tokenize
from slotvideo.errors import ConfigError, DataError
from slotvideo.metrics.clevrer import QUESTION_TYPES


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_clevrer(tmp_path_factory.mktemp("clevrer") / "CLEVRER")


def _copy(root, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(root, dst, ignore=shutil.ignore_patterns("clevrer_vocab.json"))
    return dst


def test_video_task_segmentation_matches_the_pixels(root):
    ds = open_dataset("clevrer", "train", params={"root": str(root), "num_frames": 16, "sampling": "stride",
                                                  "stride": 8})
    sample = ds[1]
    video, seg = sample["video"], sample["segmentation"]
    assert video.shape == (16, 3, 32, 48) and video.dtype == torch.float32
    assert seg.shape == (16, 32, 48) and seg.dtype == torch.int64 and int(sample["scene_index"]) == 1
    grey = (video - 128 / 255).abs().amax(dim=1) < 0.08  # the floor is grey, objects are coloured
    assert float((grey == (seg == 0)).float().mean()) > 0.97
    assert set(seg.unique().tolist()) <= {0, 1, 2, 3} and int(seg.max()) >= 1


@pytest.mark.parametrize("preset,frames,step", [("aloe", 25, 5), ("slot_transformer", 64, 2)])
def test_presets(root, preset, frames, step):
    ds = open_clevrer("val", params={"root": str(root), "preset": preset, "masks": "false"})
    sample = ds[0]
    assert sample["video"].shape == (frames, 3, 64, 64) and "segmentation" not in sample
    # Aloe's rule: stride, rem = divmod(128, 25) -> frames 0, 5, ..., 120 (the last 3 frames dropped).
    assert ds.reader.indices(ds.files.videos[10000]).tolist() == list(range(0, step * frames, step))


def test_random_clips_keep_masks_aligned(root):
    ds = open_clevrer("train", params={"root": str(root), "num_frames": 4, "stride": 3, "sampling": "random",
                                       "size": "16x24"})
    torch.manual_seed(0)
    a = ds[0]
    assert a["video"].shape == (4, 3, 16, 24) and a["segmentation"].shape == (4, 16, 24)
    grey = (a["video"] - 128 / 255).abs().amax(dim=1) < 0.1
    assert float((grey == (a["segmentation"] == 0)).float().mean()) > 0.85  # same frames, resized alike


def test_descriptive_questions_answers_and_vocab(root):
    ds = open_clevrer("train", params={"root": str(root), "task": "descriptive", "masks": "false",
                                       "num_frames": 2})
    assert len(ds) == 6  # 2 descriptive questions x 3 videos
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch.question.shape == (6, 20) and batch.answer.shape == (6,)
    assert (batch.question_type == 0).all() and batch.question_key.shape == (6, 2)
    questions = {(q.scene_index, q.question_id): q for q in read_questions(root / "questions/train.json")}
    for key, ans, tokens in zip(batch.question_key.tolist(), batch.answer.tolist(), batch.question):
        q = questions[tuple(key)]
        assert DESCRIPTIVE_ANSWERS[ans - 1] == json.loads((root / "questions/train.json").read_text())[
            key[0]]["questions"][key[1]]["answer"]
        assert ds.vocab.question.decode(tokens.tolist()) == " ".join(tokenize(q.text))
    saved = ClevrerVocab.load(root / "clevrer_vocab.json")  # built from train, saved, reused by val
    val = open_clevrer("val", params={"root": str(root), "task": "descriptive", "masks": "false", "num_frames": 2})
    assert saved.question == ds.vocab.question == val.vocab.question
    assert tokenize("What is the cube's color?") == ["what", "is", "the", "cube's", "color"]
    assert answer_id("yes") == 21 and answer_id("0") == 1


def test_multiple_choice_pairs_grouped_back_per_question(root):
    ds = open_clevrer("train", params={"root": str(root), "task": "multiple_choice", "masks": "false",
                                       "num_frames": 2, "size": 8})
    assert len(ds) == 3 * (2 + 3 + 1)  # predictive 2 choices, explanatory 3, counterfactual 1
    loader = DataLoader(ds, batch_size=5, collate_fn=collate)
    perfect, flipped = ClevrerPredictions(), ClevrerPredictions()
    labels = []
    for batch in loader:
        assert batch.choices.shape[1:] == (1, 12) and batch.answer.shape[1:] == (1,)
        truth = batch.answer[:, 0].float() * 2 - 1
        perfect.add(batch, truth[:, None])
        wrong = truth.clone()
        wrong[(batch.question_key[:, 1] == 3) & (batch.choice_id == 0)] *= -1  # one option of each explanatory q
        flipped.add(batch, wrong)
        labels.append(batch)
    assert perfect.accuracy.compute()["multiple_choice_per_question"] == 1.0
    res = flipped.accuracy.compute()
    assert res["explanatory_per_option"] == pytest.approx(6 / 9) and res["explanatory_per_question"] == 0.0
    assert res["predictive_per_question"] == 1.0 and res["multiple_choice_per_option"] == pytest.approx(15 / 18)


def test_test_split_has_no_answers_and_submission_schema(root, tmp_path):
    desc = open_clevrer("test", params={"root": str(root), "task": "descriptive", "masks": "false", "num_frames": 2})
    mc = open_clevrer("test", params={"root": str(root), "task": "multiple_choice", "masks": "false",
                                      "num_frames": 2})
    assert "answer" not in desc[0] and "answer" not in mc[0]
    preds = ClevrerPredictions()
    logits = torch.zeros(len(desc), 22)
    logits[:, 9] = 1  # answer id 9 = "cube"
    preds.add(collate([desc[i] for i in range(len(desc))]), logits)
    with pytest.raises(DataError, match="no \\(complete\\) prediction"):
        preds.submission(desc.questions)
    batch = collate([mc[i] for i in range(len(mc))])
    preds.add(batch, (batch.choice_id == 0).float() - 0.5)
    entries = preds.submission(mc.questions)
    path = write_submission(tmp_path / "sub.json", entries)
    data = json.loads(path.read_text())
    assert [e["scene_index"] for e in data] == [15000]
    qs = data[0]["questions"]
    assert qs[0] == {"question_id": 0, "answer": "cube"}
    assert qs[2] == {"question_id": 2, "choices": [{"choice_id": 0, "answer": "correct"},
                                                   {"choice_id": 1, "answer": "wrong"}]}
    assert [set(q) for q in qs] == [{"question_id", "answer"}] * 2 + [{"question_id", "choices"}] * 3


def test_layout_variations_and_annotations(tmp_path):
    root = write_clevrer(tmp_path / "C", train=(0,), val=(10000,), test=(), frames=6, size=(16, 16),
                         val_folder="validation", archive_root="video_validation")
    ds = open_clevrer("val", params={"root": str(root)})
    assert len(ds) == 1 and ds[0]["video"].shape == (6, 3, 16, 16)
    ann = ds.annotation(10000)
    assert ann.location.shape == (6, 3, 3) and ann.inside_camera_view.all()
    assert ann.collisions == [(3, (0, 1))] and [o["object_id"] for o in ann.objects] == [0, 1, 2]
    dup = root / "videos" / "val" / "video_10000.mp4"
    dup.parent.mkdir(parents=True)
    shutil.copy(next(root.rglob("video_10000.mp4")), dup)
    with pytest.raises(DataError, match="video_10000.mp4 appears 2 times"):
        open_clevrer("val", params={"root": str(root)})


def test_malformed_inputs(root, tmp_path):
    bad = _copy(root, tmp_path)
    # Truncated video: a clear error naming the file when the sample is read.
    video = next(bad.rglob("video_00001.mp4"))
    video.write_bytes(video.read_bytes()[:300])
    ds = open_clevrer("train", params={"root": str(bad), "masks": "false"})
    with pytest.raises(DataError, match="video_00001.mp4"):
        ds[1]
    # Missing annotation: named in the error, counted by the summary.
    next(bad.rglob("annotation_00002.json")).unlink()
    ds = open_clevrer("train", params={"root": str(bad), "masks": "false"})
    with pytest.raises(DataError, match="annotation_00002.json not found"):
        ds.annotation(2)
    assert open_clevrer("train", params={"root": str(bad)}).summary()["videos_without_annotation"] == 1
    # A question whose video is missing: skipped, counted, reported once.
    next(bad.rglob("video_00002.mp4")).unlink()
    with pytest.warns(UserWarning, match="2 questions whose video is missing"):
        ds = open_clevrer("train", params={"root": str(bad), "task": "descriptive"})
    assert len(ds) == 4 and ds.skipped["questions whose video is missing"] == 2
    # Unknown question type / bad answers: DataError naming the file and question.
    questions = json.loads((bad / "questions/train.json").read_text())
    questions[0]["questions"][1]["question_type"] = "hypothetical"
    (bad / "questions/train.json").write_text(json.dumps(questions))
    with pytest.raises(DataError, match=r"train.json scene 0 question 1: unknown question_type 'hypothetical'"):
        open_clevrer("train", params={"root": str(bad), "task": "descriptive"})
    questions[0]["questions"][1]["question_type"] = "descriptive"
    questions[0]["questions"][1]["answer"] = "octagon"
    (bad / "questions/train.json").write_text(json.dumps(questions))
    with pytest.raises(DataError, match="'octagon' is not one of the 21"):
        open_clevrer("train", params={"root": str(bad), "task": "descriptive"})
    questions[0]["questions"][1]["answer"] = "2"
    questions[0]["questions"][2]["choices"][0]["answer"] = "maybe"
    (bad / "questions/train.json").write_text(json.dumps(questions))
    with pytest.raises(DataError, match="choice #0: answer must be 'correct' or 'wrong'"):
        open_clevrer("train", params={"root": str(bad), "task": "multiple_choice"})
    next(bad.rglob("annotation_00000.json")).write_text("{not json")
    with pytest.raises(DataError, match="annotation_00000.json"):
        ds.annotation(0)


def test_bad_params(root):
    with pytest.raises(ConfigError, match="unknown clevrer param 'frames'"):
        open_clevrer("train", params={"root": str(root), "frames": 3})
    with pytest.raises(ConfigError, match="task"):
        open_clevrer("train", params={"root": str(root), "task": "captioning"})
    with pytest.raises(ConfigError, match="needs params.root"):
        open_clevrer("train", params={})
    with pytest.raises(ConfigError, match="preset"):
        open_clevrer("train", params={"root": str(root), "preset": "savi"})


def test_frame_cache_gives_the_same_clips_and_masks(root, tmp_path):
    params = {"root": str(root), "preset": "aloe"}
    plain = open_clevrer("train", params=params)
    cached = open_clevrer("train", params=params, cache_dir=tmp_path / "cache")
    for _ in range(2):  # the second read comes from the cache
        a, b = plain[0], cached[0]
        assert torch.equal(a["video"], b["video"]) and torch.equal(a["segmentation"], b["segmentation"])
    assert len(list((tmp_path / "cache" / "frames").rglob("*.npy"))) == 1
    assert len(list((tmp_path / "cache" / "segmentation").glob("*.npy"))) == 1


def test_inspect_summary(root):
    from slotvideo.data.inspect import inspect_dataset

    summary = inspect_dataset("clevrer", root, {"preset": "aloe"})
    assert summary["videos_total"] == 6 and summary["proposals_total"] == 6
    per_type = {s: summary["questions"][s]["per_type"] for s in ("train", "val", "test")}
    assert per_type["train"] == {t: n for t, n in zip(QUESTION_TYPES, (6, 3, 3, 3))}
    assert per_type["test"]["descriptive"] == 2 and summary["questions"]["val"]["missing_videos"] == 0
    train = summary["splits"]["train"]
    assert train["videos"] == 3 and train["annotations"] == 3 and train["videos_without_annotation"] == 0
    assert train["sample"]["frames"] == 25 and train["sample"]["height"] == 64
    assert train["sample"]["segmentation_ids"][0] == 0 and "videos_without_annotation" not in summary["splits"]["test"]
