"""Correlation of a metric across augmentations: thesis Figures 5.11-5.25 (maps) and Tables 5.1/5.2 (pairs).

For a metric ``me`` and augmentations ``a, b``, the thesis correlates the seed-averaged metric sets
``aug_method_metrics_set[me, a]`` and ``[me, b]`` over the test images (Section 5.1, "Correlation analysis").
A high ``r`` means the two augmentations move the CAMs away from the baseline's on the *same* images.

Beyond the thesis, :func:`cluster_augmentations` turns each map into a dendrogram (the "clusters of
augmentation behaviour" that Section 5.2.6 reads off Tables 5.1/5.2 by eye).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from auglens.analysis.columns import metric_columns_of

__all__ = ["ClusterResult", "cluster_augmentations", "correlation_map", "correlation_maps",
           "extreme_pairs", "metric_matrix", "pair_frequencies"]


def metric_matrix(aug_metrics: pd.DataFrame, metric: str, order: Sequence[str] | None = None) -> pd.DataFrame:
    """One metric as an ``(images, augmentations)`` matrix of seed-averaged values (NaN where undefined).

    Args:
        aug_metrics: ``aug_metrics.parquet`` (columns ``augmentation``, ``image`` and the metrics).
        metric: the metric column.
        order: augmentation order of the columns (default: order of appearance).
    """
    if metric not in aug_metrics:
        raise KeyError(f"no metric column {metric!r}; the metric columns are {metric_columns_of(aug_metrics)}")
    order = list(pd.unique(aug_metrics["augmentation"])) if order is None else list(order)
    wide = aug_metrics.pivot(index="image", columns="augmentation", values=metric)
    return wide.reindex(columns=order)


def correlation_map(aug_metrics: pd.DataFrame, metric: str, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Pearson correlation between every pair of augmentations of one metric over the test images.

    Thesis Figures 5.11, 5.13, 5.15, 5.17, 5.19, 5.21, 5.23, 5.25. NaN-aware: each pair uses the images
    where both values are defined (pairwise complete observations, as ``pandas.DataFrame.corr``); a pair
    with fewer than two such images, or a constant column, gives NaN.

    Returns:
        Square ``(A, A)`` frame indexed and columned by augmentation, 1 on the diagonal (NaN for a column
        with fewer than two defined values or no variance).
    """
    return metric_matrix(aug_metrics, metric, order).corr(method="pearson", min_periods=2)


def correlation_maps(aug_metrics: pd.DataFrame, metrics: Sequence[str] | None = None,
                     order: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """:func:`correlation_map` for every metric column (default: all of them), keyed by metric."""
    metrics = metric_columns_of(aug_metrics) if metrics is None else list(metrics)
    return {metric: correlation_map(aug_metrics, metric, order) for metric in metrics}


def _pairs(corr: pd.DataFrame) -> pd.DataFrame:
    """Upper-triangle (unordered, diagonal excluded) pairs of a correlation map with defined ``r``."""
    names = list(corr.columns)
    i, j = np.triu_indices(len(names), k=1)  # row-major: (0, 1), (0, 2), ..., (1, 2), ...
    pairs = pd.DataFrame({"aug_a": [names[a] for a in i], "aug_b": [names[b] for b in j],
                          "r": corr.to_numpy(dtype=float)[i, j]})
    return pairs.dropna(subset=["r"]).reset_index(drop=True)


def extreme_pairs(corr: pd.DataFrame, k: int = 4, strongest: bool = True,
                  rank_by: Literal["signed", "absolute"] = "signed") -> pd.DataFrame:
    """The ``k`` most (``strongest``) or least correlated unordered pairs of one correlation map.

    ``rank_by = "signed"`` (the thesis's tables) ranks by r itself, so the "least correlated" pairs are
    those with the lowest r — strongly anti-correlated pairs first; ``"absolute"`` ranks by |r|, so the
    least correlated are those closest to 0 and the most correlated include strong negative correlations.

    Pairs with NaN ``r`` are ignored. ``k`` is capped at half the number of defined pairs, so that the
    strongest and weakest sets never share a pair (with 3 augmentations, 3 pairs: ``k = 1``; with fewer than
    2 pairs nothing is extreme and the result is empty). Ties at the cut are broken by the order of the
    map's columns (stable sort), so the result is deterministic.

    Returns:
        Columns ``aug_a``, ``aug_b``, ``r``; sorted by ``r`` (descending for strongest).
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if rank_by not in ("signed", "absolute"):
        raise ValueError(f"rank_by must be 'signed' or 'absolute', got {rank_by!r}")
    pairs = _pairs(corr)
    k = min(k, len(pairs) // 2)
    key = pairs["r"].abs() if rank_by == "absolute" else pairs["r"]
    order = key.sort_values(ascending=not strongest, kind="stable").index
    return pairs.loc[order[:k]].reset_index(drop=True)


def pair_frequencies(maps: Mapping[str, pd.DataFrame], k: int = 4, strongest: bool = True,
                     rank_by: Literal["signed", "absolute"] = "signed") -> pd.DataFrame:
    """How often each augmentation pair is among the ``k`` most / least correlated, over all metrics.

    Thesis Table 5.1 (``strongest=True``) and Table 5.2 (``strongest=False``), with ``k = 4``: for each
    metric's correlation map take :func:`extreme_pairs` and count each unordered pair's appearances.

    Args:
        maps: ``{metric: correlation map}`` as returned by :func:`correlation_maps`.
        k: pairs taken per map (capped per map as in :func:`extreme_pairs`).
        strongest: most (True) or least (False) correlated.
        rank_by: ``"signed"`` r (the thesis) or ``"absolute"`` |r|, as in :func:`extreme_pairs`.

    Returns:
        Columns ``pair`` ("a – b"), ``aug_a``, ``aug_b``, ``count``, ``metrics`` (comma-separated metrics
        the pair was extreme in); sorted by count (descending), then pair order. Empty when no map has
        at least two defined pairs (e.g. a single augmentation).
    """
    counts: dict[frozenset[str], list[str]] = {}
    first_seen: dict[frozenset[str], tuple[str, str]] = {}
    for metric, corr in maps.items():
        for a, b in extreme_pairs(corr, k, strongest, rank_by)[["aug_a", "aug_b"]].itertuples(index=False):
            key = frozenset((a, b))
            first_seen.setdefault(key, (a, b))
            counts.setdefault(key, []).append(metric)
    rows = [{"pair": f"{a} – {b}", "aug_a": a, "aug_b": b, "count": len(counts[key]),
             "metrics": ", ".join(counts[key])} for key, (a, b) in first_seen.items()]
    table = pd.DataFrame(rows, columns=["pair", "aug_a", "aug_b", "count", "metrics"])
    return table.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class ClusterResult:
    """Average-linkage clustering of augmentations for one metric.

    Attributes:
        labels: augmentation names, in the correlation map's order (the leaves of ``linkage``).
        linkage: scipy linkage matrix ``(A - 1, 4)`` on the distance ``1 - r``.
        distance: the square distance matrix that was clustered.
        leaves: ``labels`` in dendrogram leaf order (similar augmentations adjacent).
    """

    labels: list[str]
    linkage: np.ndarray
    distance: pd.DataFrame
    leaves: list[str]


def cluster_augmentations(corr: pd.DataFrame) -> ClusterResult:
    """Hierarchical clustering of augmentations from one correlation map (beyond the thesis).

    Distance ``d(a, b) = 1 - r(a, b)`` in ``[0, 2]``, average linkage (UPGMA, ``scipy.cluster.hierarchy``).
    A NaN correlation (too few common images, constant column) is treated as ``r = 0``, i.e. "unrelated",
    rather than dropping the augmentation from the tree.

    Raises:
        ValueError: fewer than two augmentations (nothing to cluster).
    """
    labels = [str(c) for c in corr.columns]
    if len(labels) < 2:
        raise ValueError(f"clustering needs at least 2 augmentations, got {labels}")
    r = corr.to_numpy(dtype=float, copy=True)
    r = np.where(np.isnan(r), 0.0, r)
    distance = np.clip(1.0 - (r + r.T) / 2.0, 0.0, 2.0)  # symmetrise away float noise; clip r > 1 rounding
    np.fill_diagonal(distance, 0.0)
    linkage = hierarchy.linkage(squareform(distance, checks=False), method="average")
    leaves = [labels[i] for i in hierarchy.leaves_list(linkage)]
    return ClusterResult(labels, linkage, pd.DataFrame(distance, index=labels, columns=labels), leaves)
