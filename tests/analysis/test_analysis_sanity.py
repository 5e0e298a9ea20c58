"""Sanity warnings and the CAM-change ranking behind the report's findings."""

from __future__ import annotations

import pandas as pd

from auglens.analysis import change_ranking, overall_change_ranking, sanity_problems


def _perf(rows):
    return pd.DataFrame(rows, columns=["model", "augmentation", "accuracy"])


def test_chance_level_threshold_is_a_tenth_of_the_way_to_perfect():
    perf = _perf([("none-s1", "none", 0.9), ("a-s1", "a", 0.189), ("b-s1", "b", 0.191)])
    problems = sanity_problems(perf, num_classes=10)  # chance 0.1; threshold 0.1 + 0.1 * 0.9 = 0.19
    near = [p for p in problems if "chance" in p]
    assert len(near) == 1 and near[0].startswith("model a-s1: test accuracy 0.189")


def test_far_below_the_baseline_uses_the_mean_over_seeds():
    perf = _perf([("none-s1", "none", 0.90), ("none-s2", "none", 0.90), ("a-s1", "a", 0.85), ("a-s2", "a", 0.70),
                  ("b-s1", "b", 0.81), ("b-s2", "b", 0.81)])
    problems = sanity_problems(perf, num_classes=10)
    assert problems == [p for p in problems if p.startswith("augmentation a:")] and len(problems) == 1
    assert "0.775" in problems[0] and "0.125 below the baseline's 0.900" in problems[0]


def test_change_ranking_follows_each_metric_direction():
    ci = pd.DataFrame([
        # pearson: higher = more similar, so the lowest median changed the CAMs most
        ("pearson", "a", 0.8, 0.7, 0.9), ("pearson", "b", 0.2, 0.1, 0.3), ("pearson", "c", 0.5, 0.25, 0.75),
        # mad: lower = more similar, so the highest median changed them most
        ("mad", "a", 0.1, 0.05, 0.15), ("mad", "b", 0.4, 0.35, 0.45), ("mad", "c", 0.3, 0.2, 0.5),
        ("unknown_column", "a", 1.0, 0.0, 2.0),
    ], columns=["metric", "augmentation", "median", "ci_low", "ci_high"])
    ranking = change_ranking(ci)
    assert set(ranking["metric"]) == {"pearson", "mad"}  # no declared direction: left out
    assert ranking[ranking["metric"] == "pearson"]["augmentation"].tolist() == ["b", "c", "a"]
    assert ranking[ranking["metric"] == "mad"]["augmentation"].tolist() == ["b", "c", "a"]
    # b [0.1, 0.3] overlaps c [0.25, 0.75]; c overlaps a [0.7, 0.9]; the last has no next
    assert ranking[ranking["metric"] == "pearson"]["overlaps_next"].tolist() == [True, True, False]
    assert ranking[ranking["metric"] == "mad"]["overlaps_next"].tolist() == [True, False, False]
    overall = overall_change_ranking(ranking)
    assert overall["augmentation"].tolist() == ["b", "c", "a"] and overall["mean_rank"].tolist() == [1, 2, 3]
