"""The analysis functions against independent oracles on the paths the other tests leave open: the documented
random draws, permutation counts beyond one chunk, boundaries (``2**n == n_perm``, a single p-value, two
common images, two augmentations), the side a difference favours, stable order on ties, float32 inputs
computed in float64, the columns of empty tables and the order of appearance."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from auglens.analysis import (
    ARCHITECTURE_COLUMNS,
    architecture_summary,
    bootstrap_median_ci,
    change_ranking,
    cluster_augmentations,
    correctness_segments,
    correlation_map,
    correlation_maps,
    extreme_pairs,
    holm_adjust,
    median_ci_table,
    metric_summary,
    overall_change_ranking,
    pair_frequencies,
    paired_permutation_test,
    performance_summary,
    permutation_test_table,
    segment_counts,
    training_time_summary,
)


def _long(values: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """aug_metrics from {augmentation: {metric: (N,)}}."""
    frames = []
    for augmentation, metrics in values.items():
        n = len(next(iter(metrics.values())))
        frames.append(pd.DataFrame({"augmentation": augmentation, "image": np.arange(n), "label": 0, **metrics,
                                    "n_seeds": 1, "model_correct_share": 1.0}))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------ bootstrap

def test_bootstrap_level_and_resample_count_bounds():
    x = [1.0, 2.0, 4.0]
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="level"):
            bootstrap_median_ci(x, level=level)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_median_ci(x, n_boot=0)
    # one resample is allowed: both bounds are that resample's median
    idx = np.random.default_rng(3).integers(0, 3, size=(1, 3))[0]
    expected = float(np.median(np.asarray(x)[idx]))
    assert bootstrap_median_ci(x, n_boot=1, seed=3) == (2.0, expected, expected)


def test_bootstrap_beyond_the_int16_range_equals_a_numpy_loop():
    n = 40_000  # more values than an int16 rank can index
    x = np.random.default_rng(0).normal(size=n)
    indices = np.random.default_rng(1).integers(0, n, size=(3, n))
    medians = [np.median(x[row]) for row in indices]
    median, low, high = bootstrap_median_ci(x, n_boot=3, level=0.5, seed=1)
    assert median == np.median(x)
    assert (low, high) == pytest.approx(tuple(np.percentile(medians, [25, 75])), rel=1e-12)


def test_float32_values_are_computed_in_float64():
    rng = np.random.default_rng(5)
    x32 = (1.0 + rng.random(30) * 1e-3).astype(np.float32)  # float32 sums / midpoints round differently
    x64 = x32.astype(np.float64)
    assert bootstrap_median_ci(x32, n_boot=200, seed=2) == bootstrap_median_ci(x64, n_boot=200, seed=2)
    y32 = (1.0 + rng.random(30) * 1e-3).astype(np.float32)
    y64 = y32.astype(np.float64)
    result = paired_permutation_test(x32, y64, statistic="median", n_perm=50, seed=1)
    assert result.statistic == np.median(x64) - np.median(y64)
    result = paired_permutation_test(x64, y32, statistic="median", n_perm=50, seed=1)
    assert result.statistic == np.median(x64) - np.median(y64)
    # middle values whose float32 sum is inexact: their midpoint rounds in float32, not in float64
    y32 = np.array([1.0, 1.0 + 2.0**-23, 1.0 + 2.0**-22, 2.0], dtype=np.float32)
    zero = np.zeros(4)
    assert paired_permutation_test(zero, y32, statistic="median").statistic == -(1.0 + 1.5 * 2.0**-23)
    assert paired_permutation_test(y32, zero, statistic="median").statistic == 1.0 + 1.5 * 2.0**-23
    # the tables: a float32 metric column gives the same numbers as the float64 single-sample functions
    am = _long({a: {"mad": (1.0 + rng.random(30) * 1e-3).astype(np.float32)} for a in ("a", "b", "c")})
    wide = {a: am.loc[am["augmentation"] == a, "mad"].to_numpy(dtype=np.float64) for a in ("a", "b", "c")}
    for row in median_ci_table(am, n_boot=100, seed=4).itertuples():
        assert (row.median, row.ci_low, row.ci_high) == bootstrap_median_ci(wide[row.augmentation], 100, 0.95, 4)
    for row in metric_summary(am).itertuples():
        v = wide[row.augmentation]
        assert (row.mean, row.median, row.q25) == (np.mean(v), np.quantile(v, 0.5), np.quantile(v, 0.25))
    for row in permutation_test_table(am, n_perm=64, seed=0).itertuples():
        assert (row.mean_a, row.mean_b) == (np.mean(wide[row.aug_a]), np.mean(wide[row.aug_b]))
        assert (row.median_a, row.median_b) == (np.median(wide[row.aug_a]), np.median(wide[row.aug_b]))


# ------------------------------------------------------------------------------------------ permutation

def _documented_swaps(n_images, n_perm, seed):
    """The Monte Carlo swaps as the docstring states them."""
    return np.random.default_rng(seed).integers(0, 2, size=(n_perm, n_images), dtype=np.int8).astype(bool)


@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_monte_carlo_p_beyond_one_chunk_follows_the_documented_draw(statistic):
    rng = np.random.default_rng(12)
    x = rng.normal(size=20)
    y = x + rng.normal(loc=0.15, scale=0.6, size=20)
    x[3] = np.nan  # the draw still spans all 20 positions; pair 3 is left out of every statistic
    n_perm = 5000  # more than one block of permutations
    swaps = _documented_swaps(20, n_perm, seed=7)
    keep = ~np.isnan(x)
    xs, ys, swaps = x[keep], y[keep], swaps[:, keep]
    if statistic == "mean":
        observed = np.mean(xs - ys)
        null = np.array([np.mean(np.where(row, ys - xs, xs - ys)) for row in swaps])
    else:
        observed = np.median(xs) - np.median(ys)
        null = np.array([np.median(np.where(row, ys, xs)) - np.median(np.where(row, xs, ys)) for row in swaps])
    count = int((np.abs(null) >= np.abs(observed) * (1 - 1e-9)).sum())
    assert 50 < count < n_perm - 50  # a p-value away from both ends: every block matters
    result = paired_permutation_test(x, y, statistic=statistic, n_perm=n_perm, seed=7)
    assert not result.exact and result.n == 19 and result.n_perm == n_perm
    assert result.statistic == pytest.approx(observed, abs=1e-12)
    assert result.p_value == (1 + count) / (1 + n_perm)


def _exact_p(x, y, statistic):
    """Exact two-sided p by enumerating the swap patterns (independent of the library)."""
    stat = np.mean if statistic == "mean" else np.median
    observed = abs(stat(x) - stat(y))
    hits = 0
    patterns = list(itertools.product([0, 1], repeat=len(x)))
    for pattern in patterns:
        a = [yi if s else xi for xi, yi, s in zip(x, y, pattern)]
        b = [xi if s else yi for xi, yi, s in zip(x, y, pattern)]
        hits += abs(stat(a) - stat(b)) >= observed - 1e-12
    return hits / len(patterns)


def test_exact_when_the_patterns_fit_exactly_and_nan_pairs_dropped_for_the_median():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=3), rng.normal(loc=1.0, size=3)
    result = paired_permutation_test(x, y, n_perm=8)  # 2**3 == 8: every pattern enumerated
    assert result.exact and result.n_perm == 8 and result.p_value == pytest.approx(_exact_p(x, y, "mean"))
    x, y = rng.normal(size=10), rng.normal(loc=0.5, size=10)
    x[[1, 6]] = np.nan
    keep = ~np.isnan(x)
    exact = paired_permutation_test(x, y, statistic="median", n_perm=1000)  # 8 complete pairs: exact
    assert exact.exact and exact.n == 8
    assert exact.statistic == np.median(x[keep]) - np.median(y[keep])
    assert exact.p_value == pytest.approx(_exact_p(x[keep], y[keep], "median"))
    sampled = paired_permutation_test(x, y, statistic="median", n_perm=100)  # 2**8 > 100: Monte Carlo
    assert not sampled.exact and sampled.statistic == np.median(x[keep]) - np.median(y[keep])


def test_a_single_permutation_and_no_complete_pair():
    x, y = np.arange(12.0), np.arange(12.0) + 0.5
    result = paired_permutation_test(x, y, n_perm=1, seed=0)  # one random pattern
    swaps = _documented_swaps(12, 1, 0)[0]
    hit = abs(np.mean(np.where(swaps, y - x, x - y))) >= 0.5 * (1 - 1e-9)
    assert result.n_perm == 1 and result.p_value == (1 + hit) / 2
    empty = paired_permutation_test([np.nan, 1.0], [2.0, np.nan])
    assert np.isnan(empty.statistic) and np.isnan(empty.p_value)
    assert (empty.n, empty.n_perm) == (0, 0) and empty.exact is False


def test_holm_single_value_cap_and_float64():
    assert holm_adjust([0.3]).tolist() == [0.3]  # one test: nothing to adjust
    np.testing.assert_array_equal(holm_adjust([np.nan, 0.2]), [np.nan, 0.2])
    assert holm_adjust([0.6, 0.7]).tolist() == [1.0, 1.0]  # 2 * 0.6 capped at 1, monotone
    p32 = np.array([0.011, 0.027, 0.3], dtype=np.float32)
    adjusted = holm_adjust(p32)
    p = p32.astype(np.float64)
    expected = np.maximum.accumulate([3 * p[0], 2 * p[1], p[2]])
    assert adjusted.dtype == np.float64 and adjusted.tolist() == expected.tolist()


def test_permutation_table_boundaries_directions_and_summary_columns():
    rng = np.random.default_rng(3)
    n = 6
    base = rng.normal(size=n)
    am = _long({
        "a": {"mad": base + 2.0, "pearson": base + 0.5, "custom": base + 1.0},
        "b": {"mad": base, "pearson": base, "custom": base},
        "c": {"mad": base.copy(), "pearson": base.copy(), "custom": base.copy()},  # equal to b: statistic 0
    })
    for n_perm in (2**n, 100):  # 2**6 == 64 and 64 <= 100 < 3**6: every test is exact
        table = permutation_test_table(am, n_perm=n_perm, seed=1)
        for row in table.itertuples():
            x = am.loc[am["augmentation"] == row.aug_a, row.metric].to_numpy()
            y = am.loc[am["augmentation"] == row.aug_b, row.metric].to_numpy()
            assert row.exact is True and row.n_perm == 2**n
            assert row.p_value == pytest.approx(_exact_p(x, y, "mean"))
    cells = table.set_index(["metric", "aug_a", "aug_b"])
    # mad: lower is better, a is higher by 2 -> b is closer to the baseline; pearson: higher is better, a is
    # higher by 0.5 (between 0 and 1) -> a; equal columns (statistic 0) and a metric without direction: neither
    assert cells.loc[("mad", "a", "b"), "more_similar"] == "b"
    assert cells.loc[("pearson", "a", "b"), "more_similar"] == "a"
    assert cells.loc[("pearson", "b", "c"), "statistic"] == 0 and cells.loc[("pearson", "b", "c"), "more_similar"] == ""
    assert cells.loc[("mad", "b", "c"), "more_similar"] == ""
    assert (table.loc[table["metric"] == "custom", "more_similar"] == "").all()


def test_permutation_table_monte_carlo_cells_count_complete_pairs():
    rng = np.random.default_rng(9)
    values = {a: {"mad": rng.normal(size=30)} for a in ("a", "b", "c")}
    values["a"]["mad"][[0, 4, 9]] = np.nan
    values["c"]["mad"][[4, 20]] = np.nan
    am = _long(values)
    table = permutation_test_table(am, n_perm=50, seed=3)  # 2**27 > 50: one batch of random swaps
    for row in table.itertuples():
        x = values[row.aug_a]["mad"]
        y = values[row.aug_b]["mad"]
        keep = ~(np.isnan(x) | np.isnan(y))
        single = paired_permutation_test(x, y, n_perm=50, seed=3)
        assert row.n == keep.sum() == single.n and row.exact is False and single.exact is False
        assert (row.statistic, row.p_value) == (single.statistic, single.p_value)
        assert (row.mean_a, row.mean_b) == (np.mean(x[keep]), np.mean(y[keep]))
        assert (row.median_a, row.median_b) == (np.median(x[keep]), np.median(y[keep]))


# ------------------------------------------------------------------------------------------ empty cells

def test_empty_and_single_value_cells_are_nan_without_warnings():
    am = _long({"a": {"mad": np.array([np.nan, np.nan, np.nan])}, "b": {"mad": np.array([np.nan, 0.4, np.nan])}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" / "degrees of freedom" warnings
        summary = metric_summary(am).set_index("augmentation")
        ci = median_ci_table(am, n_boot=20)
        table = permutation_test_table(am, n_perm=10)
    assert np.isnan(summary.loc["a", ["mean", "std", "median"]].to_numpy(dtype=float)).all()
    assert summary.loc["b", "mean"] == 0.4 and np.isnan(summary.loc["b", "std"])
    assert ci["median"].dtype == np.float64 and np.isnan(ci.loc[ci["augmentation"] == "a", "median"]).all()
    assert table.loc[0, "n"] == 0 and np.isnan(table.loc[0, ["mean_a", "mean_b", "median_a", "median_b"]]
                                               .to_numpy(dtype=float)).all()
    only_empty = median_ci_table(am[am["augmentation"] == "a"], n_boot=20)
    assert (only_empty[["median", "ci_low", "ci_high"]].dtypes == np.float64).all()  # NaN, not None
    assert np.isnan(only_empty[["median", "ci_low", "ci_high"]].to_numpy(dtype=float)).all()


def test_empty_tables_keep_their_columns():
    am = _long({"a": {"mad": np.ones(3)}})
    assert list(median_ci_table(am, metrics=[]).columns) == ["metric", "augmentation", "n", "median", "ci_low",
                                                             "ci_high", "level", "n_boot"]
    assert list(metric_summary(am, metrics=[]).columns) == ["metric", "augmentation", "n", "n_nan", "mean", "std",
                                                            "q25", "median", "q75", "higher_is_better"]
    empty_ci = pd.DataFrame(columns=["metric", "augmentation", "median", "ci_low", "ci_high"])
    ranking = change_ranking(empty_ci)
    assert list(ranking.columns) == ["metric", "rank", "augmentation", "median", "ci_low", "ci_high",
                                     "overlaps_next"]
    assert list(overall_change_ranking(ranking).columns) == ["augmentation", "mean_rank", "n_metrics"]
    assert list(architecture_summary(pd.DataFrame(columns=list(ARCHITECTURE_COLUMNS))).columns) == [
        "architecture", "epochs", "best_epoch", "accuracy", "precision_macro", "recall_macro", "f1_macro",
        "seconds_to_best", "train_seconds"]


# ------------------------------------------------------------------------------------------ rankings

def test_change_ranking_values_stable_ties_and_touching_intervals():
    names = [f"aug{i:02d}" for i in range(40)]
    medians = [0.5 if i % 3 else 0.2 for i in range(40)]  # many ties, interleaved
    ci = pd.DataFrame({"metric": "pearson", "augmentation": names, "median": medians,
                       "ci_low": [m - 0.1 for m in medians], "ci_high": [m + 0.1 for m in medians]})
    ranking = change_ranking(ci)
    expected = [name for name, _ in sorted(zip(names, medians), key=lambda t: t[1])]  # Python's sort is stable
    assert ranking["augmentation"].tolist() == expected
    assert ranking["rank"].tolist() == list(range(1, 41))
    by_name = ci.set_index("augmentation")
    for column in ("median", "ci_low", "ci_high"):
        assert ranking[column].tolist() == by_name.loc[expected, column].tolist()
    # the next interval starts where this one ends: they touch, so they overlap
    touch = pd.DataFrame([("pearson", "a", 0.2, 0.1, 0.3), ("pearson", "b", 0.5, 0.3, 0.6)],
                         columns=["metric", "augmentation", "median", "ci_low", "ci_high"])
    assert change_ranking(touch)["overlaps_next"].tolist() == [True, False]
    overall = overall_change_ranking(pd.concat([change_ranking(touch), change_ranking(touch.assign(metric="mad"))]))
    assert overall.to_dict("list") == {"augmentation": ["a", "b"], "mean_rank": [1.5, 1.5], "n_metrics": [2, 2]}


def _corr(names, r):
    """A symmetric map with the given upper-triangle values (row-major)."""
    corr = np.eye(len(names))
    i, j = np.triu_indices(len(names), k=1)
    corr[i, j] = corr[j, i] = r
    return pd.DataFrame(corr, index=names, columns=names)


def test_extreme_pairs_default_k_stable_ties_and_columns():
    names = [f"m{i}" for i in range(9)]  # 36 pairs
    i, j = np.triu_indices(9, k=1)
    r = np.where(np.arange(36) % 4 == 0, 0.7, 0.3)  # ties at both cuts, interleaved
    corr = _corr(names, r)
    pairs = [(names[a], names[b], v) for a, b, v in zip(i, j, r)]  # the map's pair order
    for strongest in (True, False):
        ranked = sorted(pairs, key=lambda p: -p[2] if strongest else p[2])  # stable
        for k in (None, 10):  # None: the default, 4
            result = extreme_pairs(corr, strongest=strongest) if k is None else extreme_pairs(corr, k, strongest)
            assert list(result.columns) == ["aug_a", "aug_b", "r"]
            assert list(result.itertuples(index=False, name=None)) == ranked[:k or 4]
    assert extreme_pairs(corr, k=0).empty and list(extreme_pairs(corr, k=0).columns) == ["aug_a", "aug_b", "r"]
    # pair frequencies: default k = 4 per map, ties in count in the order the pairs were first seen
    maps = {"x": corr, "y": _corr(names, r[::-1])}
    table = pair_frequencies(maps)
    assert list(table.columns) == ["pair", "aug_a", "aug_b", "count", "metrics"]
    seen, counts = {}, {}
    for metric, m in maps.items():
        flat = [(names[a], names[b], m.iloc[a, b]) for a, b in zip(i, j)]
        for a, b, _ in sorted(flat, key=lambda p: -p[2])[:4]:
            seen.setdefault(frozenset((a, b)), (a, b))
            counts.setdefault(frozenset((a, b)), []).append(metric)
    expected = sorted(seen.items(), key=lambda kv: -len(counts[kv[0]]))
    assert [(row.aug_a, row.aug_b, row.count) for row in table.itertuples()] == [
        (a, b, len(counts[key])) for key, (a, b) in expected]


def test_pair_frequencies_many_ties_keep_first_seen_order():
    names = [f"m{i}" for i in range(8)]  # 28 pairs, k up to 14
    i, j = np.triu_indices(8, k=1)
    rng = np.random.default_rng(4)
    maps = {f"metric{t}": _corr(names, rng.permutation(28) / 28.0) for t in range(3)}
    table = pair_frequencies(maps, k=14)
    seen, counts = {}, {}
    for metric, m in maps.items():
        flat = [(names[a], names[b], m.iloc[a, b]) for a, b in zip(i, j)]
        for a, b, _ in sorted(flat, key=lambda p: -p[2])[:14]:
            seen.setdefault(frozenset((a, b)), (a, b))
            counts.setdefault(frozenset((a, b)), []).append(metric)
    expected = sorted(seen.items(), key=lambda kv: -len(counts[kv[0]]))
    assert len(expected) > 16 and len({len(v) for v in counts.values()}) > 1
    assert [(row.aug_a, row.aug_b, row.count, row.metrics) for row in table.itertuples()] == [
        (a, b, len(counts[key]), ", ".join(counts[key])) for key, (a, b) in expected]


# ------------------------------------------------------------------------------------------ correlation

def test_two_common_images_define_r_and_the_metric_and_order_selection():
    am = _long({"a": {"mad": np.array([1.0, 2.0, np.nan, 5.0]), "pearson": np.arange(4.0)},
                "b": {"mad": np.array([3.0, 1.0, 4.0, np.nan]), "pearson": np.arange(4.0) ** 2}})
    corr = correlation_map(am, "mad")  # images 0 and 1 are the only common ones: r = -1
    assert corr.loc["a", "b"] == pytest.approx(-1.0)
    maps = correlation_maps(am, metrics=["pearson"], order=["b", "a"])
    assert list(maps) == ["pearson"] and list(maps["pearson"].columns) == ["b", "a"]
    assert maps["pearson"].loc["b", "a"] == pytest.approx(np.corrcoef(np.arange(4.0), np.arange(4.0) ** 2)[0, 1])


def test_clustering_two_augmentations_rounding_and_the_diagonal():
    two = cluster_augmentations(pd.DataFrame([[1.0, 0.4], [0.4, 1.0]], index=["a", "b"], columns=["a", "b"]))
    assert two.linkage.shape == (1, 4) and two.linkage[0, 2] == pytest.approx(0.6)
    eps = 4e-16
    corr = pd.DataFrame([[np.nan, 1 + eps, -1 - eps], [1 + eps, 1.0, 0.0], [-1 - eps, 0.0, 1.0]],
                        index=list("abc"), columns=list("abc"))  # r a hair outside [-1, 1]; a NaN diagonal
    distance = cluster_augmentations(corr).distance
    assert distance.loc["a", "b"] == 0.0 and distance.loc["a", "c"] == 2.0
    assert np.diag(distance.to_numpy()).tolist() == [0.0, 0.0, 0.0]


# ------------------------------------------------------------------------------------------ performance

def test_training_time_summary_and_a_named_baseline():
    perf = pd.DataFrame({"augmentation": ["x", "x", "plain", "plain", "none"], "seed": [1, 2, 1, 2, 1],
                         "train_seconds": [10.0, 14.0, 3.0, 5.0, 7.0], "best_epoch": [4, 6, 1, 2, 3]})
    summary = training_time_summary(perf)
    assert summary["augmentation"].tolist() == ["none", "x", "plain"]
    row = summary.set_index("augmentation").loc["x"]
    assert (row["n_seeds"], row["train_seconds_mean"], row["best_epoch_mean"]) == (2, 12.0, 5.0)
    assert row["train_seconds_std"] == pytest.approx(np.std([10.0, 14.0], ddof=1))
    assert row["best_epoch_std"] == pytest.approx(np.std([4, 6], ddof=1))
    assert training_time_summary(perf, baseline="plain")["augmentation"].tolist() == ["plain", "x", "none"]
    perf["accuracy"] = perf["precision_macro"] = perf["recall_macro"] = perf["f1_macro"] = 0.5
    assert performance_summary(perf, baseline="plain")["augmentation"].tolist() == ["plain", "x", "none"]


# ------------------------------------------------------------------------------------------ segments

def test_segments_align_with_the_rows_and_follow_the_order_of_appearance():
    cm = pd.DataFrame({"augmentation": ["zoom", "zoom", "affine", "affine", "zoom"], "seed": [2, 1, 1, 2, 2],
                       "label": [0, 1, 2, 0, 1], "baseline_pred": [0, 0, 2, 1, 1], "model_pred": [0, 1, 0, 0, 0]},
                      index=[10, 11, 12, 13, 14])
    segments = correctness_segments(cm)
    assert segments.index.tolist() == [10, 11, 12, 13, 14] and segments.name == "segment"
    assert segments.tolist() == ["both_correct", "only_augmented_correct", "only_baseline_correct",
                                 "only_augmented_correct", "only_baseline_correct"]
    assert segments.cat.ordered and segments.min() == "both_correct"
    counts = segment_counts(cm)
    assert counts["augmentation"].tolist() == ["zoom", "affine"]  # order of appearance, not alphabetical
    assert counts["total"].tolist() == [3, 2]
    by_seed = segment_counts(cm, by_seed=True)
    assert list(zip(by_seed["augmentation"], by_seed["seed"])) == [("zoom", 1), ("zoom", 2), ("affine", 1),
                                                                  ("affine", 2)]
    assert by_seed["only_baseline_correct"].tolist() == [0, 1, 1, 0]
    assert by_seed["only_augmented_correct"].tolist() == [1, 0, 0, 1]
