"""Slot Transformer on mixed CLEVRER batches (loader ``task: mixed``): each kind goes through its own output
MLP, one head pass per real (question, choice) pair, padded choices never count, metrics are NaN for the
other kind, and the per-sample losses equal the single-kind formulas."""
import math

import pytest
import torch
import torch.nn.functional as F
from test_slot_transformer import tiny

from slotvideo.data.batch import collate
from slotvideo.data.clevrer import open_clevrer
from slotvideo.data.fixtures import write_clevrer
from slotvideo.models.reasoning_task import MixedLogits, mixed_parts

CLIP = {"masks": "false", "num_frames": 4, "sampling": "uniform", "size": 16}
VOCAB = 40  # > the fixture's largest question / choice word id


def model(**kw):
    return tiny(task="clevrer", question_vocab_size=VOCAB, choice_vocab_size=VOCAB, **kw).eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = write_clevrer(tmp_path_factory.mktemp("clevrer") / "CLEVRER", frames=16)
    out = {}
    for task in ("mixed", "descriptive"):
        ds = open_clevrer("train", params={"root": str(root), "task": task, **CLIP})
        out[task] = collate([ds[i] for i in range(len(ds))])
    return out


def test_mixed_logits_are_the_head_on_each_question_and_real_choice(data):
    m, mixed = model(), data["mixed"]
    with torch.no_grad():
        inferred = m.infer(mixed.video)
        last, feats = inferred["iterations"][-1], inferred["features"]
        logits = m.mixed_logits(last, feats, mixed, mixed_parts(mixed))
    assert isinstance(logits, MixedLogits)
    assert logits.is_choice.tolist() == (mixed.question_type != 0).tolist()
    n_desc, n_mc = int((~logits.is_choice).sum()), int(logits.is_choice.sum())
    assert logits.descriptive.shape == (n_desc, 22)
    assert logits.multiple_choice.shape == (n_mc, mixed.choices.shape[1])
    with torch.no_grad():
        for j, i in enumerate((~logits.is_choice).nonzero().squeeze(1).tolist()):
            one = m.head(last.z[i:i + 1], last.decoded.masks[i:i + 1], feats[i:i + 1, 0], feats[i:i + 1, -1],
                         "descriptive", mixed.question[i:i + 1])
            torch.testing.assert_close(logits.descriptive[j], one[0], atol=1e-5, rtol=1e-5)
        for j, i in enumerate(logits.is_choice.nonzero().squeeze(1).tolist()):
            for c in range(mixed.choices.shape[1]):
                if not mixed.choice_mask[i, c]:
                    assert math.isnan(logits.multiple_choice[j, c])
                    continue
                one = m.head(last.z[i:i + 1], last.decoded.masks[i:i + 1], feats[i:i + 1, 0], feats[i:i + 1, -1],
                             "multiple_choice", mixed.question[i:i + 1], mixed.choices[i:i + 1, c])
                torch.testing.assert_close(logits.multiple_choice[j, c], one[0, 0], atol=1e-5, rtol=1e-5)


def test_mixed_qa_loss_per_sample(data):
    m, mixed = model(), data["mixed"]
    torch.manual_seed(0)
    logits = m.task_logits(mixed)
    loss = m.mixed_qa_loss(logits, mixed_parts(mixed))
    assert loss.shape == (mixed.size,)
    desc_rows = (~logits.is_choice).nonzero().squeeze(1)
    torch.testing.assert_close(loss[desc_rows], F.cross_entropy(logits.descriptive, mixed.answer[desc_rows],
                                                                reduction="none"))
    for j, i in enumerate(logits.is_choice.nonzero().squeeze(1).tolist()):
        real = mixed.choice_mask[i]
        expected = F.binary_cross_entropy_with_logits(logits.multiple_choice[j][real],
                                                      mixed.choice_answers[i][real].float())
        torch.testing.assert_close(loss[i], expected)


def test_mixed_forward_trains_and_evaluates(data):
    m, mixed = model().train(), data["mixed"]
    out = m(mixed)
    assert torch.isfinite(out.loss) and {"qa", "question", "accuracy", "choice_accuracy"} <= set(out.terms)
    assert isinstance(out.extra["mixed_logits"], MixedLogits) and out.logits is None
    out.loss.backward()
    assert m.head.outputs["descriptive"].net[-1].weight.grad.abs().sum() > 0
    assert m.head.outputs["multiple_choice"].net[-1].weight.grad.abs().sum() > 0
    assert m.question_loss.answer_embed.weight.grad[22:].abs().sum() > 0  # choice flags reach question prediction
    res = m.eval().evaluate_batch(mixed)
    is_choice = mixed.choice_mask.any(-1)
    assert torch.isnan(res["accuracy"][is_choice]).all() and not torch.isnan(res["accuracy"][~is_choice]).any()
    for key in ("choice_accuracy", "question_accuracy"):
        assert torch.isnan(res[key][~is_choice]).all() and not torch.isnan(res[key][is_choice]).any()
    assert ((res["question_accuracy"][is_choice] == 1) == (res["choice_accuracy"][is_choice] == 1)).all()


def test_mixed_question_loss_averages_a_question_over_its_choices(data):
    m, mixed = model(), data["mixed"]
    z = torch.randn(mixed.size, 4, m.cfg.num_slots, m.cfg.slot_dim)
    torch.manual_seed(0)
    logits = m.task_logits(mixed)
    loss = m.mixed_question_loss(z, logits, mixed, mixed_parts(mixed))
    assert loss.shape == (mixed.size,)
    i = int(logits.is_choice.nonzero()[0])
    real = mixed.choice_mask[i].nonzero().squeeze(1)
    with torch.no_grad():
        per_choice = m.question_loss(z[i].expand(len(real), -1, -1, -1), mixed.choice_answers[i][real] + 22,
                                     mixed.question[i].expand(len(real), -1))
    torch.testing.assert_close(loss[i], per_choice.mean(), atol=1e-5, rtol=1e-5)
    d = int((~logits.is_choice).nonzero()[0])
    with torch.no_grad():
        one = m.question_loss(z[d:d + 1], mixed.answer[d:d + 1], mixed.question[d:d + 1])
    torch.testing.assert_close(loss[d], one[0], atol=1e-5, rtol=1e-5)


def test_single_kind_task_logits_match_answer(data):
    m, desc = model(), data["descriptive"]
    torch.manual_seed(3)
    a = m.task_logits(desc)
    torch.manual_seed(3)
    b = m.answer(desc.video, desc.question)
    torch.testing.assert_close(a, b)
