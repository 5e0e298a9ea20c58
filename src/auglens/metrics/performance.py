"""Classification performance of one model: accuracy, macro precision / recall / F1, confusion matrix.

Pure torch (no scikit-learn at runtime); the numbers match scikit-learn's
``accuracy_score``, ``precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)``
and ``confusion_matrix(y_true, y_pred, labels=range(num_classes))``, which the tests use as the oracle.
Computed on the inputs' device.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["classification_report", "confusion_matrix"]


def _as_labels(preds: Any, labels: Any, num_classes: int) -> tuple[Tensor, Tensor]:
    preds = torch.as_tensor(preds)
    labels = torch.as_tensor(labels)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if preds.ndim == 2:
        # Scores (logits or probabilities), one row per sample: the prediction is the arg-max class.
        if preds.shape[1] != num_classes:
            raise ValueError(f"preds has {preds.shape[1]} score columns but num_classes={num_classes}")
        preds = preds.argmax(dim=1)
    if preds.ndim != 1 or labels.ndim != 1 or preds.shape != labels.shape:
        raise ValueError(
            f"expected preds (N,) or (N, C) and labels (N,), got {tuple(preds.shape)} and {tuple(labels.shape)}"
        )
    if preds.device != labels.device:
        raise ValueError(f"preds and labels are on different devices ({preds.device} and {labels.device})")
    if preds.is_floating_point() or labels.is_floating_point() or preds.is_complex() or labels.is_complex():
        raise TypeError("class indices must be integer tensors (pass (N, C) scores to take the arg-max)")
    if labels.numel() == 0:
        raise ValueError("no samples: accuracy and the macro averages are undefined")
    preds = preds.long()
    labels = labels.long()
    for name, t in (("preds", preds), ("labels", labels)):
        if bool(((t < 0) | (t >= num_classes)).any()):
            raise ValueError(f"{name} contains class indices outside [0, {num_classes})")
    return preds, labels


def confusion_matrix(preds: Any, labels: Any, num_classes: int) -> Tensor:
    """Confusion matrix, ``C[i, j]`` = number of samples of true class ``i`` predicted as class ``j``.

    Args:
        preds: predicted class indices ``(N,)``, or scores ``(N, num_classes)`` (arg-max is taken).
        labels: true class indices ``(N,)``.
        num_classes: ``C``; every class gets a row and a column, seen or not.

    Returns:
        ``(C, C)`` int64 on the inputs' device, rows = true label, columns = predicted label.
    """
    preds, labels = _as_labels(preds, labels, num_classes)
    flat = torch.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    # zero_division=0: a ratio whose denominator is 0 is reported as 0.
    num = num.to(torch.float64)
    den = den.to(torch.float64)
    return torch.where(den > 0, num / den.clamp_min(1), torch.zeros_like(num))


def classification_report(preds: Any, labels: Any, num_classes: int) -> dict[str, Any]:
    """Accuracy, macro precision / recall / F1 and the confusion matrix of one model's predictions.

    Per class ``c``: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN), each
    0 when its denominator is 0 (scikit-learn's ``zero_division=0``). So a class that occurs in ``labels``
    but is never predicted counts with precision 0, recall 0, F1 0.

    The macro averages are unweighted means over the classes that occur in ``labels`` or in ``preds``
    (scikit-learn's default label set when ``labels=`` is not passed, and torchmetrics' macro behaviour):
    a class absent from both has no defined score and is left out rather than counted as 0, so evaluating
    on a subset that lacks a class does not lower the averages. The per-class tensors still have all
    ``num_classes`` entries (0 for absent classes).

    Args:
        preds: predicted class indices ``(N,)``, or scores ``(N, num_classes)`` (arg-max is taken).
        labels: true class indices ``(N,)``, ``N >= 1``.
        num_classes: ``C``.

    Returns:
        ``accuracy``, ``precision_macro``, ``recall_macro``, ``f1_macro``: Python floats;
        ``confusion_matrix``: ``(C, C)`` int64, rows = true label;
        ``precision``, ``recall``, ``f1``: ``(C,)`` float64 per class; ``support``: ``(C,)`` int64 true counts.
        Tensors are on the inputs' device.
    """
    cm = confusion_matrix(preds, labels, num_classes)
    tp = cm.diagonal()
    support = cm.sum(dim=1)  # TP + FN
    predicted = cm.sum(dim=0)  # TP + FP
    precision = _safe_ratio(tp, predicted)
    recall = _safe_ratio(tp, support)
    f1 = _safe_ratio(2 * tp, support + predicted)  # 2TP + FP + FN = (TP + FN) + (TP + FP)
    present = (support > 0) | (predicted > 0)  # never empty: N >= 1
    n_present = present.sum().to(torch.float64)

    def macro(score: Tensor) -> float:
        return float((score * present).sum() / n_present)

    return {
        "accuracy": float(tp.sum().to(torch.float64) / cm.sum()),
        "precision_macro": macro(precision),
        "recall_macro": macro(recall),
        "f1_macro": macro(f1),
        "confusion_matrix": cm,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
    }
