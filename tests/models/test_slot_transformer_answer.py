"""``slotvideo answer`` on Slot Transformer runs: a localization run answers a grid cell from the command line,
a CLEVRER model scores each choice in its own pass, and a run without a task head is refused clearly."""
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from slotvideo.cli import main
from slotvideo.data.vocab import ClevrerVocab, Vocabulary, answer_word
from slotvideo.errors import ConfigError
from slotvideo.eval.answer import answer_video, clip_settings, format_answer

from test_slot_transformer import R, T, tiny

LOCATE = Path(__file__).resolve().parents[2] / "configs" / "slot_transformer" / "bouncing_balls_locate.yaml"
TINY_LOCATE = ["data.params.num_frames=4", "data.train.num=4", "data.val.num=2", "data.batch_size=2",
               "model.encoder_channels=[8,8]", "model.decoder_channels=[8,8]", "train.steps=1",
               "train.eval_every=0", "train.media_every=0", "train.log_every=1"]


def test_a_localization_run_answers_a_cell(tmp_path, capsys):
    from slotvideo.eval.answer import read_clip
    from slotvideo.train.checkpoint import load_run

    assert main(["train", str(LOCATE), *TINY_LOCATE,
                 f"run.dir={tmp_path}", "run.name=locate", f"data.cache_dir={tmp_path / 'cache'}",
                 "--no-progress"]) == 0
    clip = tmp_path / "clip.npy"
    np.save(clip, (np.random.default_rng(0).random((9, 40, 30, 3)) * 255).astype(np.uint8))
    capsys.readouterr()
    assert main(["answer", str(tmp_path / "locate"), str(clip)]) == 0
    printed = capsys.readouterr().out
    cfg, model, _ = load_run(tmp_path / "locate")
    # a generated dataset's clip: its first data.params.num_frames frames at the model's resolution
    assert clip_settings(cfg, model) == {"num_frames": 4, "stride": 1, "sampling": "all", "size": (16, 16)}
    video = read_clip(clip, cfg, model)
    assert video.shape == (1, 4, 3, 16, 16)
    best = int(model.answer(video).argmax(-1))
    assert printed.startswith(f"row {best // 6}, col {best % 6}    (")


def test_slot_transformer_scores_each_choice_in_its_own_pass():
    model = tiny(task="clevrer", generative=False, initial_context="learned").eval()   # no sampling
    vocab = ClevrerVocab(Vocabulary("what color is the cube".split()), Vocabulary("the cube moves sphere".split()))
    cfg = OmegaConf.create({"data": {"name": "clevrer", "cache_dir": None, "params": {}}})
    video = torch.rand(1, T, 3, R, R)
    question = vocab.question.encode("what color is the cube", 20)[0][None]
    desc = answer_video(model, cfg, video, "What color is the cube?", vocab=vocab)
    logits = model.answer(video, question)[0]
    assert desc.kind == "descriptive" and desc.answer == answer_word(int(logits[1:].argmax()) + 1)
    choices = ["the cube moves", "the sphere moves"]
    mc = answer_video(model, cfg, video, "what color is the cube", choices, vocab=vocab)
    for (text, correct, logit), choice in zip(mc.choices, choices):
        alone = model.answer(video, question, vocab.choice.encode(choice, 12)[0][None])   # one choice, one pass
        assert logit == pytest.approx(float(alone[0]), abs=1e-5) and correct == (float(alone[0]) > 0)
    assert mc.choices[0][2] != mc.choices[1][2]
    assert "correct" in format_answer(mc) or "wrong" in format_answer(mc)


def test_a_run_without_a_task_head_is_refused():
    cfg = OmegaConf.create({"data": {"name": "bouncing-balls", "cache_dir": None, "params": {}}})
    with pytest.raises(ConfigError, match="model.task=none, which does not answer questions"):
        answer_video(tiny(task="none"), cfg, torch.rand(1, T, 3, R, R))
