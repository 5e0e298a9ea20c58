"""Colour options the earlier comparisons did not reach: ColorJitter with a neutral adjustment among active
ones, the fixed order, the YIQ hue space through the augmentation; RGB -> HSV against ``colorsys``;
Equalize's probability away from 1/2 and at its bounds. And the key mixing every draw comes from: distinct
keys give distinct draws and distinct derived keys, for every stream (the mixing must be a bijection)."""

from __future__ import annotations

import colorsys

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment import random as rnd
from auglens.augment.filters import rgb_to_hsv, rotate_hue_yiq

ATOL_32 = 2e-6  # torchvision's hue adjustment computes in float32


def _images(n=8, c=3, h=8, w=8, dtype=torch.float32, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _keys(n, seed=0):
    return sample_keys(seed, 0, torch.arange(n))


def _torchvision_params(p, i):
    return dict(fn_idx=p["order"][i].tolist(), brightness_factor=float(p["brightness"][i]),
                contrast_factor=float(p["contrast"][i]), saturation_factor=float(p["saturation"][i]),
                hue_factor=float(p["hue"][i]))


def test_a_neutral_adjustment_is_skipped_and_the_others_still_apply():
    # brightness = 0 is the range (1, 1): torchvision skips it, wherever it falls in the image's order.
    params = dict(brightness=0.0, contrast=0.5, saturation=0.5, hue=0.2)
    aug, reference = AUGMENTATIONS.build("color_jitter", **params), T.ColorJitter(**params)
    n = 48
    x, keys = _images(n), _keys(n, seed=6)
    out = aug(x, torch.zeros(n, dtype=torch.int64), keys).images
    p = aug.params(keys)
    assert bool((p["order"][:, 0] == 0).any())  # brightness first: the other three follow it
    for i in range(n):
        their = {**_torchvision_params(p, i), "brightness_factor": None}
        torch.testing.assert_close(out[i], reference.transform(x[i], their), atol=ATOL_32, rtol=0)


def test_fixed_order_applies_brightness_contrast_saturation_hue():
    aug = AUGMENTATIONS.build("color_jitter", order="fixed")
    x, keys = _images(), _keys(8, seed=2)
    p = aug.params(keys)
    assert p["order"].shape == (8, 4) and bool((p["order"] == torch.arange(4)).all())
    out = aug(x, torch.zeros(8, dtype=torch.int64), keys).images
    for i in range(8):
        expected = TF.adjust_brightness(x[i], float(p["brightness"][i]))
        expected = TF.adjust_contrast(expected, float(p["contrast"][i]))
        expected = TF.adjust_saturation(expected, float(p["saturation"][i]))
        expected = TF.adjust_hue(expected, float(p["hue"][i]))
        torch.testing.assert_close(out[i], expected, atol=ATOL_32, rtol=0)


def test_yiq_hue_space_rotates_the_chroma_plane():
    aug = AUGMENTATIONS.build("color_jitter", brightness=0.0, contrast=0.0, saturation=0.0, hue=0.3, hue_space="yiq")
    x, keys = _images(), _keys(8, seed=3)
    out = aug(x, torch.zeros(8, dtype=torch.int64), keys).images
    assert torch.equal(out, rotate_hue_yiq(x, aug.params(keys)["hue"]))


def test_rgb_to_hsv_equals_colorsys():
    g = torch.Generator().manual_seed(1)
    rgb = torch.rand(2, 3, 4, 6, generator=g, dtype=torch.float64)
    rgb[0, :, 0, :] = torch.tensor([[1.0, 0.0, 0.0, 0.3, 0.2, 0.5], [0.0, 1.0, 0.0, 0.3, 0.2, 0.5],
                                    [0.0, 0.0, 1.0, 0.3, 0.9, 0.1]])  # primaries, grey, blue and red maxima
    hsv = rgb_to_hsv(rgb)
    for n in range(2):
        for y in range(4):
            for x in range(6):
                expected = colorsys.rgb_to_hsv(*rgb[n, :, y, x].tolist())
                assert hsv[n, :, y, x].tolist() == pytest.approx(expected, abs=1e-12)


def test_equalize_probability_is_the_given_one():
    n = 4000
    aug = AUGMENTATIONS.build("equalize", p=0.2)
    rate = float(aug.params(_keys(n))["apply"].double().mean())
    assert abs(rate - 0.2) < 5 * (0.2 * 0.8 / n) ** 0.5


def test_equalize_probability_bounds():
    x = _images(n=4)
    assert torch.equal(AUGMENTATIONS.build("equalize", p=0.0)(x, torch.zeros(4, dtype=torch.int64), _keys(4)).images, x)
    with pytest.raises(ValueError, match="p must be a probability"):
        AUGMENTATIONS.build("equalize", p=1.5)


def test_distinct_keys_give_distinct_draws_and_derived_keys_in_every_stream():
    keys = torch.arange(4096, dtype=torch.int64)  # small keys: they differ in their low bits only
    for stream in (0, 1, 5, 4010, 9001):
        draws = rnd.uniform(keys, stream, count=3)
        assert len(torch.unique(draws)) == draws.numel(), stream
        derived = rnd.derive_keys(keys, stream)
        assert len(torch.unique(derived)) == len(keys), stream
    assert len(torch.unique(torch.stack([rnd.derive_keys(keys[:1], s) for s in range(100)]))) == 100
