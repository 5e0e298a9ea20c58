"""Helpers of the colour and elastic transforms against independent references: HSV -> RGB against Python's
``colorsys`` (a hue of exactly one turn included), the elastic kernel's half-width against torchvision's rule."""

from __future__ import annotations

import colorsys

import pytest
import torch

from auglens.augment import AUGMENTATIONS
from auglens.augment.filters import hsv_to_rgb
from auglens.augment.geometric import elastic_kernel_radius


def test_hsv_to_rgb_equals_colorsys():
    g = torch.Generator().manual_seed(0)
    hsv = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64)
    hsv[0, 0, 0, :] = torch.tensor([0.0, 1 / 6, 0.5, 5 / 6, 1.0, 0.999999])  # sector edges and a full turn
    rgb = hsv_to_rgb(hsv)
    for n in range(2):
        for y in range(5):
            for x in range(6):
                expected = colorsys.hsv_to_rgb(*hsv[n, :, y, x].tolist())
                assert rgb[n, :, y, x].tolist() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("sigma", [0.1, 0.5, 0.9, 1.0, 1.3, 2.0, 2.6, 3.0, 5.0, 7.3])
def test_elastic_kernel_radius_is_torchvisions(sigma):
    size = int(8 * sigma + 1)  # torchvision.transforms.v2.functional.elastic: kernel of int(8 sigma + 1) ...
    if size % 2 == 0:
        size += 1  # ... made odd
    assert elastic_kernel_radius(sigma) == (size - 1) // 2


@pytest.mark.parametrize("params", [
    dict(brightness=(0.5, 1.5), contrast=(0.0, 2.0), saturation=(1.2, 1.2), hue=(-0.2, 0.1)),
    dict(brightness=0.3, contrast=1.5, saturation=(0.0, 0.0), hue=(0.1, 0.1)),
    dict(brightness=(0.0, 1.0), contrast=(0.7, 3.0), saturation=0.25, hue=0.5),
])
def test_color_jitter_ranges_are_torchvisions(params):
    from torchvision.transforms import v2

    ours = AUGMENTATIONS.build("color_jitter", **params)
    theirs = v2.ColorJitter(**params)
    for name in ("brightness", "contrast", "saturation", "hue"):
        assert getattr(ours, name) == pytest.approx(tuple(getattr(theirs, name))), name


@pytest.mark.parametrize("params", [
    dict(brightness=(1.5, 0.5)), dict(brightness=(-0.1, 1.0)), dict(contrast=(0.5, 1.0, 2.0)), dict(saturation=-0.2),
    dict(hue=(-0.6, 0.1)), dict(hue=(0.1, 0.7)), dict(hue=(0.3, 0.2)), dict(hue=0.6), dict(hue=(0.1,)),
])
def test_color_jitter_refuses_what_torchvision_refuses(params):
    from torchvision.transforms import v2

    with pytest.raises((TypeError, ValueError)):
        v2.ColorJitter(**params)
    with pytest.raises(ValueError):
        AUGMENTATIONS.build("color_jitter", **params)


@pytest.mark.parametrize("params", [
    dict(degrees=20.0, translate=(0.2, 0.05), scale=(0.8, 1.3), shear=7.0),
    dict(degrees=(-5.0, 30.0), translate=(0.0, 1.0), scale=(1.0, 1.0), shear=(-3.0, 9.0)),
    dict(degrees=0.0, translate=(0.5, 0.5), scale=(0.5, 2.0), shear=(-3.0, 9.0, 1.0, 4.0)),
])
def test_affine_ranges_are_torchvisions(params):
    from torchvision.transforms import v2

    ours = AUGMENTATIONS.build("affine", **params)
    theirs = v2.RandomAffine(**params)
    assert ours.degrees == pytest.approx(tuple(theirs.degrees))
    assert ours.translate == pytest.approx(tuple(theirs.translate))
    assert ours.scale == pytest.approx(tuple(theirs.scale))
    assert ours.shear == pytest.approx((*theirs.shear, 0.0, 0.0)[:4])  # torchvision keeps 2 for no y shear
    assert ours.interpolation == "nearest"  # torchvision's default interpolation


@pytest.mark.parametrize("params", [
    dict(degrees=-5.0), dict(translate=(0.1, 1.2)), dict(translate=(0.1,)),
    dict(translate=(-0.1, 0.1)), dict(scale=(0.0, 1.0)), dict(shear=-2.0), dict(shear=(1.0, 2.0, 3.0)),
])
def test_affine_refuses_what_torchvision_refuses(params):
    from torchvision.transforms import v2

    with pytest.raises((TypeError, ValueError)):
        v2.RandomAffine(**{"degrees": 0.0, **params})
    with pytest.raises(ValueError):
        AUGMENTATIONS.build("affine", **params)


@pytest.mark.parametrize("params", [
    dict(degrees=(10.0, 5.0)), dict(shear=(5.0, 1.0, 0.0, 0.0)), dict(shear=(0.0, 1.0, 5.0, 1.0)),
])
def test_affine_refuses_reversed_ranges(params):
    # stricter than torchvision, which would draw from an empty range
    with pytest.raises(ValueError, match="min <= max"):
        AUGMENTATIONS.build("affine", **params)


def test_defaults_are_torchvisions():
    from torchvision.transforms import v2

    elastic, theirs = AUGMENTATIONS.build("elastic"), v2.ElasticTransform()
    assert (elastic.alpha, elastic.sigma) == (theirs.alpha[0], theirs.sigma[0]) and elastic.interpolation == "bilinear"
    assert AUGMENTATIONS.build("gaussian_blur").sigma == pytest.approx(tuple(v2.GaussianBlur(5).sigma))
    crop, theirs = AUGMENTATIONS.build("random_crop"), v2.RandomResizedCrop(8)
    assert crop.scale == pytest.approx(theirs.scale) and crop.ratio == pytest.approx(theirs.ratio)


@pytest.mark.parametrize("name, params", [
    ("gaussian_blur", dict(kernel_size=1, sigma=(0.5, 0.5))), ("gaussian_blur", dict(sigma=0.3)),
    ("random_crop", dict(scale=(1.0, 1.0), ratio=(1.0, 1.0))), ("random_crop", dict(scale=(0.2, 0.2))),
    ("random_crop", dict(size_fraction=1.0)), ("elastic", dict(alpha=0.0, sigma=0.5)),
    ("elastic", dict(interpolation="nearest")),
])
def test_boundary_parameters_are_accepted(name, params):
    aug = AUGMENTATIONS.build(name, **params)
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert aug(x, torch.zeros(2, dtype=torch.int64), torch.arange(2)).images.shape == x.shape
    if name == "gaussian_blur" and "kernel_size" not in params:
        assert aug.sigma == (0.3, 0.3)


@pytest.mark.parametrize("name, params", [
    ("gaussian_blur", dict(kernel_size=4)), ("gaussian_blur", dict(kernel_size=0)),
    ("gaussian_blur", dict(kernel_size=-1)), ("gaussian_blur", dict(kernel_size=9, sigma=(0.0, 1.0))),
    ("gaussian_blur", dict(sigma=(2.0, 1.0))), ("gaussian_blur", dict(sigma=(0.5, 0.6, 0.7))),
    ("random_crop", dict(scale=(0.0, 0.5))), ("random_crop", dict(scale=(0.5, 0.4))),
    ("random_crop", dict(scale=(0.5, 1.5))), ("random_crop", dict(scale=(0.5, 0.6, 0.7))),
    ("random_crop", dict(ratio=(0.0, 1.0))), ("random_crop", dict(ratio=(2.0, 1.0))),
    ("random_crop", dict(ratio=(1.0, 1.0, 1.0))), ("random_crop", dict(size_fraction=0.0)),
    ("random_crop", dict(size_fraction=1.5)), ("elastic", dict(alpha=-1.0)), ("elastic", dict(sigma=0.0)),
    ("elastic", dict(interpolation="bicubic")),
])
def test_out_of_range_parameters_are_refused(name, params):
    with pytest.raises(ValueError):
        AUGMENTATIONS.build(name, **params)
