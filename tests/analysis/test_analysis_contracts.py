"""Contracts of the analysis tables that the numeric tests leave open: the documented columns, the
``metrics`` selection, the defaults shared with the single-sample functions, empty and two-value cells,
boundaries of the sanity thresholds and the order of the change ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auglens.analysis import (change_ranking, extreme_images, median_ci_table, metric_summary,
                              paired_permutation_test, permutation_test_table, sanity_problems)
from auglens.analysis.inference import bootstrap_median_ci
from auglens.analysis.sanity import BASELINE_GAP, CHANCE_MARGIN


def _aug_metrics(n=40, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for augmentation in ("affine", "cutmix", "blur"):
        mad = rng.normal(size=n) + 0.5 * (augmentation == "blur")
        pearson = rng.normal(size=n)
        if augmentation == "blur":
            pearson[:] = np.nan  # no defined value in this cell
        if augmentation == "cutmix":
            pearson[2:] = np.nan  # two defined values
        frames.append(pd.DataFrame({"augmentation": augmentation, "image": np.arange(n), "label": 0, "mad": mad,
                                    "pearson": pearson, "n_seeds": 2, "model_correct_share": 1.0}))
    return pd.concat(frames, ignore_index=True)


def test_median_ci_table_columns_defaults_and_metric_selection():
    am = _aug_metrics()
    table = median_ci_table(am)
    assert list(table.columns) == ["metric", "augmentation", "n", "median", "ci_low", "ci_high", "level", "n_boot"]
    assert set(table["level"]) == {0.95} and set(table["n_boot"]) == {2000}
    for row in table.itertuples():
        values = am.loc[am["augmentation"] == row.augmentation, row.metric].to_numpy()
        expected = bootstrap_median_ci(values)  # the single-sample defaults: 2000 resamples, seed 0
        np.testing.assert_equal((row.median, row.ci_low, row.ci_high), expected)
    empty = table[(table["metric"] == "pearson") & (table["augmentation"] == "blur")].iloc[0]
    assert empty["n"] == 0 and np.isnan([empty["median"], empty["ci_low"], empty["ci_high"]]).all()
    only = median_ci_table(am, metrics=["mad"], n_boot=50)
    assert only["metric"].tolist() == ["mad"] * 3


def test_metric_summary_columns_empty_and_two_value_cells():
    am = _aug_metrics()
    summary = metric_summary(am)
    assert list(summary.columns) == ["metric", "augmentation", "n", "n_nan", "mean", "std", "q25", "median",
                                     "q75", "higher_is_better"]
    cells = summary.set_index(["metric", "augmentation"])
    empty = cells.loc[("pearson", "blur")]
    assert empty["n"] == 0 and empty["n_nan"] == 40
    assert np.isnan(empty[["mean", "std", "q25", "median", "q75"]].to_numpy(dtype=float)).all()
    two = am.loc[am["augmentation"] == "cutmix", "pearson"].to_numpy()[:2]
    pair = cells.loc[("pearson", "cutmix")]
    assert pair["n"] == 2 and pair["std"] == pytest.approx(abs(two[0] - two[1]) / np.sqrt(2))
    assert pair["q75"] == pytest.approx(np.percentile(two, 75))
    assert metric_summary(am, ["mad"])["metric"].tolist() == ["mad"] * 3


def test_permutation_table_columns_defaults_median_statistic_and_metric_selection():
    am = _aug_metrics()
    columns = ["metric", "aug_a", "aug_b", "n", "mean_a", "mean_b", "median_a", "median_b", "statistic",
               "p_value", "p_holm", "n_perm", "exact", "more_similar"]
    table = permutation_test_table(am, metrics=["mad"])
    assert list(table.columns) == columns and table["metric"].tolist() == ["mad"] * 3
    assert set(table["n_perm"]) == {10_000}
    for row in table.itertuples():
        x = am.loc[am["augmentation"] == row.aug_a, "mad"].to_numpy()
        y = am.loc[am["augmentation"] == row.aug_b, "mad"].to_numpy()
        single = paired_permutation_test(x, y)  # the single-test defaults: 10,000 swaps, seed 0
        assert (row.statistic, row.p_value) == (single.statistic, single.p_value)
    medians = permutation_test_table(am, metrics=["mad"], statistic="median", n_perm=300, seed=2)
    for row in medians.itertuples():
        x = am.loc[am["augmentation"] == row.aug_a, "mad"].to_numpy()
        y = am.loc[am["augmentation"] == row.aug_b, "mad"].to_numpy()
        single = paired_permutation_test(x, y, statistic="median", n_perm=300, seed=2)
        assert row.statistic == pytest.approx(np.median(x) - np.median(y))
        assert (row.statistic, row.p_value) == (single.statistic, single.p_value)
    assert list(permutation_test_table(am[am["augmentation"] == "affine"]).columns) == columns


def test_extreme_images_columns():
    am = _aug_metrics()
    table = extreme_images(am, ["mad"])
    assert list(table.columns) == ["metric", "statistic", "image", "label", "value", "mean", "std",
                                   "n_augmentations"]
    stats = am.groupby("image")["mad"].agg(["mean", "std"])
    for row in table.itertuples():
        assert row.mean == pytest.approx(stats.loc[row.image, "mean"])
        assert row.std == pytest.approx(stats.loc[row.image, "std"])
    assert list(extreme_images(am.iloc[:0], ["mad"]).columns) == list(table.columns)


def _perf(rows):
    return pd.DataFrame(rows, columns=["model", "augmentation", "accuracy"])


def test_sanity_thresholds_are_strict_and_problems_keep_the_table_order():
    chance = 1 / 4
    floor = chance + CHANCE_MARGIN * (1 - chance)
    at_floor = _perf([("none-s1", "none", 0.9), ("a-s1", "a", floor)])
    assert not [p for p in sanity_problems(at_floor, num_classes=4) if "chance" in p]  # at it is not below it
    base = 0.9
    at_gap = _perf([("none-s1", "none", base), ("z-s1", "z", base - BASELINE_GAP)])
    assert sanity_problems(at_gap, num_classes=4) == []
    below = _perf([("none-s1", "none", base), ("z-s1", "z", 0.5), ("a-s1", "a", 0.5)])
    assert [p.split(":")[0] for p in sanity_problems(below, num_classes=4)] == ["augmentation z", "augmentation a"]
    # one class: chance is 1, so any error is "near chance"; no class at all: nothing to say
    one = sanity_problems(_perf([("none-s1", "none", 1.0), ("a-s1", "a", 0.95)]), num_classes=1)
    assert [p.split(":")[0] for p in one if "chance" in p] == ["model a-s1"]
    assert sanity_problems(_perf([("none-s1", "none", 0.5)]), num_classes=0) == []


def test_change_ranking_keeps_metric_order_ties_and_touching_intervals():
    ci = pd.DataFrame([
        ("unknown_column", "a", 1.0, 0.0, 2.0),  # no direction: skipped, the metrics after it still ranked
        ("pearson", "a", 0.5, 0.4, 0.6), ("pearson", "b", 0.5, 0.3, 0.4), ("pearson", "c", 0.8, 0.6, 0.9),
        ("mad", "a", 0.1, 0.05, 0.15), ("mad", "b", 0.4, 0.35, 0.45),
    ], columns=["metric", "augmentation", "median", "ci_low", "ci_high"])
    ranking = change_ranking(ci)
    assert ranking["metric"].tolist() == ["pearson"] * 3 + ["mad"] * 2  # the table's metric order
    pearson = ranking[ranking["metric"] == "pearson"]
    assert pearson["augmentation"].tolist() == ["a", "b", "c"]  # a tie keeps the table's order
    # a [0.4, 0.6] and b [0.3, 0.4] touch at 0.4: overlapping; b [0.3, 0.4] and c [0.6, 0.9] do not
    assert pearson["overlaps_next"].tolist() == [True, False, False]
