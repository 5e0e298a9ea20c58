"""The test images at the extremes of each metric: thesis Appendix A (Figures A.1-A.16).

For every metric the thesis shows the CAM grid of the test image whose seed-averaged metric values have
the highest mean across augmentations, and of the one with the highest standard deviation across
augmentations (the image the augmentations disagree on most).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from auglens.analysis.columns import metric_columns_of

__all__ = ["extreme_images", "image_statistics"]

_STATISTICS = ("mean", "std")


def image_statistics(aug_metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, sample std (``ddof=1``) and count of one metric across augmentations, per test image.

    NaN values (undefined metric) are skipped; std is NaN for an image with fewer than two defined values.
    """
    grouped = aug_metrics.groupby("image")[metric]
    return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count(),
                         "label": aug_metrics.groupby("image")["label"].first()})


def extreme_images(aug_metrics: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Per metric, the image with the highest mean and the image with the highest std across augmentations.

    Ties go to the lowest image index. A statistic that is undefined for every image (all values NaN, or
    std with a single augmentation) gives no row.

    Returns:
        Columns ``metric``, ``statistic`` ("mean" or "std"), ``image``, ``label``, ``value`` (the
        statistic), ``mean``, ``std`` (both statistics of that image) and ``n_augmentations`` (defined
        values the statistics are over); two rows per metric at most, in metric order.
    """
    metrics = metric_columns_of(aug_metrics) if metrics is None else list(metrics)
    rows = []
    for metric in metrics:
        stats = image_statistics(aug_metrics, metric).sort_index()
        for statistic in _STATISTICS:
            values = stats[statistic]
            if values.notna().any():
                image = values.idxmax()  # first occurrence of the max: the lowest image index on ties
                row = stats.loc[image]
                rows.append({"metric": metric, "statistic": statistic, "image": int(image),
                             "label": int(row["label"]), "value": float(row[statistic]),
                             "mean": float(row["mean"]), "std": float(row["std"]), "n_augmentations": int(row["n"])})
    columns = ["metric", "statistic", "image", "label", "value", "mean", "std", "n_augmentations"]
    return pd.DataFrame(rows, columns=columns).astype({"value": np.float64})
