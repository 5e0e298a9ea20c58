"""Classification performance per augmentation: thesis Section 5.2.1, Figures 5.6-5.9 (and 5.1-5.5).

The thesis reports, per augmentation, the mean test accuracy / precision / recall / F1 of the ``|X|``
models trained from different starting states. We add the standard deviation over those seeds (sample
std, ``ddof=1``; NaN with a single seed — reports show it as "–").
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from auglens.augment.base import BASELINE

__all__ = ["ARCHITECTURE_COLUMNS", "PERFORMANCE_METRICS", "VALIDATION_METRICS", "architecture_summary",
           "augmentation_order", "performance_summary", "training_time_summary"]

#: Test-set columns of ``performance.csv`` (Figures 5.6, 5.7, 5.8, 5.9).
PERFORMANCE_METRICS: tuple[str, ...] = ("accuracy", "precision_macro", "recall_macro", "f1_macro")

#: Per-epoch validation columns of ``training_history.csv`` (Figures 5.1-5.4).
VALIDATION_METRICS: tuple[str, ...] = ("val_accuracy", "val_precision_macro", "val_recall_macro", "val_f1_macro")

#: Columns of ``architectures.csv`` (thesis step 2, Figures 5.1-5.5): one row per candidate, epoch and split
#: (``validation`` or ``test``); ``seconds`` is the cumulative training time up to that epoch, evaluation excluded.
ARCHITECTURE_COLUMNS: tuple[str, ...] = ("architecture", "epoch", "split", *PERFORMANCE_METRICS, "seconds")


def augmentation_order(*frames: pd.DataFrame, baseline: str = BASELINE) -> list[str]:
    """Augmentation names in order of first appearance (the config's order), the baseline first if present."""
    seen: dict[str, None] = {}
    for frame in frames:
        if "augmentation" in frame:
            seen.update(dict.fromkeys(frame["augmentation"].astype(str)))
    names = list(seen)
    return ([baseline] if baseline in seen else []) + [n for n in names if n != baseline]


def performance_summary(performance: pd.DataFrame,
                        metrics: Sequence[str] = PERFORMANCE_METRICS,
                        baseline: str = BASELINE) -> pd.DataFrame:
    """Mean and std over seeds of each test-set metric per augmentation (Figures 5.6-5.9).

    Args:
        performance: ``performance.csv``: one row per model with ``augmentation``, ``seed`` and ``metrics``.
        metrics: columns to summarise.
        baseline: augmentation name of the baseline, listed first.

    Returns:
        One row per augmentation (baseline first, then order of appearance) with ``n_seeds`` and
        ``<metric>_mean`` / ``<metric>_std`` for each metric; std is NaN for a single seed.
    """
    missing = [c for c in ("augmentation", *metrics) if c not in performance]
    if missing:
        raise KeyError(f"performance table lacks columns {missing}; it has {list(performance.columns)}")
    grouped = performance.groupby("augmentation", sort=False)
    out = pd.DataFrame({"n_seeds": grouped.size()})
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1)
    out = out.reindex(augmentation_order(performance, baseline=baseline))
    out.index.name = "augmentation"
    return out.reset_index()


def training_time_summary(performance: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Training time and best (checkpoint) epoch per augmentation, mean and std over seeds (Figure 5.5)."""
    return performance_summary(performance, ("train_seconds", "best_epoch"), baseline)


def architecture_summary(architectures: pd.DataFrame) -> pd.DataFrame:
    """Per candidate architecture (``architectures.csv``), the epoch a study would keep and its test metrics.

    The kept epoch is the study's checkpoint rule: the highest validation accuracy, the earliest on ties.

    Returns:
        One row per architecture (order of appearance): ``epochs``, ``best_epoch``, the test-set metrics at
        that epoch, ``seconds_to_best`` (training time up to it) and ``train_seconds`` (all epochs).
    """
    missing = [c for c in ARCHITECTURE_COLUMNS if c not in architectures]
    if missing:
        raise KeyError(f"architecture table lacks columns {missing}; it has {list(architectures.columns)}")
    rows = []
    for name, frame in architectures.groupby("architecture", sort=False):
        validation = frame[frame["split"] == "validation"].sort_values("epoch")
        test = frame[frame["split"] == "test"].set_index("epoch")
        best = validation.iloc[int(validation["accuracy"].to_numpy().argmax())]  # argmax: the first maximum
        epoch = int(best["epoch"])
        rows.append({"architecture": name, "epochs": int(frame["epoch"].nunique()), "best_epoch": epoch,
                     **{metric: float(test.loc[epoch, metric]) for metric in PERFORMANCE_METRICS},
                     "seconds_to_best": float(best["seconds"]), "train_seconds": float(frame["seconds"].max())})
    return pd.DataFrame(rows, columns=["architecture", "epochs", "best_epoch", *PERFORMANCE_METRICS,
                                       "seconds_to_best", "train_seconds"])
