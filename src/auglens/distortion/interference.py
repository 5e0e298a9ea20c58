"""Data Interference (DI) index, Eq. 1 of the distortion paper (Marcu & Prügel-Bennett, ICML 2022).

For a model type and a distortion, every run r gives two histograms of wrong predictions over the
*predicted* class c (images whose prediction is wrong, counted by what they were taken for): on the clean
test set and on the distorted one. ``i_c`` is the positive part of the increase from clean to distorted;
``c_max`` is the class with the highest *mean* increase over the runs, and per run

    DI = i_cmax / sum_c i_c * w                                           (Eq. 1)

the share of the increase that goes to the dominant class, weighted by its size ``w``. DI is reported as
mean and sample std (ddof = 1) over runs. Two readings of "increase" (``normalisation``):

- ``"release"`` (default; the authors' ``DI.py``, which produced the paper's tables): each histogram is
  divided by that run's number of wrong predictions (shares of the misclassifications); the increase is
  the difference of shares times K / 100; ``w`` is the mean over runs of the increase at ``c_max``; the
  result is in percent (x 100).
- ``"paper"``: the increase in percent of the test images, ``w`` each run's own increase at ``c_max`` —
  Eq. 1 read literally.

The worst case of the paper's Appendix B.1 weights by the highest increase at ``c_max`` of any run.
Where the release gives NaN, auglens defines the value: a run without wrong predictions has the
all-zero distribution, and a run with no increase for any class has DI = 0. The release's histogram
(``cnt[predicted[incorrect]] += 1``) counts each class at most once per batch, because PyTorch's indexed
``+=`` does not accumulate repeated indices; auglens counts every wrong prediction, as the paper describes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["NORMALISATIONS", "DIResult", "data_interference", "di_index", "misclassification_increase",
           "wrong_prediction_counts"]

NORMALISATIONS = ("release", "paper")


def wrong_prediction_counts(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Wrong predictions per *predicted* class; (N,), (N,) -> (K,) int64."""
    wrong = preds != labels
    return torch.bincount(preds[wrong].long(), minlength=num_classes)


def misclassification_increase(clean_wrong: torch.Tensor, distorted_wrong: torch.Tensor, test_images: int,
                               normalisation: str = "release") -> torch.Tensor:
    """Signed per-class increase of wrong predictions; (..., K) counts x2 -> (..., K) float64.

    ``"paper"``: in percent of the ``test_images``. ``"release"``: difference of the shares of the wrong
    predictions, times K / 100 (a histogram without wrong predictions counts as all zeros).
    """
    clean, distorted = clean_wrong.to(torch.float64), distorted_wrong.to(torch.float64)
    if normalisation == "paper":
        return 100.0 * (distorted - clean) / test_images
    if normalisation == "release":
        def shares(counts):
            total = counts.sum(dim=-1, keepdim=True)
            return torch.where(total > 0, counts / total.clamp_min(1.0), torch.zeros_like(counts))

        return (shares(distorted) - shares(clean)) * clean.shape[-1] / 100.0
    raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {normalisation!r}")


@dataclass
class DIResult:
    """DI of one model type over its runs: ``per_run`` (R,), ``c_max`` (class index), mean and std over runs."""

    per_run: torch.Tensor
    c_max: int
    mean: float
    std: float


def data_interference(increase: torch.Tensor, weight: str = "run") -> DIResult:
    """Eq. 1 over runs: ``increase`` (R, K) signed per-class increases -> :class:`DIResult` (same unit).

    ``c_max`` is the class with the highest mean positive increase over runs. ``weight`` of the dominant
    share: ``"run"`` (each run's own increase at c_max), ``"mean"`` (the mean over runs, as the release)
    or ``"max"`` (the highest of any run: the worst case). The std is the sample std (ddof = 1); NaN for
    a single run.
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
    return _result(share * scale, c_max)


def di_index(clean_wrong: torch.Tensor, distorted_wrong: torch.Tensor, test_images: int,
             normalisation: str = "release", worst: bool = False) -> DIResult:
    """DI of one model type from its runs' histograms; (R, K) counts x2 -> :class:`DIResult` in percent.

    ``worst``: weight by the highest increase at c_max of any run (Appendix B.1) instead of the
    normalisation's own weight (the mean over runs for ``"release"``, each run's for ``"paper"``).
    """
    increase = misclassification_increase(clean_wrong, distorted_wrong, test_images, normalisation)
    if normalisation == "release":
        result = data_interference(increase, "max" if worst else "mean")
        return _result(100.0 * result.per_run, result.c_max)  # the release's fraction, in percent
    return data_interference(increase, "max" if worst else "run")


def _result(per_run: torch.Tensor, c_max: int) -> DIResult:
    std = float(per_run.std()) if len(per_run) > 1 else float("nan")
    return DIResult(per_run, c_max, float(per_run.mean()), std)
