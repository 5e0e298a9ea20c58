"""Augmentations: per-sample seeded, batch-independent, and correct against independent references."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from auglens.augment import AUGMENTATIONS, THESIS_AUGMENTATIONS, sample_keys
from auglens.augment import random as rnd
from auglens.augment.mixing import box_masks


def _images(n=6, c=3, size=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g)


def test_thesis_augmentations_are_registered():
    assert set(THESIS_AUGMENTATIONS) <= set(AUGMENTATIONS.names())


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_range_and_determinism(name, channels):
    aug = AUGMENTATIONS.build(name)
    x, labels = _images(c=channels), torch.arange(6) % 3
    keys = sample_keys(7, 2, torch.arange(6))
    first, second = aug(x, labels, keys), aug(x.clone(), labels, keys)
    assert first.images.shape == x.shape and first.images.dtype == x.dtype
    assert float(first.images.min()) >= 0.0 and float(first.images.max()) <= 1.0
    assert torch.equal(first.images, second.images) and torch.equal(first.lam, second.lam)
    assert not torch.equal(first.images, x)


@pytest.mark.parametrize("name", [n for n in AUGMENTATIONS.names() if not AUGMENTATIONS.get(n).mixes_samples])
def test_sample_output_does_not_depend_on_its_batch(name):
    aug = AUGMENTATIONS.build(name)
    x, labels = _images(), torch.zeros(6, dtype=torch.int64)
    keys = sample_keys(1, 0, torch.arange(6))
    whole = aug(x, labels, keys).images
    alone = aug(x[4:5], labels[4:5], keys[4:5]).images
    assert torch.allclose(whole[4:5], alone, atol=1e-6)


def test_keys_depend_on_seed_epoch_and_index():
    base = sample_keys(1, 0, torch.arange(4))
    assert len(set(base.tolist())) == 4
    assert not torch.equal(base, sample_keys(2, 0, torch.arange(4)))
    assert not torch.equal(base, sample_keys(1, 1, torch.arange(4)))
    assert torch.equal(base[2:3], sample_keys(1, 0, torch.tensor([2])))


def test_uniform_draws_are_uniform():
    u = rnd.uniform(sample_keys(0, 0, torch.arange(20000)), stream=3).squeeze(1)
    counts = torch.histc(u.float(), bins=10, min=0, max=1)
    assert float(counts.min()) > 1800 and float(counts.max()) < 2200
    b = rnd.beta(sample_keys(0, 0, torch.arange(20000)), 5, 2.0, 1.0)
    assert abs(float(b.mean()) - 2 / 3) < 0.01


@pytest.mark.parametrize("name, neutral", [
    ("affine", dict(degrees=0.0, translate=0.0, scale=(1.0, 1.0), shear=0.0)),
    ("random_crop", dict(size_fraction=1.0)),
    ("elastic", dict(alpha=0.0, sigma=3.0)),
    ("color_jitter", dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)),
])
def test_neutral_parameters_give_the_identity(name, neutral):
    x = _images()
    out = AUGMENTATIONS.build(name, **neutral)(x, torch.zeros(6, dtype=torch.int64), sample_keys(0, 0, torch.arange(6)))
    assert torch.allclose(out.images, x, atol=1e-5)


def test_gaussian_blur_matches_torchvision_per_sample():
    aug = AUGMENTATIONS.build("gaussian_blur", kernel_size=5, sigma=(0.3, 2.0))
    x = _images()
    keys = sample_keys(3, 1, torch.arange(6))
    out = aug(x, torch.zeros(6, dtype=torch.int64), keys).images
    sigmas = rnd.uniform_range(keys, 1, 0.3, 2.0).squeeze(1)
    for i in range(6):
        expected = TF.gaussian_blur(x[i], [5, 5], [float(sigmas[i])] * 2)
        assert torch.allclose(out[i], expected, atol=1e-5), i


def test_equalize_matches_torchvision_on_bytes():
    x = torch.randint(0, 120, (4, 3, 16, 16), dtype=torch.uint8)
    out = AUGMENTATIONS.build("equalize")(x.float() / 255, torch.zeros(4, dtype=torch.int64),
                                          sample_keys(0, 0, torch.arange(4))).images
    assert torch.equal((out * 255).round().to(torch.uint8), TF.equalize(x))
    assert float(out.max()) == 1.0  # the dark images now span the full range


def test_brightness_only_jitter_scales_pixels():
    aug = AUGMENTATIONS.build("color_jitter", brightness=0.5, contrast=0.0, saturation=0.0, hue=0.0)
    x = _images() * 0.5
    keys = sample_keys(0, 0, torch.arange(6))
    factors = rnd.uniform_range(keys, 1, 0.5, 1.5).squeeze(1).float()
    out = aug(x, torch.zeros(6, dtype=torch.int64), keys).images
    assert torch.allclose(out, (x * factors.view(-1, 1, 1, 1)).clamp(0, 1), atol=1e-6)


def test_hue_rotation_keeps_grey_pixels():
    aug = AUGMENTATIONS.build("color_jitter", brightness=0.0, contrast=0.0, saturation=0.0, hue=0.5)
    grey = torch.rand(3, 1, 8, 8).expand(3, 3, 8, 8).contiguous()
    out = aug(grey, torch.zeros(3, dtype=torch.int64), sample_keys(0, 0, torch.arange(3))).images
    assert torch.allclose(out, grey, atol=1e-5)


@pytest.mark.parametrize("box", ["torchvision", "rounded"])
def test_cutmix_pastes_a_box_and_mixes_labels_by_area(box):
    aug = AUGMENTATIONS.build("cutmix", alpha=1.0, label="mixed", box=box)
    n = 64
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 16, 16) / n
    labels = torch.arange(n)
    out = aug(x, labels, sample_keys(0, 0, torch.arange(n)))
    for i in range(n):
        own = torch.isclose(out.images[i, 0], x[i, 0])
        assert abs(float(own.float().mean()) - float(out.lam[i])) < 1e-6
        partner = int(out.partner_labels[i])
        assert partner != i
        assert torch.allclose(out.images[i, 0][~own], x[partner, 0][~own])


def test_cutmix_box_area_follows_lambda_before_clipping():
    # Boxes centred in a large image are never clipped: their area share is exactly 1 - lambda (up to rounding).
    n, size = 2000, 200
    keys = sample_keys(0, 0, torch.arange(n))
    lam = rnd.beta(keys, 103, 1.0, 1.0)
    masks = box_masks(lam, keys, size, size)
    centre = rnd.uniform(keys, 102, count=2)
    side = torch.sqrt(1 - lam) * size
    inside = ((centre * size - side.unsqueeze(1) / 2 >= 0) & (centre * size + side.unsqueeze(1) / 2 <= size)).all(1)
    area = masks.flatten(1).float().mean(1)
    assert inside.sum() > 100
    assert torch.allclose(area[inside].double(), 1 - lam[inside], atol=3 / size)
    assert abs(float(lam.mean()) - 0.5) < 0.03  # Beta(1, 1)
