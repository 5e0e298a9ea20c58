"""auglens.metrics.performance against scikit-learn (test-only oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from auglens.metrics.performance import classification_report, confusion_matrix  # noqa: E402


def sklearn_report(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict:
    p, r, f, _ = sklearn_metrics.precision_recall_fscore_support(labels, preds, average="macro", zero_division=0)
    return {
        "accuracy": sklearn_metrics.accuracy_score(labels, preds),
        "precision_macro": p,
        "recall_macro": r,
        "f1_macro": f,
        "confusion_matrix": sklearn_metrics.confusion_matrix(labels, preds, labels=list(range(num_classes))),
    }


def check_against_sklearn(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    ours = classification_report(torch.from_numpy(preds), torch.from_numpy(labels), num_classes)
    ref = sklearn_report(labels, preds, num_classes)
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
        assert isinstance(ours[key], float)
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key
    np.testing.assert_array_equal(ours["confusion_matrix"].numpy(), ref["confusion_matrix"])
    return ours


@pytest.mark.parametrize("seed", range(5))
def test_random_predictions_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, size=200)
    preds = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 6, size=200))
    check_against_sklearn(preds, labels, 6)


def test_class_never_predicted_counts_as_zero_precision_and_recall():
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 5, size=300)
    preds = np.where(rng.random(300) < 0.7, labels, rng.integers(0, 5, size=300))
    preds[preds == 3] = 1  # class 3 occurs in labels but is never predicted
    ours = check_against_sklearn(preds, labels, 5)
    assert ours["precision"][3] == 0 and ours["recall"][3] == 0 and ours["f1"][3] == 0
    assert ours["confusion_matrix"][:, 3].sum() == 0 and ours["support"][3] > 0


def test_class_predicted_but_never_true_and_class_absent_everywhere():
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0])
    preds = np.array([0, 3, 1, 1, 0, 2, 3, 0])  # 3 predicted but never true; 4 absent from both
    ours = check_against_sklearn(preds, labels, 5)
    assert ours["confusion_matrix"].shape == (5, 5)
    assert ours["confusion_matrix"][4].sum() == 0 and ours["confusion_matrix"][:, 4].sum() == 0


def test_hand_computed_case():
    labels = torch.tensor([0, 0, 1, 1])
    preds = torch.tensor([0, 1, 1, 1])
    ours = classification_report(preds, labels, 2)
    # class 0: P = 1/1, R = 1/2, F1 = 2/3; class 1: P = 2/3, R = 1, F1 = 4/5
    assert ours["accuracy"] == 0.75
    assert ours["precision_macro"] == pytest.approx((1 + 2 / 3) / 2)
    assert ours["recall_macro"] == pytest.approx(0.75)
    assert ours["f1_macro"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert ours["confusion_matrix"].tolist() == [[1, 1], [0, 2]]


def test_scores_input_takes_argmax():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(50, 4))
    labels = rng.integers(0, 4, size=50)
    ours = classification_report(torch.from_numpy(logits), torch.from_numpy(labels), 4)
    ref = sklearn_report(labels, logits.argmax(axis=1), 4)
    assert ours["f1_macro"] == pytest.approx(ref["f1_macro"], abs=1e-12)
    np.testing.assert_array_equal(confusion_matrix(torch.from_numpy(logits), torch.from_numpy(labels), 4).numpy(),
                                  ref["confusion_matrix"])


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        classification_report(torch.tensor([0, 5]), torch.tensor([0, 1]), 3)  # index out of range
    with pytest.raises(ValueError):
        classification_report(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long), 3)
    with pytest.raises(ValueError):
        classification_report(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), 3)
    with pytest.raises(TypeError):
        classification_report(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), 3)


def test_classes_seen_once_count_in_the_macro_averages():
    # Class 3 is true once and never predicted; class 4 is predicted once and never true: both count.
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 0])
    preds = np.array([0, 1, 1, 1, 2, 4, 0, 0])
    ours = check_against_sklearn(preds, labels, 6)
    assert ours["recall_macro"] == pytest.approx((2 / 3 + 1 + 1 / 2 + 0 + 0) / 5)


def test_a_single_class_is_a_valid_problem():
    ours = classification_report(torch.tensor([0, 0, 0]), torch.tensor([0, 0, 0]), 1)
    assert ours["accuracy"] == 1.0 and ours["f1_macro"] == 1.0


@pytest.mark.parametrize(("preds", "labels", "num_classes", "error", "match"), [
    ([0, 1], [0, 1], 0, ValueError, "positive int"),
    ([0, 1], [0, 1], True, ValueError, "positive int"),
    ([0, 1], [0, 1], 2.0, ValueError, "positive int"),
    ([0, 2], [0, 1], 2, ValueError, "preds contains class indices outside"),
    ([0, 1], [0, 2], 2, ValueError, "labels contains class indices outside"),
    ([0, -1], [0, 1], 2, ValueError, "preds contains"),
    ([0, 1], [0.0, 1.0], 2, TypeError, "integer"),
    ([0, 1], [0j, 1j], 2, TypeError, "integer"),
    ([0j, 1j], [0, 1], 2, TypeError, "integer"),
    ([[0, 1]], [0], 3, ValueError, "score columns"),
    ([0, 1], [[0, 1]], 2, ValueError, "expected preds"),
])
def test_rejects_each_kind_of_bad_input(preds, labels, num_classes, error, match):
    with pytest.raises(error, match=match):
        classification_report(torch.tensor(preds), torch.tensor(labels), num_classes)
