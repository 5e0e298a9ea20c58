"""auglens.analysis.inference: bootstrap CIs of medians, paired permutation tests, Holm adjustment."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from auglens.analysis import (
    bootstrap_median_ci,
    holm_adjust,
    median_ci_table,
    metric_summary,
    paired_permutation_test,
    permutation_test_table,
)

# ------------------------------------------------------------------------------------------ bootstrap


@pytest.mark.parametrize("n", [2, 7, 50, 51, 400])
def test_bootstrap_equals_scipy_percentile_bootstrap(n):
    x = np.random.default_rng(n).normal(size=n).round(2)  # rounding: ties, as in real metric values
    median, low, high = bootstrap_median_ci(x, n_boot=999, level=0.9, seed=5)
    ref = scipy.stats.bootstrap((x,), np.median, n_resamples=999, confidence_level=0.9, method="percentile",
                                rng=np.random.default_rng(5), vectorized=True)
    assert median == np.median(x)
    assert low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert high == pytest.approx(ref.confidence_interval.high, abs=1e-12)


def test_bootstrap_equals_a_plain_numpy_loop():
    x = np.random.default_rng(3).exponential(size=31)
    rng = np.random.default_rng(11)
    indices = rng.integers(0, x.size, size=(500, x.size))
    medians = [np.median(x[row]) for row in indices]
    expected = np.percentile(medians, [2.5, 97.5])
    assert bootstrap_median_ci(x, n_boot=500, seed=11)[1:] == pytest.approx(tuple(expected))


def test_bootstrap_properties():
    rng = np.random.default_rng(0)
    widths = []
    for n in (30, 300, 3000):
        x = rng.normal(size=n)
        median, low, high = bootstrap_median_ci(x, n_boot=800, seed=1)
        assert low <= median <= high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]  # narrows with n
    x = np.array([1.0, np.nan, 2.0, 3.0, np.nan])
    assert bootstrap_median_ci(x, seed=2) == bootstrap_median_ci(x[~np.isnan(x)], seed=2)
    assert np.isnan(bootstrap_median_ci([np.nan, np.nan])).all()
    assert bootstrap_median_ci(x, seed=4) == bootstrap_median_ci(x, seed=4)  # seeded
    with pytest.raises(ValueError, match="level"):
        bootstrap_median_ci(x, level=95)


def _aug_metrics(seed=0, n=60):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    frames = []
    for i, augmentation in enumerate(("affine", "cutmix", "blur")):
        mad = base + rng.normal(scale=0.5, size=n) + 0.8 * (augmentation == "blur")
        pearson = rng.normal(size=n)
        if augmentation == "cutmix":
            pearson[:5] = np.nan
        frames.append(pd.DataFrame({"augmentation": augmentation, "image": np.arange(n), "label": 0, "mad": mad,
                                    "pearson": pearson, "n_seeds": 2, "model_correct_share": 1.0}))
    return pd.concat(frames, ignore_index=True)


def test_median_ci_table_equals_single_calls():
    am = _aug_metrics()
    table = median_ci_table(am, n_boot=300, seed=9)
    assert len(table) == 6 and set(table["metric"]) == {"mad", "pearson"}
    for row in table.itertuples():
        values = am.loc[am["augmentation"] == row.augmentation, row.metric].to_numpy()
        assert (row.median, row.ci_low, row.ci_high) == bootstrap_median_ci(values, 300, 0.95, 9)
        assert row.n == np.isfinite(values).sum()


# ------------------------------------------------------------------------------------------ permutation

def _brute_force_p(x, y, statistic):
    """Exact two-sided p by enumerating every swap pattern, written independently of the library."""
    def stat(a, b):
        return np.mean(a) - np.mean(b) if statistic == "mean" else np.median(a) - np.median(b)

    observed = abs(stat(x, y))
    hits = total = 0
    for pattern in itertools.product([0, 1], repeat=len(x)):
        a = [yi if s else xi for xi, yi, s in zip(x, y, pattern)]
        b = [xi if s else yi for xi, yi, s in zip(x, y, pattern)]
        hits += abs(stat(a, b)) >= observed - 1e-12
        total += 1
    return hits / total


@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_permutation_matches_brute_force_enumeration(statistic):
    rng = np.random.default_rng(4)
    x = rng.normal(size=9)
    y = x + rng.normal(loc=0.4, size=9)
    result = paired_permutation_test(x, y, statistic=statistic, n_perm=10_000)
    assert result.exact and result.n_perm == 2**9 and result.n == 9
    assert result.p_value == pytest.approx(_brute_force_p(x, y, statistic), abs=1e-12)
    expected = np.mean(x) - np.mean(y) if statistic == "mean" else np.median(x) - np.median(y)
    assert result.statistic == pytest.approx(expected)


def test_permutation_monte_carlo_approximates_exact():
    rng = np.random.default_rng(8)
    x = rng.normal(size=13)
    y = x + rng.normal(loc=0.3, size=13)
    exact = _brute_force_p(x, y, "mean")
    sampled = paired_permutation_test(x, y, n_perm=4000, seed=1)  # 2**13 > 4000: random swaps
    assert not sampled.exact and sampled.n_perm == 4000
    assert sampled.p_value == pytest.approx(exact, abs=0.025)


def test_permutation_identical_distributions_large_p_shifted_small_p():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    same = paired_permutation_test(x, x + rng.normal(scale=0.2, size=200), n_perm=2000)
    identical = paired_permutation_test(x, x.copy(), n_perm=2000)
    shifted = paired_permutation_test(x, x + 0.3 + rng.normal(scale=0.2, size=200), n_perm=2000)
    shifted_median = paired_permutation_test(x, x + 0.3 + rng.normal(scale=0.2, size=200), statistic="median",
                                             n_perm=2000)
    assert same.p_value > 0.1
    assert identical.p_value == 1.0
    assert shifted.p_value == pytest.approx(1 / 2001)  # the smallest possible Monte Carlo p
    assert shifted_median.p_value < 0.01
    assert shifted.statistic < 0


def test_permutation_nan_pairs_dropped_and_seeded():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=40), rng.normal(size=40)
    x[[0, 5]] = np.nan
    y[7] = np.nan
    result = paired_permutation_test(x, y, n_perm=999, seed=3)
    keep = ~(np.isnan(x) | np.isnan(y))
    assert result.n == 37
    assert result.statistic == pytest.approx(np.mean(x[keep]) - np.mean(y[keep]))
    assert result == paired_permutation_test(x, y, n_perm=999, seed=3)
    assert result != paired_permutation_test(x, y, n_perm=999, seed=4)
    empty = paired_permutation_test([np.nan], [1.0])
    assert empty.n == 0 and np.isnan(empty.p_value)
    with pytest.raises(ValueError, match="pair up"):
        paired_permutation_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="statistic"):
        paired_permutation_test([1.0], [2.0], statistic="mode")


def test_holm_adjust_hand_computed():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 with m = 4 -> 0.04, 0.09, 0.09 (monotone), 0.5
    np.testing.assert_allclose(holm_adjust(p), [0.04, 0.09, 0.09, np.nan, 0.5])
    assert holm_adjust([]).size == 0


def test_permutation_table_equals_single_calls_and_orients_by_metric_direction():
    am = _aug_metrics()
    table = permutation_test_table(am, n_perm=700, seed=6)
    assert len(table) == 6  # 3 pairs x 2 metrics
    for row in table.itertuples():
        x = am.loc[am["augmentation"] == row.aug_a, row.metric].to_numpy()
        y = am.loc[am["augmentation"] == row.aug_b, row.metric].to_numpy()
        single = paired_permutation_test(x, y, n_perm=700, seed=6)
        assert (row.statistic, row.p_value, row.n) == (single.statistic, single.p_value, single.n)
    for metric, rows in table.groupby("metric"):
        np.testing.assert_allclose(rows["p_holm"], holm_adjust(rows["p_value"].to_numpy()))
    # blur has mad shifted up by 0.8: mad is lower-is-better, so the other augmentation is closer to baseline
    blur = table[(table["metric"] == "mad") & (table["aug_b"] == "blur")]
    assert (blur["p_value"] < 0.01).all()
    assert set(blur["more_similar"]) == {"affine", "cutmix"}
    single_aug = am[am["augmentation"] == "affine"]
    assert permutation_test_table(single_aug, n_perm=10).empty


def test_metric_summary_matches_numpy():
    am = _aug_metrics()
    summary = metric_summary(am).set_index(["metric", "augmentation"])
    values = am.loc[am["augmentation"] == "cutmix", "pearson"].to_numpy()
    defined = values[~np.isnan(values)]
    row = summary.loc[("pearson", "cutmix")]
    assert row["n"] == 55 and row["n_nan"] == 5
    assert row["median"] == pytest.approx(np.median(defined))
    assert row["q25"] == pytest.approx(np.percentile(defined, 25))
    assert row["std"] == pytest.approx(np.std(defined, ddof=1))
    assert summary.loc[("mad", "affine"), "higher_is_better"] == False  # noqa: E712 (numpy bool)
    assert summary.loc[("pearson", "affine"), "higher_is_better"] == True  # noqa: E712
