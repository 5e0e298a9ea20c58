"""Affine, elastic and colour-jitter augmentations against torchvision's functional ops, given the same random
parameters.

The parameters are drawn from the per-sample keys by :mod:`auglens.augment.random` (streams 1-4 for the
affine parameters and the jitter factors, stream 1 for the elastic noise); a change of those streams changes
every augmented image of every study, so these tests are meant to notice it.
"""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from auglens.augment import build_augmentation, sample_keys
from auglens.augment import random as rnd

N, H, W = 4, 12, 16  # non-square, so width and height cannot be swapped unnoticed


def _batch(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(N, 1, H, W, generator=generator), sample_keys(seed, 3, torch.arange(N) * 7)


def test_affine_is_torchvisions_affine_with_the_drawn_parameters():
    images, keys = _batch(1)
    degrees, shear, scale, translate = 20.0, 10.0, (0.8, 1.2), 0.1
    augmentation = build_augmentation("affine", degrees=degrees, translate=translate, scale=scale, shear=shear)
    got = augmentation(images, torch.zeros(N, dtype=torch.long), keys).images

    angle = rnd.uniform_range(keys, 1, -degrees, degrees).squeeze(1)
    shear_angle = rnd.uniform_range(keys, 2, -shear, shear).squeeze(1)
    factor = rnd.uniform_range(keys, 3, *scale).squeeze(1)
    shift = rnd.uniform_range(keys, 4, -translate, translate, count=2)  # fractions of the width / height
    expected = torch.stack([
        # torchvision's shear angle has the opposite sign convention (the range is symmetric).
        TF.affine(images[i], angle=float(angle[i]), translate=[float(shift[i, 0]) * W, float(shift[i, 1]) * H],
                  scale=float(factor[i]), shear=[-float(shear_angle[i]), 0.0],
                  interpolation=InterpolationMode.BILINEAR)
        for i in range(N)])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_pure_scaling_is_torchvisions_scaling():
    images, keys = _batch(2)
    augmentation = build_augmentation("affine", degrees=0.0, translate=0.0, scale=(1.3, 1.3), shear=0.0)
    got = augmentation(images, torch.zeros(N, dtype=torch.long), keys).images
    expected = TF.affine(images, angle=0.0, translate=[0, 0], scale=1.3, shear=[0.0, 0.0],
                         interpolation=InterpolationMode.BILINEAR)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_elastic_is_torchvisions_elastic_with_the_drawn_displacement():
    images, keys = _batch(3)
    alpha, sigma = 8.0, 1.5
    got = build_augmentation("elastic", alpha=alpha, sigma=sigma)(images, torch.zeros(N, dtype=torch.long), keys).images

    noise = rnd.uniform_range(keys, 1, -1.0, 1.0, count=2 * H * W).view(N, 2, H, W).float()
    radius = max(1, math.ceil(3 * sigma))  # the kernel covers +-3 sigma
    smooth = TF.gaussian_blur(noise, kernel_size=[2 * radius + 1] * 2, sigma=[sigma, sigma])
    # torchvision's displacement is in normalised grid units: pixels * 2 / side.
    displacement = torch.stack([smooth[:, 0] * alpha * 2 / W, smooth[:, 1] * alpha * 2 / H], dim=-1)
    expected = torch.stack([TF.elastic(images[i], displacement[i : i + 1], interpolation=InterpolationMode.BILINEAR)
                            for i in range(N)])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert (got - images).abs().max() > 0.1  # the deformation is not negligible


def test_colour_jitter_is_torchvisions_brightness_contrast_saturation_with_the_drawn_factors():
    generator = torch.Generator().manual_seed(4)
    images, keys = torch.rand(N, 3, H, W, generator=generator), sample_keys(4, 0, torch.arange(N))
    spread = {"brightness": 0.4, "contrast": 0.5, "saturation": 0.6}
    got = build_augmentation("color_jitter", **spread, hue=0.0)(images, torch.zeros(N, dtype=torch.long), keys).images

    def factors(stream, name):  # uniform in [max(0, 1 - spread), 1 + spread], streams 1-3 in this order
        return rnd.uniform_range(keys, stream, max(0.0, 1 - spread[name]), 1 + spread[name]).squeeze(1).float()

    brightness, contrast, saturation = factors(1, "brightness"), factors(2, "contrast"), factors(3, "saturation")
    expected = torch.stack([
        TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(images[i], float(brightness[i])),
                                                float(contrast[i])), float(saturation[i]))
        for i in range(N)])
    # hue = 0 still goes through the YIQ round trip, whose float32 matrix inverse is exact to ~1e-5 only.
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-4)
