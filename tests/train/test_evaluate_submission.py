"""``slotvideo evaluate --submission``: a tiny CNN+LSTM run answers the CLEVRER fixture's test questions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from slotvideo.cli import main
from slotvideo.data.cater import open_cater
from slotvideo.data.clevrer import ClevrerPredictions, read_questions
from slotvideo.data.fixtures import write_cater, write_clevrer
from slotvideo.data.vocab import DESCRIPTIVE_ANSWERS
from slotvideo.errors import DataError
from slotvideo.eval.submission import answering, check_submission_source, merge_submission
from slotvideo.models.cnn_lstm import CnnLstm

CONFIG = """\
seed: 0
model: {{name: cnn_lstm, task: clevrer, resolution: 16, cnn_channels: [8], video_hidden: 8, word_dim: 8,
         text_hidden: 8, head_hidden: 8}}
data:
  name: clevrer
  batch_size: 4
  cache_dir: {cache}
  params: {{root: {root}, task: descriptive, num_frames: 4, sampling: uniform, size: [16, 16],
           masks: "false"}}
train: {{steps: 2, log_every: 1, eval_every: 2, eval_batches: 1, ckpt_every: 2, accelerator: cpu}}
optim: {{main: {{name: adam, lr: 0.001}}}}
"""


@pytest.fixture(scope="module")
def clevrer_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A CLEVRER fixture (official layout) and a CNN+LSTM run trained on it for two steps."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("submission")
    root = write_clevrer(tmp / "CLEVRER", train=(0, 1), val=(10000,), test=(15000, 15001), frames=8, size=(16, 16))
    config = tmp / "cnn_lstm.yaml"
    config.write_text(CONFIG.format(cache=tmp / "cache", root=root))
    assert main(["train", str(config), f"run.dir={tmp / 'runs'}", "--no-progress"]) == 0
    return root, tmp / "runs" / "cnn_lstm"


def test_descriptive_then_multiple_choice_build_one_test_submission(clevrer_run, tmp_path, capsys):
    root, run = clevrer_run
    path = tmp_path / "clevrer_test.json"
    assert main(["evaluate", str(run), "data.split=test", "--no-write", "--submission", str(path)]) == 0
    assert "submission" in capsys.readouterr().out
    after_descriptive = json.loads(path.read_text())
    assert [e["scene_index"] for e in after_descriptive] == [15000, 15001]
    assert all(set(q) == {"question_id", "answer"} for e in after_descriptive for q in e["questions"])

    assert main(["evaluate", str(run), "data.split=test", "data.params.task=multiple_choice", "--no-write",
                 "--submission", str(path)]) == 0
    out = capsys.readouterr().out
    assert "6 multiple_choice questions" in out and "4 kept from the file" in out
    data = json.loads(path.read_text())
    # the server's format: every test question once, in question-file order, per scene
    questions = read_questions(root / "questions" / "test.json")
    assert [e["scene_index"] for e in data] == [15000, 15001]
    for entry in data:
        asked = [q for q in questions if q.scene_index == entry["scene_index"]]
        assert [q["question_id"] for q in entry["questions"]] == [q.question_id for q in asked]
        for answer, q in zip(entry["questions"], asked):
            if q.type == 0:
                assert set(answer) == {"question_id", "answer"} and answer["answer"] in DESCRIPTIVE_ANSWERS
            else:
                assert set(answer) == {"question_id", "choices"}
                assert [c["choice_id"] for c in answer["choices"]] == [c.choice_id for c in q.choices]
                assert all(set(c) == {"choice_id", "answer"} and c["answer"] in ("correct", "wrong")
                           for c in answer["choices"])
    # descriptive answers were kept as written by the first pass
    first = {(e["scene_index"], q["question_id"]): q for e in after_descriptive for q in e["questions"]}
    assert all(q == first[(e["scene_index"], q["question_id"])]
               for e in data for q in e["questions"] if "answer" in q)


def test_answers_are_the_models_task_logits(clevrer_run, tmp_path):
    from slotvideo.data.batch import collate
    from slotvideo.data.clevrer import open_clevrer
    from slotvideo.data.vocab import answer_word
    from slotvideo.train.checkpoint import load_model

    root, run = clevrer_run
    path = tmp_path / "val.json"
    assert main(["evaluate", str(run), "--no-write", "--submission", str(path)]) == 0
    model = load_model(run).eval()
    ds = open_clevrer("val", params={"root": str(root), "task": "descriptive", "num_frames": 4, "sampling": "uniform",
                                     "size": [16, 16], "masks": "false"}, cache_dir=str(run.parent.parent / "cache"))
    batch = collate([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        model.descriptive_head.net[-1].bias[0] += 1e3      # padding (id 0) must never be submitted
        expected = [answer_word(int(a) + 1) for a in model.task_logits(batch)[:, 1:].argmax(-1)]
    written = [q["answer"] for e in json.loads(path.read_text()) for q in e["questions"]]
    assert written == expected
    predictions = ClevrerPredictions()
    answering(model, predictions)(batch)
    assert [answer_word(a) for a in predictions.descriptive.values()] == expected


def test_clear_errors(clevrer_run, config_file, tmp_path, capsys):
    root, run = clevrer_run
    path = tmp_path / "sub.json"
    cases = [
        (["evaluate", str(run), "data.params.task=video", "--submission", str(path)],
         "--submission needs question samples"),
    ]
    # a model that answers no questions
    assert main(["train", str(config_file), f"run.dir={tmp_path / 'runs'}", "train.steps=1", "--no-progress"]) == 0
    cases.append((["evaluate", str(tmp_path / "runs" / "tiny"), "--submission", str(path)], "no task_logits"))
    # answers of another split already in the file
    path.write_text(json.dumps([{"scene_index": 15000, "questions": [{"question_id": 0, "answer": "cube"}]}]))
    cases.append((["evaluate", str(run), "--no-write", "--submission", str(path)], "other than this one"))
    capsys.readouterr()
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    cater = open_cater("train", params={"root": str(write_cater(tmp_path / "CATER", train=1, val=1, frames=4,
                                                                  size=(16, 16))), "num_frames": 2}, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="not a CLEVRER-style dataset"):
        check_submission_source(CnnLstm(CnnLstm.Config(task="cater")), cater, "cater")


def test_merge_replaces_the_same_questions_and_sorts(tmp_path):
    old = [{"scene_index": 15001, "questions": [{"question_id": 1, "answer": "red"}]},
           {"scene_index": 15000, "questions": [{"question_id": 3, "choices": []}, {"question_id": 0, "answer": "0"}]}]
    new = [{"scene_index": 15000, "questions": [{"question_id": 0, "answer": "cube"}]}]
    path = tmp_path / "s.json"
    assert merge_submission(path, new) == (new, 0)
    path.write_text(json.dumps(old))
    merged, kept = merge_submission(path, new)
    assert kept == 2
    assert merged == [{"scene_index": 15000, "questions": [{"question_id": 0, "answer": "cube"},
                                                           {"question_id": 3, "choices": []}]},
                      {"scene_index": 15001, "questions": [{"question_id": 1, "answer": "red"}]}]


ST_CONFIG = """\
seed: 0
model: {{name: slot-transformer, task: clevrer, resolution: 16, max_frames: 4, num_slots: 2, slot_dim: 8,
         iterations: 1, encoder_channels: [8], encoder_blocks: [1], encoder_strides: [2], query_mlp: [8],
         context_layers: 1, context_heads: 2, context_attention_dim: 8, context_mlp: [8], decoder_channels: [8],
         prior_steps: 1, prior_hidden: 8, prior_heads: 2, refine_mlp: [8], question_hidden: 8, head_embed_dim: 8,
         head_layers: 1, head_heads: 2, head_attention_dim: 8, head_mlp: [8], head_final_mlp: [8],
         question_vocab_size: 64, choice_vocab_size: 64, object_slot_counts: [1], time_frequencies: 2}}
data:
  name: clevrer
  batch_size: 4
  cache_dir: {cache}
  params: {{root: {root}, task: mixed, max_choices: 4, num_frames: 4, sampling: uniform, size: [16, 16],
           masks: "false"}}
train: {{steps: 2, log_every: 1, eval_every: 2, eval_batches: 1, ckpt_every: 2, accelerator: cpu}}
optim: {{main: {{name: lamb, lr: 0.001}}}}
"""


def test_slot_transformer_trains_on_mixed_questions_and_writes_a_submission(clevrer_run, tmp_path, capsys):
    root, _ = clevrer_run
    config = tmp_path / "st.yaml"
    config.write_text(ST_CONFIG.format(cache=tmp_path / "cache", root=root))
    assert main(["train", str(config), f"run.dir={tmp_path / 'runs'}", "--no-progress"]) == 0
    run = tmp_path / "runs" / "st"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val/question_accuracy" in m and "val/accuracy" in m for m in metrics)
    path = tmp_path / "clevrer_test.json"
    for task in ("descriptive", "multiple_choice"):
        assert main(["evaluate", str(run), "data.split=test", f"data.params.task={task}", "--no-write",
                     "--submission", str(path)]) == 0
    capsys.readouterr()
    questions = read_questions(root / "questions" / "test.json")
    answered = {(e["scene_index"], q["question_id"]) for e in json.loads(path.read_text()) for q in e["questions"]}
    assert answered == {(q.scene_index, q.question_id) for q in questions}
