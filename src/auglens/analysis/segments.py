"""Metric values segmented by which model classified the image correctly: thesis Appendix C (Figs C.1-C.7).

CAMs are computed for each model's *predicted* class, so a pair of CAMs for two different predicted
classes may differ simply because the classes differ. The thesis checks this by splitting the metric
values by correctness of the baseline and the augmented model. Segmentation is per model (per seed):
it uses ``cam_metrics`` rows, not the seed averages, because correctness belongs to one model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SEGMENTS", "correctness_segments", "segment_counts"]

#: Segment names, in display order.
SEGMENTS: tuple[str, ...] = ("both_correct", "both_wrong", "only_baseline_correct", "only_augmented_correct")


def correctness_segments(cam_metrics: pd.DataFrame) -> pd.Series:
    """The correctness segment of each row, as an ordered categorical aligned with ``cam_metrics``.

    Uses the row's ``label``, ``baseline_pred`` (the baseline model the row was compared with) and
    ``model_pred`` (the augmented model).
    """
    base_ok = (cam_metrics["baseline_pred"] == cam_metrics["label"]).to_numpy()
    model_ok = (cam_metrics["model_pred"] == cam_metrics["label"]).to_numpy()
    codes = np.select([base_ok & model_ok, ~base_ok & ~model_ok, base_ok & ~model_ok], [0, 1, 2], default=3)
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(SEGMENTS), ordered=True),
                     index=cam_metrics.index, name="segment")


def segment_counts(cam_metrics: pd.DataFrame, by_seed: bool = False) -> pd.DataFrame:
    """Rows per augmentation (and seed) and segment, plus ``total``; all segments listed even when empty.

    Pooled over seeds unless ``by_seed``: each (augmentation, seed, image) row counts once, so the total
    of an augmentation is ``seeds x images``.
    """
    keys = ["augmentation", "seed"] if by_seed else ["augmentation"]
    segments = correctness_segments(cam_metrics)
    table = pd.crosstab([cam_metrics[k] for k in keys], segments, dropna=False)
    table = table.reindex(columns=list(SEGMENTS), fill_value=0)
    order = list(dict.fromkeys(cam_metrics["augmentation"]))
    table = table.reindex(order, level=0) if by_seed else table.reindex(order)
    table["total"] = table.sum(axis=1)
    table.columns.name = None
    return table.reset_index()
