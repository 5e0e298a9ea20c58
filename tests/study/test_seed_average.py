"""Step 12: the seed average of the per-image metric table, on a hand-made table with skewed seeds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from auglens import study


def _cam_metrics() -> pd.DataFrame:
    # Three seeds per (augmentation, image) with one outlying seed, so mean != median; a NaN in one cell.
    rows = []
    values = {("affine", 0): [0.0, 0.0, 9.0], ("affine", 1): [1.0, 2.0, 6.0],
              ("cutmix", 0): [5.0, 5.0, -4.0], ("cutmix", 1): [3.0, math.nan, 0.0]}
    for (augmentation, image), per_seed in values.items():
        for seed, value in zip((1, 2, 7), per_seed):
            rows.append({"augmentation": augmentation, "seed": seed, "image": image, "label": image + 2,
                         "baseline_pred": image + 2, "model_pred": image + 2 if seed == 7 else 0,
                         "mad": value, "pearson": -value / 10})
    return pd.DataFrame(rows)


def test_the_seed_average_is_the_mean_of_three_skewed_seeds():
    got = study.seed_average(_cam_metrics()).set_index(["augmentation", "image"]).sort_index()
    expected_mad = {("affine", 0): 3.0, ("affine", 1): 3.0, ("cutmix", 0): 2.0, ("cutmix", 1): 1.5}
    for key, mad in expected_mad.items():
        assert got.loc[key, "mad"] == mad, key
        assert np.isclose(got.loc[key, "pearson"], -mad / 10), key
        assert got.loc[key, "n_seeds"] == 3
        assert got.loc[key, "label"] == key[1] + 2
        # One seed of three classifies the image correctly: a share of 1/3 (the median would say 0).
        assert np.isclose(got.loc[key, "model_correct_share"], 1 / 3), key
    assert len(got) == 4


def test_the_seed_average_matches_pandas_on_random_tables():
    rng = np.random.default_rng(0)
    frame = _cam_metrics()
    frame["mad"] = rng.lognormal(size=len(frame))
    got = study.seed_average(frame).set_index(["augmentation", "image"])["mad"].sort_index()
    expected = frame.groupby(["augmentation", "image"])["mad"].apply(lambda s: float(np.mean(s.to_numpy())))
    np.testing.assert_allclose(got.to_numpy(), expected.sort_index().to_numpy(), rtol=1e-12)


def test_rows_keep_the_order_of_the_metric_table():
    # Augmentations in study order (not alphabetical), images in test-set order: the tables and report
    # list them as the study ran them.
    frame = _cam_metrics()
    frame = frame.iloc[::-1].reset_index(drop=True)  # cutmix before affine, image 1 before image 0
    got = study.seed_average(frame)
    assert list(zip(got["augmentation"], got["image"])) == [("cutmix", 1), ("cutmix", 0), ("affine", 1), ("affine", 0)]


def test_an_empty_metric_table_gives_an_empty_table_with_the_columns():
    empty = _cam_metrics().iloc[:0]
    got = study.seed_average(empty)
    assert len(got) == 0
    assert list(got.columns) == ["augmentation", "image", "label", "mad", "pearson", "n_seeds", "model_correct_share"]
