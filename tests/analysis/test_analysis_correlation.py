"""auglens.analysis.correlation: correlation maps (Figs 5.11 ff.), pair frequencies (Tables 5.1/5.2), clustering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from auglens.analysis import (
    cluster_augmentations,
    correlation_map,
    correlation_maps,
    extreme_pairs,
    metric_matrix,
    pair_frequencies,
)


def _aug_metrics(values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long aug_metrics frame from {augmentation: {metric: (N,)}} built by hand."""
    rows = []
    for augmentation, metrics in values.items():
        n = len(next(iter(metrics.values())))
        frame = pd.DataFrame({"augmentation": augmentation, "image": np.arange(n), "label": np.arange(n) % 3,
                              **metrics, "n_seeds": 2, "model_correct_share": 0.5})
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    base = rng.normal(size=40)
    values = {"affine": base + rng.normal(scale=0.3, size=40), "cutmix": base + rng.normal(scale=1.0, size=40),
              "blur": rng.normal(size=40), "crop": -base + rng.normal(scale=0.5, size=40)}
    return _aug_metrics({a: {"mad": v, "pearson": v**2} for a, v in values.items()}), values


def test_correlation_map_equals_numpy_corrcoef(frame):
    aug_metrics, values = frame
    corr = correlation_map(aug_metrics, "mad")
    names = list(values)
    assert list(corr.columns) == names and list(corr.index) == names
    np.testing.assert_allclose(corr.to_numpy(), np.corrcoef(np.stack([values[a] for a in names])), atol=1e-12)
    reordered = correlation_map(aug_metrics, "mad", order=["crop", "affine", "blur", "cutmix"])
    assert list(reordered.columns) == ["crop", "affine", "blur", "cutmix"]
    assert reordered.loc["crop", "affine"] == pytest.approx(corr.loc["affine", "crop"])


def test_correlation_map_uses_pairwise_complete_images(frame):
    aug_metrics, values = frame
    aug_metrics = aug_metrics.copy()
    nan_rows = {"affine": [0, 1, 2], "blur": [2, 3, 10]}
    for augmentation, images in nan_rows.items():
        rows = (aug_metrics["augmentation"] == augmentation) & aug_metrics["image"].isin(images)
        aug_metrics.loc[rows, "mad"] = np.nan
    corr = correlation_map(aug_metrics, "mad")
    for a in values:
        for b in values:
            keep = np.ones(40, bool)
            keep[nan_rows.get(a, [])] = False
            keep[nan_rows.get(b, [])] = False
            expected = np.corrcoef(values[a][keep], values[b][keep])[0, 1]
            assert corr.loc[a, b] == pytest.approx(expected, abs=1e-12)


def test_correlation_maps_cover_every_metric_and_constant_columns_give_nan(frame):
    aug_metrics, _ = frame
    aug_metrics = aug_metrics.copy()
    aug_metrics.loc[aug_metrics["augmentation"] == "blur", "pearson"] = 0.7  # constant -> undefined r
    maps = correlation_maps(aug_metrics)
    assert list(maps) == ["mad", "pearson"]
    assert maps["pearson"]["blur"].isna().all()
    assert metric_matrix(aug_metrics, "mad").shape == (40, 4)
    with pytest.raises(KeyError, match="metric columns are"):
        metric_matrix(aug_metrics, "nope")


def _corr(names, upper: dict[tuple[str, str], float]) -> pd.DataFrame:
    corr = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for (a, b), r in upper.items():
        corr.loc[a, b] = corr.loc[b, a] = r
    return corr


def test_pair_frequencies_hand_computed():
    names = ["A", "B", "C", "D"]  # 6 pairs; k = 2 of each kind per map
    m1 = _corr(names, {("A", "B"): 0.9, ("A", "C"): 0.8, ("A", "D"): 0.1, ("B", "C"): 0.5, ("B", "D"): 0.2,
                       ("C", "D"): 0.6})
    m2 = _corr(names, {("A", "B"): 0.7, ("A", "C"): 0.1, ("A", "D"): 0.95, ("B", "C"): 0.3, ("B", "D"): 0.4,
                       ("C", "D"): 0.0})
    m3 = _corr(names, {("A", "B"): 0.99, ("A", "C"): np.nan, ("A", "D"): 0.5, ("B", "C"): 0.4, ("B", "D"): 0.3,
                       ("C", "D"): 0.45})
    # strongest 2: m1 {AB, AC}, m2 {AD, AB}, m3 {AB, AD}; weakest 2: m1 {AD, BD}, m2 {CD, AC}, m3 {BD, BC}
    strong = pair_frequencies({"m1": m1, "m2": m2, "m3": m3}, k=2, strongest=True)
    assert dict(zip(strong["pair"], strong["count"])) == {"A – B": 3, "A – D": 2, "A – C": 1}
    assert list(strong["count"]) == [3, 2, 1]
    assert strong.set_index("pair").loc["A – D", "metrics"] == "m2, m3"
    weak = pair_frequencies({"m1": m1, "m2": m2, "m3": m3}, k=2, strongest=False)
    expected = {"B – D": 2, "A – D": 1, "C – D": 1, "A – C": 1, "B – C": 1}
    assert dict(zip(weak["pair"], weak["count"])) == expected
    # unordered: the same pair with the columns in another order counts as the same pair
    m1_reordered = m1.loc[names[::-1], names[::-1]]
    again = pair_frequencies({"m1": m1_reordered, "m2": m2, "m3": m3}, k=2)
    assert again.set_index("pair")["count"].sum() == 6 and again["count"].max() == 3


def test_extreme_pairs_rank_by_signed_or_absolute_r(frame):
    aug_metrics, values = frame
    corr = correlation_map(aug_metrics, "mad")
    names = list(corr.columns)
    pairs = [(names[i], names[j], corr.iloc[i, j]) for i in range(len(names)) for j in range(i + 1, len(names))]
    lowest = min(pairs, key=lambda p: p[2])
    closest_to_zero = min(pairs, key=lambda p: abs(p[2]))
    largest_magnitude = max(pairs, key=lambda p: abs(p[2]))
    assert lowest[2] < -0.5 and abs(closest_to_zero[2]) < 0.3  # crop is anti-correlated, blur unrelated
    signed = extreme_pairs(corr, k=1, strongest=False)
    assert tuple(signed.loc[0, ["aug_a", "aug_b"]]) == lowest[:2]
    absolute = extreme_pairs(corr, k=1, strongest=False, rank_by="absolute")
    assert tuple(absolute.loc[0, ["aug_a", "aug_b"]]) == closest_to_zero[:2]
    strongest = extreme_pairs(corr, k=1, strongest=True, rank_by="absolute")
    assert tuple(strongest.loc[0, ["aug_a", "aug_b"]]) == largest_magnitude[:2]
    counted = pair_frequencies({"mad": corr}, k=1, strongest=False, rank_by="absolute")
    assert counted.loc[0, "pair"] == f"{closest_to_zero[0]} – {closest_to_zero[1]}"
    with pytest.raises(ValueError, match="rank_by"):
        extreme_pairs(corr, rank_by="magnitude")


def test_extreme_pairs_caps_k_and_handles_tiny_maps():
    three = _corr(["A", "B", "C"], {("A", "B"): 0.1, ("A", "C"): 0.5, ("B", "C"): 0.9})
    strongest = extreme_pairs(three, k=4)
    weakest = extreme_pairs(three, k=4, strongest=False)
    assert strongest[["aug_a", "aug_b"]].values.tolist() == [["B", "C"]]  # 3 pairs -> k capped to 1
    assert weakest[["aug_a", "aug_b"]].values.tolist() == [["A", "B"]]
    assert extreme_pairs(_corr(["A"], {}), k=4).empty
    assert extreme_pairs(_corr(["A", "B"], {("A", "B"): 0.3}), k=4).empty
    assert pair_frequencies({"m": _corr(["A"], {})}).empty
    with pytest.raises(ValueError):
        extreme_pairs(three, k=-1)


def test_clustering_matches_scipy_on_one_minus_r():
    names = ["A", "B", "C", "D"]
    corr = _corr(names, {("A", "B"): 0.9, ("A", "C"): 0.1, ("A", "D"): 0.2, ("B", "C"): 0.0, ("B", "D"): 0.1,
                         ("C", "D"): 0.8})
    result = cluster_augmentations(corr)
    expected = hierarchy.linkage(squareform(1 - corr.to_numpy(), checks=False), method="average")
    np.testing.assert_allclose(result.linkage, expected)
    assert result.labels == names
    assert set(result.leaves[:2]) in ({"A", "B"}, {"C", "D"})  # two clear groups
    first_merge = sorted(result.linkage[0, :2].astype(int))
    assert [names[i] for i in first_merge] == ["A", "B"]  # r = 0.9: the closest pair joins first
    assert result.linkage[0, 2] == pytest.approx(0.1)
    nan_corr = corr.copy()
    nan_corr.loc["A", "C"] = nan_corr.loc["C", "A"] = np.nan
    assert cluster_augmentations(nan_corr).distance.loc["A", "C"] == pytest.approx(1.0)  # NaN counts as r = 0
    with pytest.raises(ValueError, match="at least 2"):
        cluster_augmentations(_corr(["A"], {}))
