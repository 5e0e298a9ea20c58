"""The distortion paper's formulas against hand-computed cases: DI (Eq. 1), iOcclusion (Eq. 2), affinity,
diversity, shape bias."""

from __future__ import annotations

import math

import pytest
import torch

from auglens.augment.base import AugmentedBatch
from auglens.distortion.affinity import affinity, diversity, majority_labels
from auglens.distortion.cue_conflict import parse_cue_conflict_name, shape_bias
from auglens.distortion.interference import data_interference, misclassification_increase, wrong_prediction_counts
from auglens.distortion.occlusion import i_occlusion


def test_wrong_predictions_are_counted_by_predicted_class():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 2, 0, 1, 0, 2])  # wrong: 0->2, 1->0, 2->0
    assert wrong_prediction_counts(preds, labels, 3).tolist() == [2, 0, 1]


def test_misclassification_increase_in_percent_of_test_images():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    clean = torch.tensor([0, 0, 2, 0, 1, 1, 2, 2, 2, 2])  # wrong as 2 (once), as 0 (once)
    distorted = torch.tensor([1, 1, 1, 0, 1, 1, 2, 2, 2, 2])  # wrong as 1 (3 times), as 0 (once)
    increase = misclassification_increase(clean, distorted, labels, 3)
    assert torch.allclose(increase, torch.tensor([0.0, 30.0, -10.0], dtype=torch.float64))


def test_di_index_on_a_two_run_example():
    # Positive increases: run 1 (0, 30, 0), run 2 (10, 20, 0) -> c_max = 1 (mean 25).
    increase = torch.tensor([[0.0, 30.0, -10.0], [10.0, 20.0, 0.0]])
    result = data_interference(increase)
    assert result.c_max == 1
    # Eq. 1 per run: share of the dominant class times its increase.
    expected = torch.tensor([30 / 30 * 30, 20 / 30 * 20], dtype=torch.float64)
    assert torch.allclose(result.per_run, expected)
    assert result.mean == pytest.approx((30 + 40 / 3) / 2)
    assert result.std == pytest.approx(abs(30 - 40 / 3) / math.sqrt(2))
    # The release weights by the mean increase over runs (25); the worst case by the largest (30).
    assert torch.allclose(data_interference(increase, "mean").per_run, torch.tensor([25.0, 2 / 3 * 25], dtype=torch.float64))
    assert torch.allclose(data_interference(increase, "max").per_run, torch.tensor([30.0, 20.0], dtype=torch.float64))


def test_di_is_zero_without_any_increase_and_std_undefined_for_one_run():
    result = data_interference(torch.tensor([[-5.0, 0.0, -1.0]]))
    assert result.per_run.tolist() == [0.0] and math.isnan(result.std)


def test_i_occlusion_hand_example():
    # train 100 -> 70 %, test 80 -> 60 %: |(70 - 60) / (100 - 80)| = 0.5
    assert float(i_occlusion(70.0, 60.0, 100.0, 80.0)) == pytest.approx(0.5)
    assert float(i_occlusion(50.0, 60.0, 100.0, 80.0)) == pytest.approx(0.5)  # absolute value
    assert float(i_occlusion(100.0, 80.0, 100.0, 80.0)) == pytest.approx(1.0)  # p = 0
    assert math.isnan(float(i_occlusion(50.0, 40.0, 90.0, 90.0)))  # no generalisation gap
    batched = i_occlusion(torch.tensor([70.0, 90.0]), torch.tensor([60.0, 70.0]), 100.0, 80.0)
    assert torch.allclose(batched, torch.tensor([0.5, 1.0], dtype=torch.float64))


def test_affinity_difference_and_ratio():
    assert float(affinity(70.0, 80.0)) == pytest.approx(-10.0)
    assert float(affinity(70.0, 80.0, "ratio")) == pytest.approx(0.875)
    with pytest.raises(ValueError, match="difference"):
        affinity(1.0, 1.0, "log")


def test_diversity_and_mix_diversity_hand_example():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    batch = AugmentedBatch(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), torch.tensor([1, 0]),
                           torch.tensor([0.75, 0.25]))
    ce_right = math.log(1 + math.exp(-2))  # CE of logits (2, 0) for class 0
    ce_wrong = 2 + ce_right  # ... for class 1
    assert majority_labels(batch).tolist() == [0, 0]
    div, mix = diversity(logits, batch)
    assert float(div) == pytest.approx((ce_right + math.log(2)) / 2)
    assert float(mix) == pytest.approx((0.75 * ce_right + 0.25 * ce_wrong + math.log(2)) / 2)


def test_shape_bias_drops_agreeing_trials():
    preds = torch.tensor([0, 1, 1, 0, 3])
    shape = torch.tensor([0, 1, 1, 2, 3])
    texture = torch.tensor([1, 0, 2, 0, 3])  # the last trial agrees: dropped
    scores = shape_bias(preds, shape, texture)
    assert scores == {"shape_accuracy": 0.75, "texture_accuracy": 0.25, "shape_bias": 0.75, "trials": 4}


@pytest.mark.parametrize("stem, expected", [("dog10-bird2", ("dog", "bird")),
                                            ("top-left3-bottom-right12", ("top-left", "bottom-right")),
                                            ("airplane1-bicycle2", ("airplane", "bicycle"))])
def test_cue_conflict_names(stem, expected):
    assert parse_cue_conflict_name(stem) == expected


def test_cue_conflict_bad_name_says_the_pattern():
    with pytest.raises(ValueError, match="dog10-bird2"):
        parse_cue_conflict_name("dog.png")
