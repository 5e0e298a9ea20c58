"""Mask statistics of the test-time distortions and the mixed-sample augmentations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment import random as rnd
from auglens.augment.mixed import fourier_masks, low_frequency_images
from auglens.distortion.distortions import (box_occlusion_masks, cut_occlusion, fourier_occlusion_masks, grid_shuffle,
                                            occlude, occlusion_fractions, saliency_occlusion_masks)


def _keys(n, seed=0):
    return sample_keys(seed, 0, torch.arange(n))


# ---------------------------------------------------------------------------------------------- grid shuffle

@pytest.mark.parametrize("grid", [2, 4, 8])
def test_grid_shuffle_is_a_permutation_of_tiles(grid):
    n, size = 5, 16
    x = torch.rand(n, 3, size, size)
    out = grid_shuffle(x, grid, _keys(n))
    t = size // grid

    def tiles(img):
        return [img[:, r * t : (r + 1) * t, c * t : (c + 1) * t] for r in range(grid) for c in range(grid)]

    moved = 0
    for i in range(n):
        before, after = tiles(x[i]), tiles(out[i])
        # every output tile is exactly one input tile, each used once
        sources = [next(j for j, b in enumerate(before) if torch.equal(a, b)) for a in after]
        assert sorted(sources) == list(range(grid * grid))
        moved += sources != list(range(grid * grid))
    assert moved >= n - 1  # identity permutations are possible but rare
    assert torch.equal(out, grid_shuffle(x, grid, _keys(n)))  # a pure function of the keys


def test_grid_shuffle_leaves_the_remainder_in_place():
    x = torch.rand(3, 1, 10, 11)
    out = grid_shuffle(x, 3, _keys(3))  # 3x3 tiles of 3x3 pixels; row 9 and column 9, 10 stay
    assert torch.equal(out[..., 9:, :], x[..., 9:, :]) and torch.equal(out[..., :, 9:], x[..., :, 9:])
    assert not torch.equal(out, x)


# ---------------------------------------------------------------------------------------------- CutOcclusion

def test_cut_occlusion_fraction_follows_beta_2_1_before_clipping():
    n, size = 4000, 64
    keys = _keys(n)
    fraction = occlusion_fractions(keys)
    assert abs(float(fraction.mean()) - 2 / 3) < 0.015  # E[Beta(2, 1)]
    masks = box_occlusion_masks(fraction, keys, size, size, restricted=False)
    # The box's unclipped area (side rounded to pixels) follows lam; its clipped area is smaller on average.
    unclipped = (fraction.sqrt() * size).round() ** 2 / size**2
    assert abs(float(unclipped.mean()) - 2 / 3) < 0.02
    realised = masks.flatten(1).double().mean(1)
    assert float(realised.mean()) < float(fraction.mean()) - 0.1
    # CutMix's box_masks rounds both edges, so a side may gain one pixel; clipping only ever removes area
    assert bool((realised <= ((fraction.sqrt() * size).ceil() + 1) ** 2 / size**2).all())


def test_restricted_boxes_lie_inside_and_remove_the_fraction():
    n, size = 2000, 32
    keys = _keys(n, seed=3)
    fraction = occlusion_fractions(keys)
    masks = box_occlusion_masks(fraction, keys, size, size, restricted=True)
    side = (fraction.sqrt() * size).round()
    area = masks.flatten(1).double().sum(1)
    assert torch.equal(area, side**2)  # never clipped
    assert torch.allclose(area / size**2, fraction, atol=2 * math.sqrt(1.0) / size + 1 / size**2)
    assert abs(float((area / size**2).mean()) - 2 / 3) < 0.02
    rows = masks.any(dim=2).double()
    first_row = rows.argmax(dim=1).double()
    # corners are spread over the whole valid range (top-left uniform)
    assert float(first_row[side < size / 2].max()) >= size / 2


def test_cut_occlusion_fills_black_mean_or_images():
    x = torch.rand(4, 3, 8, 8) * 0.5 + 0.5
    keys = _keys(4)
    black = cut_occlusion(x, keys, fraction=0.25, restricted=True)
    hidden = (black == 0).all(dim=1)
    assert torch.equal(hidden.flatten(1).sum(1), torch.full((4,), 16))
    other = torch.rand(4, 3, 8, 8)
    patched = cut_occlusion(x, keys, fraction=0.25, restricted=True, fill=other)
    assert torch.equal(patched[hidden.unsqueeze(1).expand_as(x)], other[hidden.unsqueeze(1).expand_as(x)])
    coloured = occlude(x, hidden, torch.tensor([0.1, 0.2, 0.3]))
    assert torch.allclose(coloured[0][:, hidden[0]], torch.tensor([[0.1], [0.2], [0.3]]).expand(3, 16))


# ---------------------------------------------------------------------------------------------- Fourier / saliency

def test_low_frequency_images_match_a_numpy_reference():
    # Independent reference: numpy's FFT on the same Gaussian draws, scaled as FMix's get_spectrum.
    h, w, decay, n = 12, 9, 3.0, 3
    keys = _keys(n)
    got = low_frequency_images(keys, h, w, decay).numpy()
    fw = w // 2 + 1
    real = rnd.normal(keys, 303, h * fw).view(n, h, fw).numpy()
    imag = rnd.normal(keys, 304, h * fw).view(n, h, fw).numpy()
    freqs = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.abs(np.fft.fftfreq(w)[:fw])[None, :] ** 2)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay
    expected = np.fft.irfftn(scale * (real + 1j * imag), s=(h, w), axes=(1, 2))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_fmix_masks_keep_exactly_lambda_of_the_pixels():
    n, h, w = 500, 10, 13
    keys = _keys(n)
    lam = rnd.beta(keys, 301, 1.0, 1.0)
    kept = fourier_masks(lam, keys, h, w).flatten(1).sum(1)
    low, high = torch.floor(lam * h * w), torch.ceil(lam * h * w)
    assert bool(((kept == low) | (kept == high)).all())
    assert 0.3 < float((kept == high).double()[low != high].mean()) < 0.7  # the coin flip


def test_fmix_augmentation_lambda_is_the_kept_share_and_its_pixels_are_the_images():
    n = 64
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 16, 16) / n
    out = AUGMENTATIONS.build("fmix")(x, torch.arange(n), _keys(n))
    own = torch.isclose(out.images, x).flatten(1).double().mean(1)
    assert torch.allclose(own, out.lam.double(), atol=1e-6)
    assert abs(float(out.lam.mean()) - 0.5) < 0.1  # Beta(1, 1)
    assert bool((out.partner_labels != torch.arange(n)).all())


def test_fourier_occlusion_removes_the_fraction_exactly():
    keys = _keys(50)
    masks = fourier_occlusion_masks(0.3, keys, 10, 10)
    assert set(masks.flatten(1).sum(1).tolist()) <= {30}


def test_release_fourier_occlusion_draws_the_share_from_beta_p_p():
    from scipy import stats

    from auglens.distortion.distortions import release_fourier_fractions
    from auglens.distortion.occlusion import occlusion_masks

    keys = _keys(4000)
    shares = release_fourier_fractions(0.3, keys)
    assert stats.kstest(shares.numpy(), stats.beta(0.3, 0.3).cdf).pvalue > 1e-3
    assert abs(float(shares.mean()) - 0.5) < 0.03  # whatever p: Beta(p, p) is symmetric
    masks = occlusion_masks("fourier", 0.3, keys[:200], 10, 10, fourier_fraction="release")
    removed = masks.flatten(1).sum(1).double() / 100
    assert (removed - shares[:200]).abs().max() <= 0.01 + 1e-9  # the drawn share, up to one pixel
    exact = occlusion_masks("fourier", 0.3, keys[:200], 10, 10)
    assert set(exact.flatten(1).sum(1).tolist()) == {30}
    assert release_fourier_fractions(0.0, keys[:5]).tolist() == [0.0] * 5


def test_occlusion_grad_cam_layer_of_preact_resnet18_is_the_releases_layer3():
    from auglens.models import build_model

    model = build_model("preact_resnet18", num_classes=10)
    assert model.auglens_occlusion_layer == "layer3"
    assert dict(model.named_modules())["layer3"] is model.layer3


def test_saliency_masks_occlude_the_most_or_least_salient_pixels():
    saliency = torch.arange(16, dtype=torch.float32).view(1, 4, 4).repeat(2, 1, 1)
    keys = _keys(2)
    most = saliency_occlusion_masks(saliency, 0.25, keys, "most")
    assert torch.equal(most[0].flatten().nonzero().flatten(), torch.tensor([12, 13, 14, 15]))
    least = saliency_occlusion_masks(saliency, 0.25, keys, "least")
    assert torch.equal(least[0].flatten().nonzero().flatten(), torch.tensor([0, 1, 2, 3]))
    assert most.flatten(1).sum(1).tolist() == [4, 4]
    # ties (the zeros after Grad-CAM's ReLU) are broken at random, not in raster order
    flat = torch.zeros(200, 8, 8)
    picked = saliency_occlusion_masks(flat, 0.1, _keys(200), "most").double().mean(0)
    assert float(picked.min()) > 0.0
    coin = saliency_occlusion_masks(saliency.repeat(100, 1, 1), 0.25, _keys(200), "coin")
    assert 0.3 < float(coin[:, 3, 3].double().mean()) < 0.7


# ---------------------------------------------------------------------------------------------- MSDA options

def test_reformulated_objective_keeps_the_first_label_and_an_imbalanced_lambda():
    n = 3000
    x = torch.rand(n, 1, 4, 4)
    aug = AUGMENTATIONS.build("mixup", objective="reformulated")
    out = aug(x, torch.arange(n), _keys(n))
    assert bool((out.lam == 1).all()) and torch.equal(out.partner_labels, torch.arange(n))
    lam = aug.sample_lambda(_keys(n))
    assert abs(float(lam.mean()) - 2 / 3) < 0.015  # E[Beta(2, 1)]
    lam_mixed = AUGMENTATIONS.build("mixup").sample_lambda(_keys(n))
    assert abs(float(lam_mixed.mean()) - 0.5) < 0.015


def test_random_masks_use_a_fixed_bank():
    n = 40
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 8, 8) / n
    aug = AUGMENTATIONS.build("random_masks", num_masks=3, seed=5, per_batch=False)
    out = aug(x, torch.arange(n), _keys(n))
    own = torch.isclose(out.images, x).squeeze(1)
    patterns = {tuple(m.flatten().tolist()) for m in own}
    assert len(patterns) == 3
    again = AUGMENTATIONS.build("random_masks", num_masks=3, seed=5, per_batch=False)(x, torch.arange(n), _keys(n, seed=9))
    assert {tuple(m.flatten().tolist()) for m in torch.isclose(again.images, x).squeeze(1)} == patterns
    per_batch = AUGMENTATIONS.build("random_masks", seed=5, per_batch=True)(x, torch.arange(n), _keys(n))
    assert len({tuple(m.flatten().tolist()) for m in torch.isclose(per_batch.images, x).squeeze(1)}) == 1


@pytest.mark.parametrize("name", ["mixup", "fmix", "random_masks", "boxmix"])
def test_region_mixes_one_half_only(name):
    x = torch.rand(8, 1, 12, 6)
    out = AUGMENTATIONS.build(name, region="top")(x, torch.arange(8), _keys(8))
    assert torch.equal(out.images[..., 6:, :], x[..., 6:, :])
    assert not torch.equal(out.images[..., :6, :], x[..., :6, :])


def test_partner_dataset_needs_the_reformulated_objective():
    with pytest.raises(ValueError, match="reformulated"):
        AUGMENTATIONS.build("fmix", partner_dataset="synthetic")
    with pytest.raises(ValueError, match="Did you mean"):
        AUGMENTATIONS.build("fmix", objective="reformulated", partner_dataset="synthetik")


def test_partner_dataset_images_are_mixed_in_and_labels_ignored():
    x = torch.ones(6, 3, 20, 20)
    labels = torch.arange(6)
    out = AUGMENTATIONS.build("boxmix", objective="reformulated", partner_dataset="synthetic")(x, labels, _keys(6))
    assert out.images.shape == x.shape
    assert torch.equal(out.partner_labels, labels) and bool((out.lam == 1).all())
    assert bool((out.images < 1).any())  # synthetic images (grey, converted to 3 channels) were pasted in
