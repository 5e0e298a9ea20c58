"""auglens.analysis: performance summary, extreme images (Appendix A), correctness segments (Appendix C)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auglens.analysis import (
    SEGMENTS,
    augmentation_order,
    correctness_segments,
    extreme_images,
    metric_columns_of,
    performance_summary,
    segment_counts,
)


# ------------------------------------------------------------------------------------------ performance

def _performance(seeds=(1, 2, 3)) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [{"model": f"{a}-s{s}", "augmentation": a, "seed": s, "accuracy": rng.uniform(0.5, 0.9),
             "precision_macro": rng.uniform(0.5, 0.9), "recall_macro": rng.uniform(0.5, 0.9),
             "f1_macro": rng.uniform(0.5, 0.9), "best_epoch": int(rng.integers(0, 5)),
             "train_seconds": rng.uniform(1, 9), "cam_set": "x"}
            for a in ("affine", "none", "cutmix") for s in seeds]
    return pd.DataFrame(rows)


def test_performance_summary_matches_groupby():
    perf = _performance()
    summary = performance_summary(perf)
    assert list(summary["augmentation"]) == ["none", "affine", "cutmix"]  # baseline first, then study order
    for metric in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
        for augmentation, rows in perf.groupby("augmentation"):
            row = summary.set_index("augmentation").loc[augmentation]
            assert row[f"{metric}_mean"] == pytest.approx(np.mean(rows[metric]))
            assert row[f"{metric}_std"] == pytest.approx(np.std(rows[metric], ddof=1))
    assert (summary["n_seeds"] == 3).all()


def test_performance_summary_single_seed_has_nan_std():
    summary = performance_summary(_performance(seeds=(7,)))
    assert summary["accuracy_std"].isna().all() and summary["accuracy_mean"].notna().all()
    with pytest.raises(KeyError, match="lacks columns"):
        performance_summary(_performance().drop(columns="f1_macro"))
    assert augmentation_order(pd.DataFrame({"augmentation": ["b", "a", "b"]})) == ["b", "a"]


# ------------------------------------------------------------------------------------------ extremes

def _aug_metrics(n_images=30, augmentations=("a", "b", "c"), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = [pd.DataFrame({"augmentation": a, "image": np.arange(n_images), "label": np.arange(n_images) % 4,
                            "mad": rng.random(n_images), "pearson": rng.normal(size=n_images),
                            "n_seeds": 2, "model_correct_share": 0.5}) for a in augmentations]
    return pd.concat(frames, ignore_index=True)


def test_extreme_images_match_pandas_groupby():
    am = _aug_metrics()
    am.loc[(am["augmentation"] == "b") & (am["image"] == 3), "pearson"] = np.nan
    table = extreme_images(am)
    assert metric_columns_of(am) == ["mad", "pearson"]
    assert list(table["metric"]) == ["mad", "mad", "pearson", "pearson"]
    for metric in ("mad", "pearson"):
        grouped = am.groupby("image")[metric]
        for statistic, values in (("mean", grouped.mean()), ("std", grouped.std())):
            row = table[(table["metric"] == metric) & (table["statistic"] == statistic)].iloc[0]
            assert row["image"] == values.idxmax()
            assert row["value"] == pytest.approx(values.max())
            assert row["label"] == row["image"] % 4
    pearson_row = table[(table["metric"] == "pearson") & (table["statistic"] == "mean")].iloc[0]
    assert pearson_row["n_augmentations"] == (2 if pearson_row["image"] == 3 else 3)


def test_extreme_images_ties_undefined_and_single_augmentation():
    am = _aug_metrics(n_images=5)
    am["mad"] = 1.0  # every image ties: the lowest index wins
    am["pearson"] = np.nan  # undefined everywhere: no row
    table = extreme_images(am)
    assert table[table["metric"] == "mad"]["image"].tolist() == [0, 0]
    assert "pearson" not in set(table["metric"])
    single = extreme_images(_aug_metrics(augmentations=("a",)), ["mad"])
    assert single["statistic"].tolist() == ["mean"]  # std across one augmentation is undefined


# ------------------------------------------------------------------------------------------ segments

def _cam_metrics(seed=0, n=200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for augmentation in ("affine", "cutmix"):
        for s in (1, 2):
            rows.append(pd.DataFrame({"augmentation": augmentation, "seed": s, "image": np.arange(n),
                                      "label": rng.integers(0, 3, n), "baseline_pred": rng.integers(0, 3, n),
                                      "model_pred": rng.integers(0, 3, n), "mad": rng.random(n)}))
    return pd.concat(rows, ignore_index=True)


def test_segments_match_a_direct_numpy_count():
    cm = _cam_metrics()
    segments = correctness_segments(cm)
    assert list(segments.cat.categories) == list(SEGMENTS)
    counts = segment_counts(cm).set_index("augmentation")
    for augmentation in ("affine", "cutmix"):
        rows = cm[cm["augmentation"] == augmentation]
        b = rows["baseline_pred"].to_numpy() == rows["label"].to_numpy()
        m = rows["model_pred"].to_numpy() == rows["label"].to_numpy()
        expected = {"both_correct": np.sum(b & m), "both_wrong": np.sum(~b & ~m),
                    "only_baseline_correct": np.sum(b & ~m), "only_augmented_correct": np.sum(~b & m)}
        assert counts.loc[augmentation, list(SEGMENTS)].to_dict() == expected
        assert counts.loc[augmentation, "total"] == len(rows)
    by_seed = segment_counts(cm, by_seed=True)
    assert len(by_seed) == 4 and by_seed["total"].sum() == len(cm)
    assert by_seed.groupby("augmentation")["both_wrong"].sum().to_dict() == counts["both_wrong"].to_dict()


def test_segment_counts_list_empty_segments():
    cm = _cam_metrics(n=5)
    cm["baseline_pred"] = cm["label"]
    cm["model_pred"] = cm["label"]
    counts = segment_counts(cm)
    assert (counts["both_correct"] == counts["total"]).all()
    assert (counts[["both_wrong", "only_baseline_correct", "only_augmented_correct"]] == 0).all().all()
