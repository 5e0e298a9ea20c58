"""Which augmentations change the CAMs most and least: a ranking per metric from the medians and their
confidence intervals (:func:`auglens.analysis.median_ci_table`), and over all metrics by mean rank.

"Change" is distance from the baseline in each metric's own direction: for a similarity (Pearson, overlap;
higher = closer to the baseline) the lowest median changes the CAMs most; for a difference (MAD, MSD,
Class-KLD; lower = closer) the highest does. Metrics without a declared direction are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auglens.analysis.columns import higher_is_better

__all__ = ["change_ranking", "overall_change_ranking"]


def change_ranking(ci_table: pd.DataFrame) -> pd.DataFrame:
    """Per metric, augmentations from most to least changed (rank 1 = most changed).

    Args:
        ci_table: :func:`~auglens.analysis.median_ci_table`'s output.

    Returns:
        Columns ``metric``, ``rank``, ``augmentation``, ``median``, ``ci_low``, ``ci_high``,
        ``overlaps_next`` (whether the interval overlaps the next-ranked augmentation's: then their order is
        not clear). Augmentations without a defined median are left out.
    """
    rows = []
    for metric, cells in ci_table.groupby("metric", sort=False):
        direction = higher_is_better(str(metric))
        cells = cells[np.isfinite(cells["median"].to_numpy(dtype=float))]
        if direction is None or cells.empty:
            continue
        ordered = cells.sort_values("median", ascending=direction, kind="stable").reset_index(drop=True)
        for i, cell in ordered.iterrows():
            following = ordered.iloc[i + 1] if i + 1 < len(ordered) else None
            overlaps = (following is not None and cell["ci_low"] <= following["ci_high"]
                        and following["ci_low"] <= cell["ci_high"])
            rows.append({"metric": metric, "rank": i + 1, "augmentation": cell["augmentation"],
                         "median": cell["median"], "ci_low": cell["ci_low"], "ci_high": cell["ci_high"],
                         "overlaps_next": bool(overlaps)})
    columns = ["metric", "rank", "augmentation", "median", "ci_low", "ci_high", "overlaps_next"]
    return pd.DataFrame(rows, columns=columns)


def overall_change_ranking(ranking: pd.DataFrame) -> pd.DataFrame:
    """Mean rank of each augmentation over the metrics (1 = changed the CAMs most in every metric).

    Returns columns ``augmentation``, ``mean_rank``, ``n_metrics``, sorted by ``mean_rank``.
    """
    if ranking.empty:
        return pd.DataFrame(columns=["augmentation", "mean_rank", "n_metrics"])
    grouped = ranking.groupby("augmentation", sort=False)["rank"]
    out = pd.DataFrame({"mean_rank": grouped.mean(), "n_metrics": grouped.size()}).reset_index()
    return out.sort_values(["mean_rank", "augmentation"], kind="stable").reset_index(drop=True)
