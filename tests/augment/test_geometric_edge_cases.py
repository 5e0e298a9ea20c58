"""The geometric augmentations where the earlier comparisons did not look: the documented defaults (the
thesis's affine ranges, nearest resampling), degenerate ranges, per-axis translation, parameters of other
dtypes than the images', nearest elastic resampling, the elastic kernel truncated to small images (against
scipy), one-pixel crop boxes at the image's edge, and the independence of RandomAffine's five draws.

Oracles: torchvision's functional ops and transforms on float64 images (to 1e-12), ``scipy.ndimage``'s
mirror-padded convolution, and the documented ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from scipy import ndimage

from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment import geometric
from auglens.augment import random as rnd

ATOL_64 = 1e-12


def _images(n=4, c=3, h=20, w=24, dtype=torch.float64, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _keys(n, seed=0):
    return sample_keys(seed, 0, torch.arange(n))


# ---------------------------------------------------------------------------------------------- affine

def test_affine_with_float32_parameters_computes_torchvisions_float64_matrix():
    # torchvision builds the matrix from Python floats (float64); float32 angles and shears must be widened
    # before the trigonometry, or the bilinear samples move by ~1e-7.
    x = _images()
    angle = torch.tensor([12.3, -7.1, 33.3, 171.0], dtype=torch.float32)
    translate = torch.tensor([[2.0, -1.0], [0.0, 3.0], [-2.0, -2.0], [1.0, 0.0]], dtype=torch.float32)
    scale = torch.tensor([0.93, 1.07, 1.0, 1.1], dtype=torch.float32)
    shear = torch.tensor([[5.5, 0.7], [-8.3, 2.1], [0.3, -4.4], [9.1, -3.3]], dtype=torch.float32)
    ours = geometric.affine(x, angle, translate, scale, shear, "bilinear")
    for i in range(4):
        expected = TF.affine(x[i], angle=float(angle[i]), translate=translate[i].int().tolist(),
                             scale=float(scale[i]), shear=shear[i].tolist(),
                             interpolation=TF.InterpolationMode.BILINEAR, fill=0)
        torch.testing.assert_close(ours[i], expected, atol=ATOL_64, rtol=0)


def test_functional_affine_and_warp_resample_nearest_by_default():
    from auglens.augment.ops import warp

    x = _images()
    angle = torch.tensor([10.0, -20.0, 5.0, 0.0], dtype=torch.float64)
    zeros2 = torch.zeros(4, 2, dtype=torch.float64)
    ones = torch.ones(4, dtype=torch.float64)
    default = geometric.affine(x, angle, zeros2, ones, zeros2)
    assert torch.equal(default, geometric.affine(x, angle, zeros2, ones, zeros2, "nearest"))
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64).expand(4, 2, 3)
    assert torch.equal(warp(x, identity), x)


def test_random_affine_defaults_are_the_thesis_ranges_with_nearest_resampling():
    # docs/methodology.md: affine ±15°, ±10 % translation, scale 0.9–1.1, x shear ±10°.
    aug = AUGMENTATIONS.build("affine")
    assert aug.degrees == (-15.0, 15.0) and aug.translate == (0.1, 0.1) and aug.scale == (0.9, 1.1)
    assert aug.shear == (-10.0, 10.0, 0.0, 0.0) and aug.interpolation == "nearest"
    x, keys = _images(), _keys(4, seed=3)
    out = aug(x, torch.zeros(4, dtype=torch.int64), keys).images
    p = aug.params(keys, 20, 24)
    reference = T.RandomAffine(15.0, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10.0)  # nearest, fill 0
    for i in range(4):
        params = dict(angle=float(p["angle"][i]), translate=p["translate"][i].int().tolist(),
                      scale=float(p["scale"][i]), shear=p["shear"][i].tolist())
        torch.testing.assert_close(out[i], reference.transform(x[i], params), atol=ATOL_64, rtol=0)


def test_a_range_of_one_value_is_that_value():
    # torchvision accepts (v, v) and always draws v.
    aug = AUGMENTATIONS.build("affine", degrees=(5.0, 5.0), shear=(2.0, 2.0))
    p = aug.params(_keys(50), 16, 16)
    assert bool((p["angle"] == 5.0).all()) and bool((p["shear"][:, 0] == 2.0).all())


def test_each_axis_shifts_by_its_own_fraction():
    p = AUGMENTATIONS.build("affine", translate=(0.0, 0.25)).params(_keys(500), 20, 24)
    assert bool((p["translate"][:, 0] == 0).all())  # no x shift at all
    assert float(p["translate"][:, 1].abs().max()) == 5.0  # up to 0.25 * 20 rows


def test_random_affine_draws_its_five_parameters_independently():
    # Each parameter has its own random stream; two sharing one would move together (|r| = 1).
    aug = AUGMENTATIONS.build("affine", degrees=30.0, translate=(0.4, 0.4), scale=(0.5, 1.5),
                              shear=(-10.0, 10.0, -20.0, 20.0))
    p = aug.params(_keys(4000, seed=7), 100, 100)
    columns = torch.stack([p["angle"], p["translate"][:, 0], p["translate"][:, 1], p["scale"],
                           p["shear"][:, 0], p["shear"][:, 1]]).numpy()
    r = np.corrcoef(columns)
    off_diagonal = r[~np.eye(6, dtype=bool)]
    assert float(np.abs(off_diagonal).max()) < 0.08, r  # 5 standard errors of r for 4000 independent pairs


# ---------------------------------------------------------------------------------------------- elastic

def test_elastic_augmentation_with_nearest_resampling_is_torchvisions():
    aug = AUGMENTATIONS.build("elastic", alpha=30.0, sigma=3.0, interpolation="nearest")
    x, keys = _images(h=28, w=28), _keys(4, seed=5)
    out = aug(x, torch.zeros(4, dtype=torch.int64), keys).images
    field = aug.params(keys, 28, 28, dtype=torch.float64)["displacement"]
    reference = T.ElasticTransform(alpha=30.0, sigma=3.0, interpolation=T.InterpolationMode.NEAREST)
    for i in range(4):
        expected = reference.transform(x[i], {"displacement": field[i : i + 1]})
        torch.testing.assert_close(out[i], expected, atol=ATOL_64, rtol=0)


def test_elastic_takes_a_displacement_of_another_dtype_as_torchvision():
    x = _images(dtype=torch.float32)
    displacement = 0.05 * torch.randn(4, 20, 24, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = geometric.elastic(x, displacement)
    assert ours.dtype == torch.float32
    for i in range(4):
        torch.testing.assert_close(ours[i], TF.elastic(x[i], displacement[i : i + 1], fill=0), atol=2e-6, rtol=0)


@pytest.mark.parametrize("height, width, sigma", [(12, 10, 5.0), (9, 14, 1.5)])
def test_elastic_field_is_the_noise_blurred_by_scipy_and_scaled_per_axis(height, width, sigma):
    # The first case's kernel (radius 20) is wider than the image: it is truncated to radius min(H, W) - 1,
    # the widest that reflect padding allows; the second is not truncated.
    alpha, n = 40.0, 3
    keys = _keys(n, seed=4)
    field = AUGMENTATIONS.build("elastic", alpha=alpha, sigma=sigma).params(keys, height, width,
                                                                            dtype=torch.float64)["displacement"]
    noise = rnd.uniform_range(keys, 1, -1.0, 1.0, count=2 * height * width).view(n, 2, height, width).numpy()
    size = int(8 * sigma + 1)
    radius = min((size + 1) // 2 if size % 2 == 0 else size // 2, min(height, width) - 1)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    smooth = ndimage.convolve1d(ndimage.convolve1d(noise, kernel, axis=3, mode="mirror"), kernel, axis=2,
                                mode="mirror")
    expected = np.stack([smooth[:, 0] * alpha / width, smooth[:, 1] * alpha / height], axis=-1)
    np.testing.assert_allclose(field.numpy(), expected, atol=ATOL_64, rtol=0)


# ---------------------------------------------------------------------------------------------- resized crop

def test_one_pixel_boxes_at_the_edges_equal_torchvision():
    # A box of one pixel in the first row or column: the resampling weights must not reach outside the image.
    x = _images()
    top, left = torch.tensor([0, 0, 19, 5]), torch.tensor([0, 23, 0, 0])
    height, width = torch.tensor([1, 1, 1, 15]), torch.tensor([1, 1, 1, 1])
    ours = geometric.resized_crop(x, top, left, height, width)
    for i in range(4):
        expected = TF.resized_crop(x[i], int(top[i]), int(left[i]), int(height[i]), int(width[i]), [20, 24],
                                   antialias=True)
        torch.testing.assert_close(ours[i], expected, atol=ATOL_64, rtol=0)
    assert torch.equal(ours[0], x[0, :, :1, :1].expand(3, 20, 24))
