"""The standard augmentation (random crop with zero padding 4, horizontal flip): torchvision's images for the
same draws, torchvision's distributions, one draw per sample key."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms as T
from scipy.stats import binomtest, chisquare

from auglens.augment import sample_keys
from auglens.augment.standard import PADDING, crop_flip, crop_flip_params, standard_augmentation

DRAWS = 4000


def _images(n=6, c=3, h=10, w=12):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))


def test_crop_and_flip_equal_torchvisions_for_the_same_draws(monkeypatch):
    x = _images()
    keys = sample_keys(5, 2, torch.arange(len(x)))
    top, left, flip = crop_flip_params(keys)
    ours = standard_augmentation("crop_flip", x, keys)
    for i in range(len(x)):
        # torchvision's RandomCrop(size, padding=4) with its offsets fixed to ours, then the flip decided as ours.
        monkeypatch.setattr(T.RandomCrop, "get_params",
                            staticmethod(lambda img, size, i=i: (int(top[i]), int(left[i]), *size)))
        cropped = T.RandomCrop(x.shape[-2:], padding=PADDING)(x[i])
        expected = T.RandomHorizontalFlip(p=1.0 if bool(flip[i]) else 0.0)(cropped)
        torch.testing.assert_close(ours[i], expected, rtol=0, atol=0)


def test_crop_and_flip_by_hand():
    x = torch.arange(2 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3) + 1
    # A 3x3 window at offset 8 of a 3x3 image padded by 4 lies in the padding alone: black.
    out = crop_flip(x, torch.tensor([0, 8]), torch.tensor([8, 4]), torch.tensor([False, True]), padding=4)
    assert out.abs().sum() == 0
    # Offset (4, 4) is the image itself; flipped, its mirror.
    centred = crop_flip(x, torch.tensor([4, 4]), torch.tensor([4, 4]), torch.tensor([False, True]), padding=4)
    torch.testing.assert_close(centred[0], x[0], rtol=0, atol=0)
    torch.testing.assert_close(centred[1], x[1].flip(-1), rtol=0, atol=0)
    # Offset (5, 3): the content moves up one row and right one column, zeros come in.
    shifted = crop_flip(x[:1], torch.tensor([5]), torch.tensor([3]), torch.tensor([False]), padding=4)
    expected = torch.zeros(1, 3, 3)
    expected[:, :2, 1:] = x[0, :, 1:, :2]
    torch.testing.assert_close(shifted[0], expected, rtol=0, atol=0)


def test_offsets_are_uniform_and_the_flip_is_a_fair_coin():
    top, left, flip = crop_flip_params(sample_keys(0, 0, torch.arange(DRAWS)))
    for offsets in (top, left):
        counts = torch.bincount(offsets, minlength=2 * PADDING + 1)
        assert len(counts) == 2 * PADDING + 1  # {0, ..., 8}, as RandomCrop.get_params on a padded image
        assert chisquare(counts.numpy()).pvalue > 1e-3
    assert binomtest(int(flip.sum()), DRAWS, 0.5).pvalue > 1e-3


def test_each_sample_is_a_function_of_its_key_alone():
    x = _images(n=8)
    keys = sample_keys(1, 0, torch.arange(8))
    whole = standard_augmentation("crop_flip", x, keys)
    parts = torch.cat([standard_augmentation("crop_flip", x[:3], keys[:3]),
                       standard_augmentation("crop_flip", x[3:], keys[3:])])
    torch.testing.assert_close(whole, parts, rtol=0, atol=0)
    assert not torch.equal(whole, standard_augmentation("crop_flip", x, sample_keys(2, 0, torch.arange(8))))


def test_none_is_the_identity_and_an_unknown_name_lists_the_valid_ones():
    x = _images()
    assert standard_augmentation("none", x, sample_keys(0, 0, torch.arange(len(x)))) is x
    with pytest.raises(ValueError, match="crop_flip"):
        standard_augmentation("flip", x, sample_keys(0, 0, torch.arange(len(x))))
