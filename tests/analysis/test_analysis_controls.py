"""The noise floor of retraining: the controls' band and the beyond / within / unclear verdicts, on
hand-made interval tables whose answers are worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auglens.analysis import change_ranking, control_floor, floor_verdict, overall_change_ranking

COLUMNS = ["metric", "augmentation", "median", "ci_low", "ci_high"]


@pytest.mark.parametrize(("interval", "expected"), [
    # pearson (a similarity, higher = closer to the baseline); floor [0.60, 0.70]: its far end is 0.60.
    ((0.50, 0.58), "beyond"),   # all of it below 0.60: farther from the baseline than any retraining
    ((0.55, 0.65), "unclear"),  # straddles 0.60
    ((0.62, 0.66), "within"),   # inside the band
    ((0.80, 0.90), "within"),   # closer to the baseline than every control: still no change beyond retraining
    ((0.60, 0.66), "within"),   # touching the far end from inside counts as within
    ((0.50, 0.60), "unclear"),  # touching it from outside is not strictly beyond
])
def test_a_similarity_is_judged_against_the_floor_low_end(interval, expected):
    assert floor_verdict(*interval, 0.60, 0.70, True) == expected


@pytest.mark.parametrize(("interval", "expected"), [
    # mad (a difference, lower = closer); floor [0.10, 0.20]: its far end is 0.20.
    ((0.25, 0.30), "beyond"),
    ((0.15, 0.25), "unclear"),
    ((0.12, 0.18), "within"),
    ((0.01, 0.05), "within"),   # less change than retraining
    ((0.20, 0.30), "unclear"),  # 0.20 is not > 0.20
    ((0.15, 0.20), "within"),
])
def test_a_difference_is_judged_against_the_floor_high_end(interval, expected):
    assert floor_verdict(*interval, 0.10, 0.20, False) == expected


def test_no_verdict_without_a_direction_or_a_defined_floor():
    assert floor_verdict(0.1, 0.2, 0.3, 0.4, None) == ""
    assert floor_verdict(0.1, 0.2, np.nan, np.nan, True) == ""
    assert floor_verdict(np.nan, np.nan, 0.3, 0.4, False) == ""


def _ci() -> pd.DataFrame:
    return pd.DataFrame([
        ("pearson", "a", 0.80, 0.75, 0.85), ("pearson", "b", 0.30, 0.20, 0.40), ("pearson", "c", 0.55, 0.45, 0.65),
        ("pearson", "control:init_seed=1", 0.60, 0.50, 0.68),
        ("pearson", "control:sampling_seed=7", 0.70, 0.62, 0.74),
        ("mad", "a", 0.10, 0.08, 0.12), ("mad", "b", 0.40, 0.35, 0.45), ("mad", "c", 0.22, 0.18, 0.26),
        ("mad", "control:init_seed=1", 0.20, 0.15, 0.24),
        ("mad", "control:sampling_seed=7", np.nan, np.nan, np.nan),  # undefined: no part of the floor
    ], columns=COLUMNS)


CONTROLS = ["control:init_seed=1", "control:sampling_seed=7"]


def test_the_floor_is_the_hull_of_the_controls_median_intervals():
    floors = control_floor(_ci(), CONTROLS).set_index("metric")
    # pearson: lowest ci_low of the two controls 0.50, highest ci_high 0.74
    assert floors.loc["pearson", "floor_low"] == 0.50 and floors.loc["pearson", "floor_high"] == 0.74
    assert floors.loc["pearson", "n_controls"] == 2
    # mad: only init_seed=1 has a median: [0.15, 0.24]
    assert floors.loc["mad", "floor_low"] == 0.15 and floors.loc["mad", "floor_high"] == 0.24
    assert floors.loc["mad", "n_controls"] == 1
    assert control_floor(_ci(), ["nothing"])[["floor_low", "floor_high"]].isna().all().all()


def test_the_ranking_leaves_controls_out_and_judges_each_augmentation():
    ranking = change_ranking(_ci(), CONTROLS)
    pearson = ranking[ranking["metric"] == "pearson"].set_index("augmentation")
    mad = ranking[ranking["metric"] == "mad"].set_index("augmentation")
    assert sorted(pearson.index) == ["a", "b", "c"] and sorted(mad.index) == ["a", "b", "c"]
    # the ranks are those without controls: the controls do not take places
    assert pearson["rank"].to_dict() == {"b": 1, "c": 2, "a": 3}
    assert pearson.loc["b", "floor_low"] == 0.50 and pearson.loc["b", "floor_high"] == 0.74
    # pearson far end 0.50: b [0.20, 0.40] beyond; c [0.45, 0.65] straddles; a [0.75, 0.85] within
    assert pearson["floor"].to_dict() == {"b": "beyond", "c": "unclear", "a": "within"}
    # mad far end 0.24: b [0.35, 0.45] beyond; c [0.18, 0.26] straddles; a [0.08, 0.12] within
    assert mad["floor"].to_dict() == {"b": "beyond", "c": "unclear", "a": "within"}
    assert overall_change_ranking(ranking)["augmentation"].tolist() == ["b", "c", "a"]


def test_without_controls_the_ranking_is_unchanged():
    plain = _ci()[~_ci()["augmentation"].isin(CONTROLS)]
    assert change_ranking(plain).equals(change_ranking(plain, ()))
    assert list(change_ranking(plain).columns) == ["metric", "rank", "augmentation", "median", "ci_low",
                                                  "ci_high", "overlaps_next"]
    with_controls = change_ranking(_ci(), CONTROLS)
    assert with_controls.drop(columns=["floor_low", "floor_high", "floor"]).equals(change_ranking(plain))
