"""CLEVRER accuracies against a hand-worked example."""
import pytest
import torch

from slotvideo.errors import ShapeError
from slotvideo.metrics import ClevrerAccuracy, question_type_ids

# Hand-worked example, options keyed by (scene_index, question_id):
#   (0,0) explanatory    3 options, all right                 -> question right
#   (0,1) predictive     2 options, 1 right                   -> question wrong
#   (1,2) explanatory    2 options split over two batches,
#                        right in batch 1, wrong in batch 2   -> question wrong
#   (1,0) counterfactual 4 options, all right                 -> question right
# per option: explanatory 4/5, predictive 1/2, counterfactual 4/4, all 9/11
# per question: explanatory 1/2, predictive 0/1, counterfactual 1/1, all 2/4
# descriptive: 2 of 3 argmax answers right.
EXPECTED = {
    "descriptive": 2 / 3,
    "explanatory_per_option": 4 / 5, "explanatory_per_question": 1 / 2,
    "predictive_per_option": 1 / 2, "predictive_per_question": 0.0,
    "counterfactual_per_option": 1.0, "counterfactual_per_question": 1.0,
    "multiple_choice_per_option": 9 / 11, "multiple_choice_per_question": 2 / 4,
}

BATCH_1 = dict(
    question_ids=torch.tensor([[0, 0], [0, 0], [0, 0], [0, 1], [0, 1], [1, 2]]),
    question_types=["explanatory", "explanatory", "explanatory", "predictive", "predictive", "explanatory"],
    option_predictions=torch.tensor([1, 0, 1, 1, 1, 0]),
    option_labels=torch.tensor([1, 0, 1, 1, 0, 0]),
    descriptive_predictions=torch.tensor([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0]]),  # argmax 1, 0
    descriptive_answers=torch.tensor([1, 2]),
)
BATCH_2 = dict(
    question_ids=torch.tensor([[1, 0], [1, 0], [1, 0], [1, 0], [1, 2]]),
    question_types=torch.tensor([3, 3, 3, 3, 1]),
    option_predictions=torch.tensor([False, False, True, True, True]),
    option_labels=torch.tensor([False, False, True, True, False]),
    descriptive_predictions=torch.tensor([5]),
    descriptive_answers=torch.tensor([5]),
)


def test_hand_worked_example_over_two_batches():
    metric = ClevrerAccuracy()
    metric.update(**BATCH_1)
    metric.update(**BATCH_2)
    assert metric.compute() == pytest.approx(EXPECTED)
    metric.reset()
    assert metric.compute() == {}


def test_flat_ids_and_suffixed_type_names_give_the_same_result():
    metric = ClevrerAccuracy()
    for batch in (BATCH_1, BATCH_2):
        ids = batch["question_ids"][:, 0] * 1000 + batch["question_ids"][:, 1]
        metric.update_options(ids, batch["question_types"], batch["option_predictions"], batch["option_labels"])
        metric.update_descriptive(batch["descriptive_predictions"], batch["descriptive_answers"])
    assert metric.compute() == pytest.approx(EXPECTED)
    assert question_type_ids(["explanatory_cause", "counterfactual", "descriptive"]).tolist() == [1, 3, 0]


def test_groups_without_data_are_left_out():
    metric = ClevrerAccuracy()
    metric.update_descriptive(torch.tensor([1, 2]), torch.tensor([1, 1]))
    assert metric.compute() == {"descriptive": 0.5}


def test_bad_inputs_name_the_argument():
    metric = ClevrerAccuracy()
    ids, types = torch.tensor([0, 0]), ["predictive", "predictive"]
    with pytest.raises(ShapeError, match="predictions"):
        metric.update_options(ids, types, torch.tensor([0.3, 0.9]), torch.tensor([0, 1]))
    with pytest.raises(ShapeError, match="labels"):
        metric.update_options(ids, types, torch.tensor([0, 1]), torch.tensor([0, 1, 1]))
    with pytest.raises(ShapeError, match="question_types"):
        metric.update_options(ids, ["predictive", "why"], torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ShapeError, match="update_descriptive"):
        metric.update_options(ids, ["descriptive"] * 2, torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ShapeError, match="question_ids"):
        metric.update_options(torch.zeros(2, 3, dtype=torch.long), types, torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ShapeError, match="together"):
        metric.update(question_ids=ids, question_types=types)
    metric.update_options(ids, ["predictive", "explanatory"], torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ShapeError, match="different question_types"):
        metric.compute()


def test_padded_option_accuracy_matches_the_grouped_official_scores():
    """Random padded batches: the per-question share and all-right flag equal ClevrerAccuracy's per-option and
    per-question accuracies on the same options, flattened (padding dropped) and grouped by question id."""
    from slotvideo.metrics.clevrer import padded_option_accuracy

    g = torch.Generator().manual_seed(0)
    b, c = 64, 4
    counts = torch.randint(1, c + 1, (b,), generator=g)
    real = torch.arange(c)[None] < counts[:, None]
    answers = torch.randint(0, 2, (b, c), generator=g)
    logits = torch.randn(b, c, generator=g).masked_fill(~real, float("nan"))   # padding is never scored
    share, all_right = padded_option_accuracy(logits, answers, real)
    for q in range(b):
        metric = ClevrerAccuracy()
        n = int(counts[q])
        metric.update_options(torch.full((n,), q), ["predictive"] * n, (logits[q, :n] > 0).long(), answers[q, :n])
        scores = metric.compute()
        assert float(share[q]) == pytest.approx(scores["predictive_per_option"])
        assert float(all_right[q]) == scores["predictive_per_question"]
    with pytest.raises(ShapeError, match="real"):
        padded_option_accuracy(logits, answers, real[:, :2])
