"""Aloe and CNN+LSTM on mixed CLEVRER batches (loader ``task: mixed``): the batch is split by kind, the loss
is the sum of the two single-task losses, metrics are NaN for the other kind, padded choices never count."""
import math

import pytest
import torch
from test_aloe import SMALL as ALOE_SMALL
from test_cnn_lstm import SMALL as CNN_SMALL

from slotvideo.data.batch import collate
from slotvideo.data.clevrer import open_clevrer
from slotvideo.data.fixtures import write_clevrer
from slotvideo.errors import DataError
from slotvideo.metrics.clevrer import QUESTION_TYPES
from slotvideo.models.aloe import Aloe
from slotvideo.models.cnn_lstm import CnnLstm
from slotvideo.models.reasoning_task import MixedLogits, select_rows

CLIP = {"masks": "false", "num_frames": 4, "sampling": "uniform", "size": 16}
VOCAB = 40  # > the fixture's largest question / choice word id


def aloe(**kw):
    torch.manual_seed(0)
    return Aloe(Aloe.Config(**{**ALOE_SMALL, "vocab_size": VOCAB, **kw}))


def cnn_lstm(**kw):
    torch.manual_seed(0)
    return CnnLstm(CnnLstm.Config(**{**CNN_SMALL, "vocab_size": VOCAB, **kw}))


MODELS = {"aloe": aloe, "cnn_lstm": cnn_lstm}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The fixture's train questions as one batch per task: ``mixed``, ``descriptive``, ``multiple_choice``."""
    root = write_clevrer(tmp_path_factory.mktemp("clevrer") / "CLEVRER", frames=16)
    out = {}
    for task in ("mixed", "descriptive", "multiple_choice"):
        ds = open_clevrer("train", params={"root": str(root), "task": task, **CLIP})
        out[task] = collate([ds[i] for i in range(len(ds))])
    return out


@pytest.mark.parametrize("name", MODELS)
def test_mixed_loss_is_the_sum_of_the_single_task_losses(data, name):
    m = MODELS[name]().eval()
    mixed = data["mixed"]
    logits = m.task_logits(mixed)
    assert isinstance(logits, MixedLogits)
    assert logits.is_choice.tolist() == (mixed.question_type != 0).tolist()
    assert logits.descriptive.shape == (6, 22) and logits.multiple_choice.shape == (9, 3)
    loss, terms = m.task_loss(mixed, logits)
    desc, _ = m.task_loss(data["descriptive"], m.task_logits(data["descriptive"]))
    pairs, _ = m.task_loss(data["multiple_choice"], m.task_logits(data["multiple_choice"]))
    assert abs(loss.item() - (desc + pairs).item()) < 1e-6
    assert set(terms) == {"ce_descriptive", "bce_choice"}
    torch.testing.assert_close(terms["ce_descriptive"], desc.detach())
    # the real choices' logits are the per-pair logits of the single-task batch; padding is NaN
    real = mixed.choice_mask[logits.is_choice]
    torch.testing.assert_close(logits.multiple_choice[real], m.task_logits(data["multiple_choice"])[:, 0])
    assert torch.isnan(logits.multiple_choice[~real]).all()


@pytest.mark.parametrize("name", MODELS)
def test_mixed_metrics_per_sample_nan_for_the_other_kind(data, name):
    m = MODELS[name]().eval()
    mixed = data["mixed"]
    metrics = m.evaluate_batch(mixed)
    is_choice = mixed.choice_mask.any(-1)
    for key in ("acc_descriptive", "option_acc", "question_acc", "loss",
                *(f"option_acc_{t}" for t in QUESTION_TYPES[1:])):
        assert metrics[key].shape == (15,), key
    assert torch.isnan(metrics["acc_descriptive"][is_choice]).all()
    for key in ("option_acc", "question_acc"):
        assert torch.isnan(metrics[key][~is_choice]).all() and not torch.isnan(metrics[key][is_choice]).any()
    torch.testing.assert_close(metrics["acc_descriptive"][~is_choice],
                               m.evaluate_batch(data["descriptive"])["acc_descriptive"])
    per_pair = m.evaluate_batch(data["multiple_choice"])["option_acc"]
    pair_keys = data["multiple_choice"].question_key
    for i in is_choice.nonzero().squeeze(1).tolist():
        options = per_pair[(pair_keys == mixed.question_key[i]).all(-1)]
        assert metrics["option_acc"][i].item() == pytest.approx(options.mean().item())
        assert metrics["question_acc"][i].item() == float(bool((options == 1).all()))
        for t, type_name in enumerate(QUESTION_TYPES[1:], start=1):
            value = metrics[f"option_acc_{type_name}"][i]
            assert math.isnan(value) if int(mixed.question_type[i]) != t else value == metrics["option_acc"][i]
    single = m.evaluate_batch(data["multiple_choice"])
    assert "question_acc" not in single  # single-task metrics keep their keys


@pytest.mark.parametrize("name", MODELS)
def test_padded_choices_never_change_logits_or_metrics(data, name):
    m = MODELS[name]().eval()
    mixed = data["mixed"]
    b, c, length = mixed.choices.shape
    g = torch.Generator().manual_seed(0)
    # words and "correct" labels in every padded slot, two extra slots: none of it may be read
    junk = torch.randint(1, VOCAB, (b, c + 2, length), generator=g)
    mask = torch.cat([mixed.choice_mask, torch.zeros(b, 2, dtype=torch.bool)], dim=1)
    choices = torch.where(mask[..., None], torch.cat([mixed.choices, junk[:, c:]], dim=1), junk)
    labels = torch.where(mask, torch.cat([mixed.choice_answers, torch.ones(b, 2, dtype=torch.long)], 1), 1)
    padded = mixed.replace(choices=choices, choice_mask=mask, choice_answers=labels)
    before, after = m.task_logits(mixed), m.task_logits(padded)
    torch.testing.assert_close(after.descriptive, before.descriptive)
    torch.testing.assert_close(after.multiple_choice[:, :c], before.multiple_choice, equal_nan=True)
    assert torch.isnan(after.multiple_choice[:, c:]).all()
    torch.testing.assert_close(m.task_loss(padded, after)[0], m.task_loss(mixed, before)[0])
    mb, ma = m.evaluate_batch(mixed), m.evaluate_batch(padded)
    assert set(mb) == set(ma)
    for key in mb:
        torch.testing.assert_close(ma[key], mb[key], equal_nan=True)


def test_a_mixed_batch_of_one_kind(data):
    m = aloe().eval()
    mixed = data["mixed"]
    desc_rows = (~mixed.choice_mask.any(-1)).nonzero().squeeze(1)
    only_desc = select_rows(mixed, desc_rows)
    logits = m.task_logits(only_desc)
    assert logits.multiple_choice is None
    loss, terms = m.task_loss(only_desc, logits)
    torch.testing.assert_close(loss, m.task_loss(data["descriptive"], m.task_logits(data["descriptive"]))[0])
    assert set(terms) == {"ce_descriptive"}
    metrics = m.evaluate_batch(only_desc)
    assert torch.isnan(metrics["option_acc"]).all() and not torch.isnan(metrics["acc_descriptive"]).any()
    with pytest.raises(DataError, match="MixedLogits"):
        m.task_loss(mixed, logits.descriptive)


@pytest.mark.parametrize("name", MODELS)
def test_training_step_on_a_mixed_batch(data, name):
    m = MODELS[name](**({"aux_weight": 1.0, "unsupervised_fraction": 0.25, "dropout": 0.0}
                        if name == "aloe" else {})).train()
    out = m(data["mixed"])
    assert {"ce_descriptive", "bce_choice"} <= set(out.terms) and torch.isfinite(out.loss)
    assert out.logits is None and isinstance(out.extra["mixed_logits"], MixedLogits)
    if name == "aloe":
        assert "aux" in out.terms and out.terms["supervised"].item() == 11
    (out.loss - out.terms.get("monet_loss", 0.0)).backward()
    for head in (m.descriptive_head, m.choice_head):
        grads = [p.grad for p in head.parameters()]
        assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_mixed_config_is_clevrer_mini_with_task_mixed():
    from pathlib import Path

    from slotvideo.data.clevrer import CLEVRER_SPEC
    from slotvideo.data.kinetics import parse_params
    from slotvideo.train.config import build_model, load_config

    configs = Path(__file__).resolve().parents[2] / "configs" / "aloe"
    mixed, single = load_config(configs / "clevrer_mini_mixed.yaml"), load_config(configs / "clevrer_mini.yaml")
    assert mixed.model == single.model and mixed.train == single.train and mixed.optim == single.optim
    params = {k: v for k, v in mixed.data.params.items() if k != "generate"}
    assert {k: v for k, v in params.items() if k not in ("task", "max_choices")} == {
        k: v for k, v in single.data.params.items() if k not in ("task", "generate")}
    parsed = parse_params("clevrer", params, CLEVRER_SPEC)
    assert (parsed["task"], parsed["max_choices"]) == ("mixed", 4)
    assert isinstance(build_model(mixed), Aloe)
