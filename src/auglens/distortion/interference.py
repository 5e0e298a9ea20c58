"""Data Interference (DI) index, Eq. 1 of the distortion paper (Marcu & Prügel-Bennett, ICML 2022).

For a model m and a distortion, ``i_c`` is the increase, in percent of the test images, of wrong
predictions *as* class c (the predicted class of misclassified images) on distorted versus original test
data, positive parts only. With ``c_max`` the class with the highest mean increase across the runs,

    DI = i_cmax / sum_c i_c * i_cmax                                    (Eq. 1)

the share of the increase that goes to the dominant class, weighted by its size. DI is computed per run
and reported as mean ± std over runs. Weights:

- ``"run"`` (default, the paper's Eq. 1): each run's own ``i_cmax``;
- ``"mean"``: the mean ``i_cmax`` over runs, as the authors' release (``DI.py``) does — its std then only
  reflects the share term;
- ``"max"``: the highest ``i_cmax`` of any run — the worst-case index of the paper's Appendix B.1.

Where auglens differs from the release: the release normalises each misclassification histogram by the
number of wrong predictions (shares of the misclassifications) and rescales the difference by K / 100;
auglens follows the paper's wording, percent of the test images, so the numbers are not the release's.
A run with no increase for any class has DI = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DIResult", "data_interference", "misclassification_increase", "wrong_prediction_counts"]


def wrong_prediction_counts(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Wrong predictions per *predicted* class; (N,), (N,) -> (K,) int64."""
    wrong = preds != labels
    return torch.bincount(preds[wrong].long(), minlength=num_classes)


def misclassification_increase(clean_preds: torch.Tensor, distorted_preds: torch.Tensor, labels: torch.Tensor,
                               num_classes: int) -> torch.Tensor:
    """Signed change, in percent of the test images, of wrong predictions as each class; (N,) x3 -> (K,) float64.

    Positive = the distortion makes the model wrongly predict that class more often. DI uses the positive part.
    """
    clean = wrong_prediction_counts(clean_preds, labels, num_classes)
    distorted = wrong_prediction_counts(distorted_preds, labels, num_classes)
    return 100.0 * (distorted - clean).to(torch.float64) / len(labels)


@dataclass
class DIResult:
    """DI of one model type over its runs: ``per_run`` (R,), ``c_max`` (class index), mean and std over runs."""

    per_run: torch.Tensor
    c_max: int
    mean: float
    std: float


def data_interference(increase: torch.Tensor, weight: str = "run") -> DIResult:
    """Eq. 1 over runs: ``increase`` (R, K) signed per-class increases (percent) -> :class:`DIResult`.

    ``weight``: ``"run"`` (Eq. 1), ``"mean"`` (the authors' release) or ``"max"`` (worst case, Appendix B.1).
    The std is the sample std (ddof = 1, as the release); NaN for a single run.
    """
    if increase.ndim != 2:
        raise ValueError(f"increase must be (runs, classes), got shape {tuple(increase.shape)}")
    positive = increase.to(torch.float64).clamp_min(0.0)
    c_max = int(positive.mean(dim=0).argmax())
    dominant = positive[:, c_max]
    total = positive.sum(dim=1)
    share = torch.where(total > 0, dominant / total.clamp_min(1e-300), torch.zeros_like(total))
    if weight == "run":
        scale = dominant
    elif weight == "mean":
        scale = dominant.mean().expand_as(dominant)
    elif weight == "max":
        scale = dominant.max().expand_as(dominant)
    else:
        raise ValueError(f"weight must be 'run', 'mean' or 'max', got {weight!r}")
    per_run = share * scale
    std = float(per_run.std()) if len(per_run) > 1 else float("nan")
    return DIResult(per_run, c_max, float(per_run.mean()), std)
