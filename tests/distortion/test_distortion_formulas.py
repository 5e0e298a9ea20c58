"""The distortion paper's formulas against hand-computed cases: DI (Eq. 1), iOcclusion (Eq. 2), affinity,
diversity, shape bias."""

from __future__ import annotations

import math

import pytest
import torch

from auglens.augment.base import AugmentedBatch
from auglens.distortion.affinity import affinity, majority_labels
from auglens.distortion.cue_conflict import parse_cue_conflict_name, shape_bias
from auglens.distortion.interference import (
    data_interference,
    di_index,
    misclassification_increase,
    wrong_prediction_counts,
)
from auglens.distortion.occlusion import i_occlusion


def test_wrong_predictions_are_counted_by_predicted_class():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 2, 0, 1, 0, 2])  # wrong: 0->2, 1->0, 2->0
    assert wrong_prediction_counts(preds, labels, 3).tolist() == [2, 0, 1]


def test_misclassification_increase_in_both_normalisations():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    clean = wrong_prediction_counts(torch.tensor([0, 0, 2, 0, 1, 1, 2, 2, 2, 2]), labels, 3)  # as 0 once, as 2 once
    distorted = wrong_prediction_counts(torch.tensor([1, 1, 1, 0, 1, 1, 2, 2, 2, 2]), labels, 3)  # as 1 x3, as 0 once
    # paper: percent of the 10 test images
    paper = misclassification_increase(clean, distorted, 10, "paper")
    assert torch.allclose(paper, torch.tensor([0.0, 30.0, -10.0], dtype=torch.float64))
    # release: shares of the wrong predictions (0.5, 0, 0.5) -> (0.25, 0.75, 0), difference x K/100
    release = misclassification_increase(clean, distorted, 10, "release")
    assert torch.allclose(release, torch.tensor([-0.25, 0.75, -0.5], dtype=torch.float64) * 3 / 100)
    # a histogram without wrong predictions is all zeros (the release would divide by zero)
    none = misclassification_increase(torch.zeros(3, dtype=torch.int64), distorted, 10, "release")
    assert torch.allclose(none, torch.tensor([0.25, 0.75, 0.0], dtype=torch.float64) * 3 / 100)
    with pytest.raises(ValueError, match="release, paper"):
        misclassification_increase(clean, distorted, 10, "percent")


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


def test_dominant_class_is_chosen_by_the_mean_increase_over_runs():
    # Class 0 has the single largest increase (40, in run 1) but class 1 the highest mean (20 > 13.3).
    increase = torch.tensor([[40.0, 0.0], [0.0, 30.0], [0.0, 30.0]])
    result = data_interference(increase)
    assert result.c_max == 1
    assert result.per_run.tolist() == [0.0, 30.0, 30.0]  # run 1's increase all went to class 0
    assert result.mean == pytest.approx(20.0)
    # The same through the release's normalisation: run r has its wrong predictions move to one class.
    clean = torch.tensor([[5, 5], [5, 5], [5, 5]])
    distorted = torch.tensor([[9, 1], [1, 9], [1, 9]])  # shares change by (+-0.4) -> increases 0.4 * 2 / 100
    release = di_index(clean, distorted, 100, "release")
    assert release.c_max == 1
    # weight = mean over runs of the increase at c_max = (0 + 0.008 + 0.008) / 3; x 100 for percent
    weight = 100 * 2 * 0.008 / 3
    assert torch.allclose(release.per_run, torch.tensor([0.0, weight, weight], dtype=torch.float64))


def test_di_in_the_release_normalisation_by_hand_with_a_run_without_increase():
    # K = 4 classes, 3 runs; counts of wrong predictions per predicted class.
    clean = torch.tensor([[2, 2, 4, 2], [5, 0, 0, 5], [1, 1, 1, 1]])
    distorted = torch.tensor([[10, 2, 4, 4], [5, 5, 5, 5], [2, 2, 2, 2]])
    # shares: run 1 (.2 .2 .4 .2) -> (.5 .1 .2 .2): +.3 at class 0; run 2 (.5 0 0 .5) -> (.25 x4): +.25 at 1 and 2;
    # run 3: the same shares before and after -> no increase at all. Positive part x K/100 = x 0.04:
    # run 1 (.012, 0, 0, 0), run 2 (0, .01, .01, 0), run 3 zeros; means (.004, .00333, .00333, 0) -> c_max = 0.
    result = di_index(clean, distorted, 1000, "release")
    assert result.c_max == 0
    # per run: share of c_max (1, 0, 0 — run 3 has no increase: DI 0) x mean increase at c_max (.004) x 100
    assert torch.allclose(result.per_run, torch.tensor([0.4, 0.0, 0.0], dtype=torch.float64))
    assert result.mean == pytest.approx(0.4 / 3)
    assert result.std == pytest.approx(math.sqrt(((0.4 - 0.4 / 3) ** 2 + 2 * (0.4 / 3) ** 2) / 2))  # ddof = 1
    # worst case: weighted by the largest increase at c_max of any run (.012)
    assert torch.allclose(di_index(clean, distorted, 1000, "release", worst=True).per_run,
                          torch.tensor([1.2, 0.0, 0.0], dtype=torch.float64))


def test_di_in_the_paper_normalisation_by_hand_with_a_run_without_increase():
    clean = torch.tensor([[2, 2, 4, 2], [5, 0, 0, 5], [1, 1, 1, 1]])
    distorted = torch.tensor([[10, 2, 4, 4], [5, 5, 5, 5], [1, 1, 0, 1]])
    # percent of 100 test images: run 1 (+8, 0, 0, +2), run 2 (0, +5, +5, 0), run 3 none (-1 at class 2)
    # means (8/3, 5/3, 5/3, 2/3) -> c_max = 0; per run: own share x own increase
    result = di_index(clean, distorted, 100, "paper")
    assert result.c_max == 0
    assert torch.allclose(result.per_run, torch.tensor([8 / 10 * 8, 0.0, 0.0], dtype=torch.float64))
    assert result.mean == pytest.approx(6.4 / 3)
    worst = di_index(clean, distorted, 100, "paper", worst=True)
    assert torch.allclose(worst.per_run, torch.tensor([8 / 10 * 8, 0.0, 0.0], dtype=torch.float64))


def test_di_is_zero_without_any_increase_and_std_undefined_for_one_run():
    result = data_interference(torch.tensor([[-5.0, 0.0, -1.0]]))
    assert result.per_run.tolist() == [0.0] and math.isnan(result.std)
    same = torch.tensor([[3, 1, 0]])
    for normalisation in ("release", "paper"):
        assert di_index(same, same, 10, normalisation).per_run.tolist() == [0.0]


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


def test_majority_label_is_the_label_of_the_larger_share():
    batch = AugmentedBatch(torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7]),
                           torch.tensor([0.7, 0.5, 0.2]))
    assert majority_labels(batch).tolist() == [0, 1, 7]


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


def test_coarse_predictions_average_the_member_probabilities():
    from auglens.distortion.cue_conflict import coarse_predictions

    # cue class 0 = model classes {0, 1}, cue class 1 = {2}: means (0.25, 0.5) and (0.45, 0.1)
    probabilities = torch.tensor([[0.5, 0.0, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
    assert coarse_predictions(probabilities, [[0, 1], [2]]).tolist() == [1, 0]


def test_class_mapping_file_takes_names_or_indices_and_reports_unknown_members(tmp_path):
    import json

    from auglens.distortion.cue_conflict import load_class_mapping

    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"cat": ["Tabby", 2], "dog": ["beagle"]}))
    assert load_class_mapping(path, ["tabby", "beagle", "siamese"]) == {"cat": [0, 2], "dog": [1]}
    path.write_text(json.dumps({"cat": ["lion", 7]}))
    with pytest.raises(ValueError, match=r"unknown members: \['lion', 7\]"):
        load_class_mapping(path, ["tabby", "beagle", "siamese"])
