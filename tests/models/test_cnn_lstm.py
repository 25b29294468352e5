from pathlib import Path

import pytest
import torch

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, DataError, ShapeError
from slotvideo.models.cnn_lstm import CnnLstm
from slotvideo.train.config import build_model, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "cnn_lstm"
SMALL = dict(cnn_channels=[8, 8], video_hidden=16, word_dim=8, text_hidden=16, head_hidden=16, vocab_size=20,
             resolution=16)
B, T = 4, 4


def model(**kw):
    torch.manual_seed(0)
    return CnnLstm(CnnLstm.Config(**{**SMALL, **kw}))


def batch(kind="descriptive", b=B):
    g = torch.Generator().manual_seed(1)
    data = {"video": torch.rand(b, T, 3, 16, 16, generator=g)}
    if kind == "cater":
        data["label"] = torch.randint(0, 36, (b,), generator=g)
        return Batch(data)
    data["question"] = torch.randint(1, 20, (b, 5), generator=g)
    data["question"][:, -2:] = 0
    if kind == "descriptive":
        data["answer"] = torch.randint(1, 22, (b,), generator=g)
    else:
        data["choices"] = torch.randint(1, 20, (b, 3, 4), generator=g)
        data["choices"][:, :, -1] = 0
        data["answer"] = torch.randint(0, 2, (b, 3), generator=g)
        data["question_type"] = torch.tensor([1, 2, 3, 1][:b])
    return Batch(data)


def task_of(kind):
    return "cater" if kind == "cater" else "clevrer"


@pytest.mark.parametrize("kind,shape", [("descriptive", (B, 22)), ("multiple_choice", (B, 3)), ("cater", (B, 36))])
def test_task_logit_shapes_and_output(kind, shape):
    m = model(task=task_of(kind))
    out = m(batch(kind))
    assert m.task_logits(batch(kind)).shape == shape and out.logits.shape == shape
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert set(out.terms) == {"descriptive": {"ce_descriptive"}, "multiple_choice": {"bce_choice"},
                              "cater": {"ce"}}[kind]


def test_one_pass_per_choice_each_choice_scored_alone():
    m = model().eval()
    mc = batch("multiple_choice")
    both = m.task_logits(mc)
    second = m.task_logits(mc.replace(choices=mc["choices"][:, 1:2], answer=mc["answer"][:, 1:2]))
    torch.testing.assert_close(both[:, 1:2], second)


def test_padded_words_do_not_change_the_answer():
    m = model().eval()
    d = batch()
    before = m.task_logits(d)
    with torch.no_grad():
        m.question_lstm.embedding.weight[0] += 10 * torch.randn_like(m.question_lstm.embedding.weight[0])
    torch.testing.assert_close(m.task_logits(d), before)


@pytest.mark.parametrize("task,kinds", [("clevrer", ["descriptive", "multiple_choice"]), ("cater", ["cater"])])
def test_gradients_reach_every_parameter(task, kinds):
    m = model(task=task, l1_weight=1.0 if task == "cater" else 0.0)
    # the ResNet blocks start as the identity (second norm scale 0, as SAVi), which blocks their inner
    # gradients at the very first step; after one step every parameter must get a non-zero gradient
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        sum(m(batch(kind)).loss for kind in kinds).backward()
        opt.step()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("kind,term", [("descriptive", "ce_descriptive"), ("multiple_choice", "bce_choice"),
                                       ("cater", "ce")])
def test_a_few_steps_lower_the_loss(kind, term):
    torch.set_num_threads(1)
    m = model(task=task_of(kind))
    d = batch(kind)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = m(d).terms[term].item()
    for _ in range(40):
        opt.zero_grad()
        m(d).loss.backward()
        opt.step()
    assert m(d).terms[term].item() < 0.5 * first


def test_evaluate_batch_metrics_as_aloe():
    cater = model(task="cater", l1_weight=0.5).eval()
    assert set(cater.evaluate_batch(batch("cater"))) == {"loss", "top1", "top5", "l1"}
    assert "l1_loss" in cater.train()(batch("cater")).terms
    metrics = model().eval().evaluate_batch(batch("multiple_choice"))
    assert metrics["option_acc"].shape == (B,)
    assert torch.isnan(metrics["option_acc_predictive"][[0, 2, 3]]).all()
    assert not torch.isnan(metrics["option_acc_predictive"][1])
    unlabelled = Batch({k: v for k, v in batch().items() if k != "answer"})
    assert set(model().eval().evaluate_batch(unlabelled)) == {"answered"}
    with pytest.raises(DataError, match="'answer'"):
        model()(unlabelled)


@pytest.mark.parametrize("name,task", [("clevrer_mini", "clevrer"), ("cater_mini", "cater")])
def test_configs_load_and_build(name, task):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    aloe = load_config(CONFIGS.parent / "aloe" / f"{name}.yaml")
    assert cfg.data == aloe.data            # same data, so the numbers compare
    m = build_model(cfg)
    assert isinstance(m, CnnLstm) and m.cfg.task == task and m.name == "cnn_lstm"


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="model.cnn_channels"):
        model(cnn_channels=[])
    with pytest.raises(ConfigError, match="model.l1_weight"):
        model(l1_weight=1.0)
    m = model()
    d = batch()
    with pytest.raises(ShapeError, match=r"question must have shape \[B, L\]"):
        m.task_logits(d.replace(question=d["question"][..., None]))
    with pytest.raises(ShapeError, match="question must have shape .* with B=4"):
        m.task_logits(d.replace(question=d["question"][:2]))
    with pytest.raises(ShapeError, match="vocab_size"):
        m.task_logits(d.replace(question=torch.full((B, 5), 99)))
    mc = batch("multiple_choice")
    with pytest.raises(ShapeError, match=r"choices must have shape \[B, C, L\]"):
        m.task_logits(mc.replace(choices=mc["choices"][:, 0]))
    with pytest.raises(ShapeError, match="video"):
        m.task_logits(d.replace(video=d["video"][:, :, :1]))
    with pytest.raises(DataError, match="'question'"):
        m.task_logits(Batch({"video": d["video"]}))


def test_answer_video_works_as_for_aloe():
    from omegaconf import OmegaConf

    from slotvideo.data.vocab import ClevrerVocab, Vocabulary
    from slotvideo.eval.answer import answer_video

    vocab = ClevrerVocab(Vocabulary("what color is the cube".split()), Vocabulary("the cube moves".split()))
    cfg = OmegaConf.create({"data": {"name": "clevrer", "cache_dir": None, "params": {}}})
    video = torch.rand(1, T, 3, 16, 16)
    desc = answer_video(model().eval(), cfg, video, "What color is the cube?", vocab=vocab)
    assert desc.kind == "descriptive" and desc.answer is not None
    mc = answer_video(model().eval(), cfg, video, "what color is the cube", ["the cube moves", "the sphere"],
                      vocab=vocab)
    assert [c[0] for c in mc.choices] == ["the cube moves", "the sphere"]
    assert answer_video(model(task="cater").eval(), cfg, video).answer.startswith("row")
