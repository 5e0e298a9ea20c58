"""Policy parameters against torchvision's: the defaults of RandAugment, TrivialAugmentWide and AugMix, and the
bounds of severity, mixture width and magnitude bins; an image-only augmentation keeps its labels."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from auglens.augment import AUGMENTATIONS, sample_keys


def test_defaults_are_torchvisions():
    ours, theirs = AUGMENTATIONS.build("randaugment"), v2.RandAugment()
    assert (ours.num_ops, ours.magnitude, ours.num_magnitude_bins) == (theirs.num_ops, theirs.magnitude,
                                                                        theirs.num_magnitude_bins)
    assert AUGMENTATIONS.build("trivial_augment").num_magnitude_bins == v2.TrivialAugmentWide().num_magnitude_bins
    ours, theirs = AUGMENTATIONS.build("augmix"), v2.AugMix()
    assert (ours.severity, ours.mixture_width, ours.chain_depth, ours.alpha) == (
        theirs.severity, theirs.mixture_width, theirs.chain_depth, theirs.alpha)


@pytest.mark.parametrize("name, params", [
    ("augmix", dict(severity=1)), ("augmix", dict(severity=10)), ("augmix", dict(mixture_width=1)),
    ("randaugment", dict(num_magnitude_bins=2, magnitude=1)), ("trivial_augment", dict(num_magnitude_bins=2)),
])
def test_boundary_parameters_are_accepted(name, params):
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = AUGMENTATIONS.build(name, **params)(x, torch.zeros(3, dtype=torch.int64), sample_keys(0, 0, torch.arange(3)))
    assert out.images.shape == x.shape


@pytest.mark.parametrize("name, params", [
    ("augmix", dict(severity=0)), ("augmix", dict(severity=11)), ("augmix", dict(mixture_width=0)),
    ("randaugment", dict(num_magnitude_bins=1)), ("trivial_augment", dict(num_magnitude_bins=1)),
])
def test_out_of_range_parameters_are_refused(name, params):
    with pytest.raises(ValueError):
        AUGMENTATIONS.build(name, **params)


def test_image_only_augmentations_keep_the_labels_with_weight_one():
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([3, 1, 2, 0])
    out = AUGMENTATIONS.build("gaussian_blur")(x, labels, sample_keys(0, 0, torch.arange(4)))
    assert torch.equal(out.labels, labels) and torch.equal(out.partner_labels, labels)
    assert out.lam.dtype == torch.float64 and out.lam.tolist() == [1.0] * 4
