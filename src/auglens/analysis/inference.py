"""Uncertainty and significance for the metric distributions (beyond the thesis).

The thesis compares augmentations by eye on boxplots (Section 5.2.6: "their individual results are
similar across augmentations"). Two standard, assumption-light tools make that comparison quantitative:

* :func:`bootstrap_median_ci` — percentile-bootstrap confidence interval of an augmentation's median
  metric value over the test images (how precisely the boxplot's middle line is known).
* :func:`paired_permutation_test` — are two augmentations' metric values different? Both were measured on
  the same test images, so the test is *paired*: under the null hypothesis the two values of an image are
  exchangeable, and the null distribution is built by swapping them at random, image by image.

Seed semantics (so results are reproducible and do not depend on what else is computed): every call draws
from a fresh ``numpy.random.default_rng(seed)``; table functions call the single-sample function once per
cell with the same ``seed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from auglens.analysis.columns import higher_is_better, metric_columns_of
from auglens.analysis.correlation import metric_matrix

__all__ = ["PermutationResult", "bootstrap_median_ci", "holm_adjust", "median_ci_table", "metric_summary",
           "paired_permutation_test", "permutation_test_table"]


# ------------------------------------------------------------------------------------------ bootstrap

def _resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` resampling indices: one draw ``default_rng(seed).integers(0, n, size=(n_boot, n))``."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentile_ci(x: np.ndarray, indices: np.ndarray, level: float) -> tuple[float, float, float]:
    """Median of ``x`` and the percentile interval of the medians of ``x[indices]`` (one resample per row)."""
    # Speed trick, exact: with xs = sorted(x) and rank[i] = position of x[i] in xs, x[idx] = xs[rank[idx]]
    # and xs is non-decreasing, so each resample's middle order statistics are xs at the middle order
    # statistics of rank[idx]. Partitioning small integers is ~2x faster than partitioning the floats.
    n = x.size
    order = np.argsort(x, kind="stable")
    xs = x[order]
    rank = np.empty(n, dtype=np.int16 if n <= np.iinfo(np.int16).max else np.int64)
    rank[order] = np.arange(n)
    lo, hi = (n - 1) // 2, n // 2
    middle = np.partition(rank[indices], [lo, hi], axis=1)
    medians = (xs[middle[:, lo]] + xs[middle[:, hi]]) / 2.0  # == np.median's mean of the two middle values
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(medians, [alpha, 1.0 - alpha])
    return (float(np.median(x)), float(low), float(high))


def _check_bootstrap(n_boot: int, level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def bootstrap_median_ci(values: np.ndarray | Sequence[float], n_boot: int = 2000, level: float = 0.95,
                        seed: int = 0) -> tuple[float, float, float]:
    """Median and percentile-bootstrap confidence interval of the median: ``(N,) -> (median, low, high)``.

    NaNs are dropped first (``n`` values remain). Resampling: one draw
    ``default_rng(seed).integers(0, n, size=(n_boot, n))`` (row ``b`` is resample ``b``), the median of each
    row, then the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (linear interpolation, numpy's
    default) of those medians. This is exactly ``scipy.stats.bootstrap((x,), np.median, n_resamples=n_boot,
    method="percentile", confidence_level=level, rng=default_rng(seed))``. The percentile interval is used
    rather than BCa because the median's bootstrap distribution is discrete (it only takes sample values),
    which makes BCa's acceleration estimate unstable.

    Returns:
        ``(median, low, high)``; all NaN when no value is defined.
    """
    _check_bootstrap(n_boot, level)
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    return _percentile_ci(x, _resample_indices(x.size, n_boot, seed), level)


def _values_per_cell(aug_metrics: pd.DataFrame, metrics: Sequence[str] | None):
    """(metric, augmentation, all values, defined values) for every metric x augmentation cell."""
    for metric in metric_columns_of(aug_metrics) if metrics is None else list(metrics):
        wide = metric_matrix(aug_metrics, metric)
        for augmentation in wide.columns:
            x = wide[augmentation].to_numpy(dtype=float)
            yield metric, augmentation, x, x[~np.isnan(x)]


def median_ci_table(aug_metrics: pd.DataFrame, metrics: Sequence[str] | None = None, n_boot: int = 2000,
                    level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """:func:`bootstrap_median_ci` of every augmentation x metric (seed-averaged values over test images).

    Every cell equals a separate ``bootstrap_median_ci(values, n_boot, level, seed)`` call; cells with the
    same number of defined values share their (identical) resampling indices, drawn once.

    Returns:
        Columns ``metric``, ``augmentation``, ``n`` (defined values), ``median``, ``ci_low``, ``ci_high``,
        ``level``, ``n_boot``.
    """
    _check_bootstrap(n_boot, level)
    indices: dict[int, np.ndarray] = {}
    rows = []
    for metric, augmentation, _, x in _values_per_cell(aug_metrics, metrics):
        if x.size:
            if x.size not in indices:
                indices[x.size] = _resample_indices(x.size, n_boot, seed)
            median, low, high = _percentile_ci(x, indices[x.size], level)
        else:
            median = low = high = np.nan
        rows.append({"metric": metric, "augmentation": augmentation, "n": int(x.size),
                     "median": median, "ci_low": low, "ci_high": high, "level": level, "n_boot": n_boot})
    columns = ["metric", "augmentation", "n", "median", "ci_low", "ci_high", "level", "n_boot"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------ permutation

@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`paired_permutation_test`.

    Attributes:
        statistic: observed statistic (``mean(x) - mean(y)`` or ``median(x) - median(y)``).
        p_value: two-sided p-value.
        n: number of complete pairs used.
        n_perm: number of null statistics the p-value is based on (``2**n`` when ``exact``).
        exact: whether every swap pattern was enumerated.
    """

    statistic: float
    p_value: float
    n: int
    n_perm: int
    exact: bool


_CHUNK = 2048  # permutations per block: bounds the float64 temporaries to _CHUNK x N x 8 bytes
_REL_TOL = 1e-9  # |T*| >= |T| up to summation-order noise


def _random_swaps(n: int, n_perm: int, seed: int) -> np.ndarray:
    """``(n_perm, n)`` bool: pair ``i`` of permutation ``b`` is swapped. One draw from ``default_rng(seed)``."""
    return np.random.default_rng(seed).integers(0, 2, size=(n_perm, n), dtype=np.int8).astype(bool)


def _all_swaps(n: int) -> np.ndarray:
    """All ``2**n`` swap patterns ``(2**n, n)``, the identity (no swap) first."""
    return np.array(list(itertools.product([False, True], repeat=n)), dtype=bool).reshape(-1, n)


def _mean_null(x: np.ndarray, y: np.ndarray, swaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed ``(m,)`` and null ``(P, m)`` mean differences of ``m`` paired columns ``x, y: (n, m)``.

    ``mean(x') - mean(y') = mean(s_i d_i)`` with ``s_i = -1`` where swapped: a sign flip of the paired
    differences, so all permutations of all columns are one matrix product. NaN pairs get ``d_i = 0`` and
    are left out of the divisor, so each column's statistic is over its complete pairs only.
    """
    valid = ~(np.isnan(x) | np.isnan(y))
    d = np.where(valid, x - y, 0.0)
    n_valid = valid.sum(axis=0)
    null = np.empty((swaps.shape[0], d.shape[1]))
    for start in range(0, swaps.shape[0], _CHUNK):
        signs = 1.0 - 2.0 * swaps[start:start + _CHUNK]
        null[start:start + _CHUNK] = signs @ d
    return d.sum(axis=0) / n_valid, null / n_valid


def _median_null(x: np.ndarray, y: np.ndarray, swaps: np.ndarray) -> tuple[float, np.ndarray]:
    """Observed and null ``(P,)`` median differences of one pair of complete columns ``x, y: (n,)``."""
    observed = float(np.median(x) - np.median(y))
    null = np.empty(swaps.shape[0])
    for start in range(0, swaps.shape[0], _CHUNK):
        block = swaps[start:start + _CHUNK]
        null[start:start + _CHUNK] = (np.median(np.where(block, y, x), axis=1)
                                      - np.median(np.where(block, x, y), axis=1))
    return observed, null


def _p_value(observed: np.ndarray, null: np.ndarray, exact: bool) -> np.ndarray:
    count = (np.abs(null) >= np.abs(observed) * (1.0 - _REL_TOL)).sum(axis=0)
    return count / null.shape[0] if exact else (1.0 + count) / (1.0 + null.shape[0])


def paired_permutation_test(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float], *,
                            statistic: Literal["mean", "median"] = "mean", n_perm: int = 10_000,
                            seed: int = 0) -> PermutationResult:
    """Two-sided paired permutation test of whether ``x`` and ``y`` (same images, ``(N,)`` each) differ.

    Null hypothesis: for every image ``i`` the two values ``x_i, y_i`` are exchangeable (which augmentation
    produced them does not matter). The null distribution swaps each pair independently with probability
    1/2; swapping every pair negates the statistic, so the null is symmetric and two-sided means
    ``|T*| >= |T|``.

    Statistic:
        * ``"mean"`` (default): ``mean(x) - mean(y)``, i.e. the mean paired difference; a swap flips the sign
          of that image's difference, so this is Fisher's paired sign-flip test. It is the default because it
          uses the pairing fully and all permutations are one matrix product.
        * ``"median"``: ``median(x) - median(y)``, the difference of the boxplots' middle lines; robust to the
          heavy tails of e.g. Class-KLD but less powerful.

    Pairs with a NaN on either side are dropped (``n`` complete pairs remain). If ``2**n <= n_perm`` all
    ``2**n`` swap patterns of the complete pairs are enumerated (``exact``) and ``p`` is the share of patterns
    with ``|T*| >= |T|``, the identity included. Otherwise the swaps are one draw
    ``default_rng(seed).integers(0, 2, size=(n_perm, N), dtype=np.int8)`` over *all* ``N`` positions (column
    ``i`` belongs to image ``i`` whether or not other images are NaN) and
    ``p = (1 + #{|T*| >= |T|}) / (1 + n_perm)``, which is never 0 and is a valid p-value (Phipson & Smyth
    2010). ``>=`` has a relative tolerance of 1e-9 so patterns equivalent to the observed one are not lost to
    floating-point summation order.

    Returns:
        :class:`PermutationResult`; statistic and p are NaN when there is no complete pair.
    """
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must pair up image by image; got lengths {x.size} and {y.size}")
    valid = ~(np.isnan(x) | np.isnan(y))
    n = int(valid.sum())
    if n == 0:
        return PermutationResult(np.nan, np.nan, 0, 0, False)
    exact = 2**n <= n_perm
    if exact:
        x, y = x[valid], y[valid]
        swaps = _all_swaps(n)
    else:
        swaps = _random_swaps(x.size, n_perm, seed)
    if statistic == "mean":
        observed, null = _mean_null(x[:, None], y[:, None], swaps)
        observed, null = observed[0], null[:, 0]
    else:
        keep = slice(None) if exact else valid  # the exact branch already dropped the NaN pairs
        observed, null = _median_null(x[keep], y[keep], swaps[:, keep])
    p = float(_p_value(np.asarray(observed), null, exact))
    return PermutationResult(float(observed), p, n, null.shape[0], exact)


def holm_adjust(p_values: np.ndarray | Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaNs stay NaN and don't count."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = defined.size
    if m == 0:
        return out
    order = defined[np.argsort(p[defined], kind="stable")]
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def permutation_test_table(aug_metrics: pd.DataFrame, metrics: Sequence[str] | None = None,
                           statistic: Literal["mean", "median"] = "mean", n_perm: int = 10_000,
                           seed: int = 0) -> pd.DataFrame:
    """:func:`paired_permutation_test` for every unordered pair of augmentations and every metric.

    The values are the seed-averaged ones (``aug_metrics``), paired by test image. p-values are
    Holm-adjusted within each metric (``p_holm``), controlling the family-wise error over its pairs.

    Returns:
        Columns ``metric``, ``aug_a``, ``aug_b``, ``n`` (complete pairs), ``mean_a``, ``mean_b``,
        ``median_a``, ``median_b``, ``statistic`` (a minus b), ``p_value``, ``p_holm``, ``n_perm``,
        ``exact`` and ``more_similar`` (the augmentation whose values are closer to the baseline by the
        statistic, using the metric's ``higher_is_better``; empty when the direction is unknown or the
        statistic is 0).
    """
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    metrics = metric_columns_of(aug_metrics) if metrics is None else list(metrics)
    tests = []  # (metric, a, b, x, y) for every metric and unordered pair
    for metric in metrics:
        wide = metric_matrix(aug_metrics, metric)
        for a, b in itertools.combinations(wide.columns, 2):
            tests.append((metric, a, b, wide[a].to_numpy(dtype=float), wide[b].to_numpy(dtype=float)))
    columns = ["metric", "aug_a", "aug_b", "n", "mean_a", "mean_b", "median_a", "median_b", "statistic",
               "p_value", "p_holm", "n_perm", "exact", "more_similar"]
    if not tests:
        return pd.DataFrame(columns=columns)
    x = np.stack([t[3] for t in tests], axis=1)  # (images, tests)
    y = np.stack([t[4] for t in tests], axis=1)
    complete = ~(np.isnan(x) | np.isnan(y))
    n = complete.sum(axis=0)
    results: list[PermutationResult | None] = [None] * len(tests)
    batched = [j for j in range(len(tests)) if statistic == "mean" and 2 ** int(n[j]) > n_perm]
    if batched:
        # The swaps paired_permutation_test would draw for each test (same seed, same length) are the same
        # array: draw it once and run every test in one pass over the permutations.
        observed, null = _mean_null(x[:, batched], y[:, batched], _random_swaps(len(x), n_perm, seed))
        p = _p_value(observed, null, exact=False)
        for i, j in enumerate(batched):
            results[j] = PermutationResult(float(observed[i]), float(p[i]), int(n[j]), n_perm, False)
    rows = []
    for j, (metric, a, b, _, _) in enumerate(tests):
        result = results[j] or paired_permutation_test(x[:, j], y[:, j], statistic=statistic, n_perm=n_perm,
                                                       seed=seed)
        xa, yb = x[complete[:, j], j], y[complete[:, j], j]
        direction = higher_is_better(metric)
        similar = ""
        if direction is not None and np.isfinite(result.statistic) and result.statistic != 0:
            similar = a if (result.statistic > 0) == direction else b
        rows.append({"metric": metric, "aug_a": a, "aug_b": b, "n": result.n,
                     "mean_a": _nan_stat(np.mean, xa), "mean_b": _nan_stat(np.mean, yb),
                     "median_a": _nan_stat(np.median, xa), "median_b": _nan_stat(np.median, yb),
                     "statistic": result.statistic, "p_value": result.p_value, "p_holm": np.nan,
                     "n_perm": result.n_perm, "exact": result.exact, "more_similar": similar})
    table = pd.DataFrame(rows, columns=columns)
    for metric, index in table.groupby("metric", sort=False).groups.items():
        table.loc[index, "p_holm"] = holm_adjust(table.loc[index, "p_value"].to_numpy(dtype=float))
    return table


def _nan_stat(fn, values: np.ndarray) -> float:
    return float(fn(values)) if values.size else np.nan


# ------------------------------------------------------------------------------------------ summary

def metric_summary(aug_metrics: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Distribution summary of each metric per augmentation: what the boxplots (Figs 5.10 ff.) draw.

    Returns:
        Columns ``metric``, ``augmentation``, ``n`` (defined), ``n_nan``, ``mean``, ``std``, ``q25``,
        ``median``, ``q75``, ``higher_is_better``; over the seed-averaged values of the test images.
    """
    rows = []
    for metric, augmentation, x, v in _values_per_cell(aug_metrics, metrics):
        q25, median, q75 = np.quantile(v, [0.25, 0.5, 0.75]) if v.size else (np.nan,) * 3
        rows.append({"metric": metric, "augmentation": augmentation, "n": int(v.size),
                     "n_nan": int(x.size - v.size), "mean": _nan_stat(np.mean, v),
                     "std": float(np.std(v, ddof=1)) if v.size > 1 else np.nan,
                     "q25": q25, "median": median, "q75": q75, "higher_is_better": higher_is_better(metric)})
    columns = ["metric", "augmentation", "n", "n_nan", "mean", "std", "q25", "median", "q75", "higher_is_better"]
    return pd.DataFrame(rows, columns=columns)
