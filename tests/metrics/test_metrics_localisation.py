"""Ground-truth localisation metrics against hand-made cases and a numpy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from auglens.metrics.localisation import energy_pointing_game, top_region_iou


def _disk_masks(n=6, size=20, seed=0):
    """Random disks: (N, H, W) bool masks of known objects, each covering 20-40 % of the image."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:size, :size]
    masks = []
    for _ in range(n):
        r = rng.uniform(0.28, 0.34) * size
        cy, cx = rng.uniform(r, size - r, 2)
        masks.append((ys - cy) ** 2 + (xs - cx) ** 2 <= r * r)
    return torch.from_numpy(np.stack(masks))


def test_a_cam_exactly_on_the_mask_scores_one():
    masks = _disk_masks()
    cams = masks.float()
    assert torch.equal(energy_pointing_game(cams, masks), torch.ones(len(masks), dtype=torch.float64))
    for y in (20.0, 10.0, 5.0):
        smallest = float(masks.flatten(1).float().mean(1).min()) * 100
        assert smallest >= y  # the region is the mask's tied pixels
        assert torch.equal(top_region_iou(cams, masks, y), torch.ones(len(masks), dtype=torch.float64))


def test_a_cam_off_the_object_scores_zero():
    masks = _disk_masks()
    cams = (~masks).float() * torch.rand(masks.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(energy_pointing_game(cams, masks), torch.zeros(len(masks), dtype=torch.float64))
    assert torch.equal(top_region_iou(cams, masks, 10.0), torch.zeros(len(masks), dtype=torch.float64))


def test_a_blob_on_the_object_beats_the_same_blob_beside_it():
    size = 32
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    mask = ((ys - 10) ** 2 + (xs - 10) ** 2 <= 36).unsqueeze(0)
    on = torch.exp(-((ys - 10) ** 2 + (xs - 10) ** 2) / 8.0).unsqueeze(0)
    off = torch.exp(-((ys - 22) ** 2 + (xs - 22) ** 2) / 8.0).unsqueeze(0)
    assert float(energy_pointing_game(on, mask)) > 0.95 > 0.05 > float(energy_pointing_game(off, mask))
    assert float(top_region_iou(on, mask, 10.0)) > 0.8 and float(top_region_iou(off, mask, 10.0)) == 0.0


@pytest.mark.parametrize("y", [20.0, 10.0, 5.0, 7.0])
def test_matches_a_numpy_reference(y):
    rng = np.random.default_rng(3)
    cams = rng.normal(size=(12, 14, 15)).clip(-0.5, None)
    cams[0] = np.round(cams[0])  # ties
    masks = rng.random((12, 14, 15)) < 0.3
    energy = np.array([np.clip(c, 0, None)[m].sum() / np.clip(c, 0, None).sum() for c, m in zip(cams, masks)])
    ious = []
    for c, m in zip(cams, masks):
        threshold = -np.percentile(-c.ravel(), y, method="inverted_cdf")
        region = c >= threshold
        ious.append((region & m).sum() / (region | m).sum())
    np.testing.assert_allclose(energy_pointing_game(cams, masks).numpy(), energy, rtol=1e-12)
    np.testing.assert_allclose(top_region_iou(torch.from_numpy(cams), torch.from_numpy(masks), y).numpy(),
                               np.array(ious), rtol=1e-12)


def test_undefined_cases_are_nan_not_numbers():
    masks = _disk_masks(4)
    cams = masks.double().clone()
    masks[0] = False  # no object
    cams[1] = 0.0  # no attention
    cams[2, 0, 0] = math.nan
    energy = energy_pointing_game(cams, masks)
    iou = top_region_iou(cams, masks, 10.0)
    assert torch.isnan(energy[:3]).all() and float(energy[3]) == 1.0
    assert torch.isnan(iou[[0, 2]]).all() and not torch.isnan(iou[[1, 3]]).any()


def test_shapes_must_match():
    with pytest.raises(ValueError, match="resize the masks"):
        energy_pointing_game(torch.rand(2, 8, 8), torch.ones(2, 16, 16))


# ---------------------------------------------------------------------------------------------- registry and config

def test_mask_metrics_give_the_models_value_and_its_change_from_the_baseline():
    from auglens.metrics import compute_pair_metrics, metric_columns, spec_for_column

    metrics = ["mad", "mask_energy", ("mask_iou", {"percents": [20, 10]})]
    columns = metric_columns(metrics)
    assert columns == ["mad", "mask_energy", "mask_energy_change", "mask_iou_20", "mask_iou_20_change",
                       "mask_iou_10", "mask_iou_10_change"]
    assert {spec_for_column(c).name for c in columns[1:3]} == {"mask_energy"}
    assert {spec_for_column(c).name for c in columns[3:]} == {"mask_iou"}
    masks = _disk_masks(5)
    on_object = masks.double()
    diffuse = torch.rand(masks.shape, generator=torch.Generator().manual_seed(0)).double()
    out = compute_pair_metrics(metrics, diffuse, on_object, masks=masks)
    assert list(out) == columns
    assert torch.equal(out["mask_energy"], torch.ones(5, dtype=torch.float64))
    assert torch.allclose(out["mask_energy_change"], 1 - energy_pointing_game(diffuse, masks))
    assert bool((out["mask_energy_change"] > 0).all())  # attention moved onto the object
    assert torch.allclose(out["mask_iou_10_change"], 1 - top_region_iou(diffuse, masks, 10))
    with pytest.raises(ValueError, match="need object masks"):
        compute_pair_metrics(["mask_energy"], diffuse, on_object)


def test_a_config_asking_for_mask_metrics_on_a_data_set_without_masks_is_an_error():
    from auglens import config

    ok = config.from_dict({"data": {"name": "synthetic"}, "metrics": {"names": ["mad", "mask_energy", "mask_iou"]}})
    assert "mask_iou" in [m.name for m in ok.metrics]
    with pytest.raises(config.ConfigError, match="does not have; use oxford_iiit_pet, synthetic"):
        config.from_dict({"data": {"name": "fashion_mnist"}, "metrics": {"names": ["mask_energy"]}})


def test_float32_and_flattened_cams_are_computed_in_float64():
    rng = np.random.default_rng(5)
    cams = rng.normal(size=(8, 12, 12)).astype(np.float32)
    masks = rng.random((8, 12, 12)) < 0.4
    exact = cams.astype(np.float64)  # float32 values are exact in float64: the float64 sums are the reference
    energy = np.array([np.clip(c, 0, None)[m].sum() / np.clip(c, 0, None).sum() for c, m in zip(exact, masks)])
    for cam, mask in ((torch.from_numpy(cams), torch.from_numpy(masks)),
                      (torch.from_numpy(cams).flatten(1), torch.from_numpy(masks).flatten(1))):  # (N, D)
        got = energy_pointing_game(cam, mask)
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), energy, rtol=1e-14, atol=0)
        iou = top_region_iou(cam, mask, 10.0)
        assert iou.dtype == torch.float64
        torch.testing.assert_close(iou, top_region_iou(torch.from_numpy(exact), torch.from_numpy(masks), 10.0))
    with pytest.raises(ValueError, match="same shape"):
        energy_pointing_game(torch.rand(5), torch.ones(5))


def test_a_cam_with_little_energy_is_scored_like_any_other():
    """The share is scale-free: a CAM whose values sum to less than 1 gets the same share as the CAM times 1000."""
    masks = _disk_masks(4)
    cams = torch.rand(masks.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1e-5
    share = energy_pointing_game(cams, masks)
    expected = (cams * masks).flatten(1).sum(1).numpy() / cams.flatten(1).sum(1).numpy()
    assert (cams.flatten(1).sum(1) < 1).all() and (expected > 0.1).all()
    np.testing.assert_allclose(share.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(energy_pointing_game(cams * 1000, masks).numpy(), expected, rtol=1e-12)
