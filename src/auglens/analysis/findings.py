"""Which augmentations change the CAMs most and least: a ranking per metric from the medians and their
confidence intervals (:func:`auglens.analysis.median_ci_table`), and over all metrics by mean rank.

"Change" is distance from the baseline in each metric's own direction: for a similarity (Pearson, overlap;
higher = closer to the baseline) the lowest median changes the CAMs most; for a difference (MAD, MSD,
Class-KLD; lower = closer) the highest does. Metrics without a declared direction are left out.

With retraining controls (``[[controls]]``: models without augmentation that differ from the baseline in
one setting only), each metric has a *noise floor*, :func:`control_floor`: the band from the lowest to the
highest end of the controls' median intervals, i.e. how far from the baseline a median lands when the
network is merely retrained. :func:`floor_verdict` says whether an augmentation's change is beyond that
floor, within it, or unclear; the controls themselves are not ranked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from auglens.analysis.columns import higher_is_better

__all__ = ["FLOOR_VERDICTS", "change_ranking", "control_floor", "floor_verdict", "overall_change_ranking"]

#: :func:`floor_verdict`'s answers.
FLOOR_VERDICTS: tuple[str, ...] = ("beyond", "within", "unclear")


def control_floor(ci_table: pd.DataFrame, controls: Sequence[str]) -> pd.DataFrame:
    """Per metric, the noise floor of retraining: the hull of the controls' median confidence intervals.

    Args:
        ci_table: :func:`~auglens.analysis.median_ci_table`'s output (controls' rows among the augmentations').
        controls: the names of the controls' rows (``control:init_seed=1``, ...).

    Returns:
        Columns ``metric``, ``floor_low`` (the lowest ``ci_low`` of the controls), ``floor_high`` (the highest
        ``ci_high``), ``n_controls`` (controls with a defined median); one row per metric of ``ci_table``, the
        floor NaN where no control has a defined median. The band covers both how far apart the controls'
        medians are and how precisely each is known.
    """
    rows = []
    wanted = set(controls)
    for metric, cells in ci_table.groupby("metric", sort=False):
        cells = cells[cells["augmentation"].astype(str).isin(wanted)]
        cells = cells[np.isfinite(cells["median"].to_numpy(dtype=float))]
        low = float(cells["ci_low"].min()) if len(cells) else np.nan
        high = float(cells["ci_high"].max()) if len(cells) else np.nan
        rows.append({"metric": metric, "floor_low": low, "floor_high": high, "n_controls": len(cells)})
    return pd.DataFrame(rows, columns=["metric", "floor_low", "floor_high", "n_controls"])


def floor_verdict(ci_low: float, ci_high: float, floor_low: float, floor_high: float,
                  higher_is_better: bool | None) -> str:
    """Whether an augmentation's median interval ``[ci_low, ci_high]`` lies beyond the controls' floor
    ``[floor_low, floor_high]`` (:func:`control_floor`), in the metric's direction of change.

    Only the floor's far end counts, the end farthest from the baseline: ``floor_low`` for a similarity
    (``higher_is_better``), ``floor_high`` for a difference. Then:

    - ``"beyond"``: the whole interval is strictly farther from the baseline than that end (similarity:
      ``ci_high < floor_low``; difference: ``ci_low > floor_high``): the augmentation changes the CAMs more
      than retraining does;
    - ``"within"``: no part of the interval is farther (similarity: ``ci_low >= floor_low``; difference:
      ``ci_high <= floor_high``): the change is no larger than retraining's, which includes an augmentation
      that changes the CAMs less than every control;
    - ``"unclear"``: the interval straddles that end.

    ``""`` when the verdict is undefined: no direction, or a NaN interval or floor.
    """
    values = np.array([ci_low, ci_high, floor_low, floor_high], dtype=float)
    if higher_is_better is None or not np.isfinite(values).all():
        return ""
    if higher_is_better:
        return "beyond" if ci_high < floor_low else "within" if ci_low >= floor_low else "unclear"
    return "beyond" if ci_low > floor_high else "within" if ci_high <= floor_high else "unclear"


def change_ranking(ci_table: pd.DataFrame, controls: Sequence[str] = ()) -> pd.DataFrame:
    """Per metric, augmentations from most to least changed (rank 1 = most changed).

    Args:
        ci_table: :func:`~auglens.analysis.median_ci_table`'s output.
        controls: names of retraining controls among ``ci_table``'s rows: they are not ranked, they give each
            metric its floor (:func:`control_floor`).

    Returns:
        Columns ``metric``, ``rank``, ``augmentation``, ``median``, ``ci_low``, ``ci_high``,
        ``overlaps_next`` (whether the interval overlaps the next-ranked augmentation's: then their order is
        not clear), and with ``controls`` also ``floor_low``, ``floor_high`` and ``floor``
        (:func:`floor_verdict`). Augmentations without a defined median are left out.
    """
    rows = []
    floors = control_floor(ci_table, controls).set_index("metric") if len(controls) else None
    is_control = ci_table["augmentation"].astype(str).isin(set(controls))
    for metric, cells in ci_table[~is_control].groupby("metric", sort=False):
        direction = higher_is_better(str(metric))
        cells = cells[np.isfinite(cells["median"].to_numpy(dtype=float))]
        if direction is None or cells.empty:
            continue
        ordered = cells.sort_values("median", ascending=direction, kind="stable").reset_index(drop=True)
        for i, cell in ordered.iterrows():
            following = ordered.iloc[i + 1] if i + 1 < len(ordered) else None
            overlaps = (following is not None and cell["ci_low"] <= following["ci_high"]
                        and following["ci_low"] <= cell["ci_high"])
            row = {"metric": metric, "rank": i + 1, "augmentation": cell["augmentation"], "median": cell["median"],
                   "ci_low": cell["ci_low"], "ci_high": cell["ci_high"], "overlaps_next": bool(overlaps)}
            if floors is not None:
                low, high = (floors.loc[metric, "floor_low"], floors.loc[metric, "floor_high"]) \
                    if metric in floors.index else (np.nan, np.nan)
                row.update(floor_low=low, floor_high=high,
                           floor=floor_verdict(cell["ci_low"], cell["ci_high"], low, high, direction))
            rows.append(row)
    columns = ["metric", "rank", "augmentation", "median", "ci_low", "ci_high", "overlaps_next"]
    if floors is not None:
        columns += ["floor_low", "floor_high", "floor"]
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
