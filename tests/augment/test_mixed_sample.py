"""Mixed-sample augmentations against hand computations: CutMix's boxes (torchvision's and the rounded
ones) and label rules, partners, MixUp's blend, FMix's binarisation, the Random Masks bank, box mixing,
half-image regions, the reformulated objective and the conversion of another data set's images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from auglens.augment import AUGMENTATIONS, build_augmentation, sample_keys
from auglens.augment import random as rnd
from auglens.augment.mixed import binarise_top, conform_images, fourier_masks
from auglens.augment.mixing import box_masks, partner_indices, pixel_centred_box_masks


def _keys(n, seed=0):
    return sample_keys(seed, 0, torch.arange(n))


def _distinct(n, c=1, h=8, w=8):
    """Every pixel of every image distinct, so that where a pixel came from can be read off."""
    return (torch.arange(n * c * h * w, dtype=torch.float64).view(n, c, h, w) / (n * c * h * w)).float()


# ---------------------------------------------------------------------------------------------- partners and boxes

def test_partners_are_an_offset_drawn_from_the_key():
    n = 9
    keys = _keys(n)
    offsets = 1 + (rnd.uniform(keys, 101).squeeze(1) * (n - 1)).floor().long()  # in [1, n - 1]
    assert partner_indices(keys).tolist() == ((torch.arange(n) + offsets) % n).tolist()
    many = partner_indices(_keys(400))
    assert bool((many != torch.arange(400)).all())  # never itself
    assert partner_indices(_keys(1)).tolist() == [0] and partner_indices(_keys(1)).dtype == torch.int64
    pair = partner_indices(_keys(2))
    assert pair.tolist() == [1, 0]


def _hand_box(y0, y1, x0, x1, h, w):
    mask = np.zeros((h, w), dtype=bool)
    mask[max(y0, 0):max(min(y1, h), 0), max(x0, 0):max(min(x1, w), 0)] = True
    return mask


@pytest.mark.parametrize("h, w", [(16, 16), (10, 7)])
def test_torchvision_boxes_by_hand(h, w):
    n = 300
    keys = _keys(n)
    lam = rnd.beta(keys, 103, 1.0, 1.0)
    masks = pixel_centred_box_masks(lam, keys, h, w).numpy()
    cy = (rnd.uniform(keys, 104).squeeze(1) * h).floor().long().tolist()
    cx = (rnd.uniform(keys, 105).squeeze(1) * w).floor().long().tolist()
    for i in range(n):
        r = 0.5 * math.sqrt(1.0 - float(lam[i]))
        half_h, half_w = int(r * h), int(r * w)  # torchvision / Yun et al.: int() of the half side
        expected = _hand_box(cy[i] - half_h, cy[i] + half_h, cx[i] - half_w, cx[i] + half_w, h, w)
        assert np.array_equal(masks[i], expected), i


@pytest.mark.parametrize("h, w", [(16, 16), (9, 12), (2, 64), (64, 2)])  # boxes thinner than a row or column
def test_rounded_boxes_by_hand(h, w):
    n = 300
    keys = _keys(n, seed=3)
    lam = rnd.beta(keys, 103, 1.0, 1.0)
    masks = box_masks(lam, keys, h, w).numpy()
    centre = rnd.uniform(keys, 102, count=2).numpy()
    for i in range(n):
        cut = math.sqrt(1.0 - float(lam[i]))
        cy, cx = centre[i, 0] * h, centre[i, 1] * w
        # numpy's round is round-half-to-even, as torch's
        y0, y1 = np.round(cy - cut * h / 2), np.round(cy + cut * h / 2)
        x0, x1 = np.round(cx - cut * w / 2), np.round(cx + cut * w / 2)
        expected = _hand_box(int(y0), int(y1), int(x0), int(x1), h, w)
        assert np.array_equal(masks[i], expected), i


def test_boxes_of_lambda_one_and_zero():
    keys = _keys(4)
    full = torch.ones(4, dtype=torch.float64)
    assert not box_masks(full, keys, 8, 8).any() and not pixel_centred_box_masks(full, keys, 8, 8).any()
    zero = torch.zeros(4, dtype=torch.float64)
    # lam = 0: a box of the image's size around the centre, clipped at the border: at least a quarter
    assert bool((box_masks(zero, keys, 8, 8).flatten(1).sum(1) >= 16).all())
    assert bool((pixel_centred_box_masks(zero, keys, 8, 8).flatten(1).sum(1) >= 16).all())


# ---------------------------------------------------------------------------------------------- CutMix

@pytest.mark.parametrize("box, masks", [("torchvision", pixel_centred_box_masks), ("rounded", box_masks)])
def test_cutmix_by_hand(box, masks):
    n, c, h, w = 12, 3, 10, 9
    x = _distinct(n, c, h, w)
    labels = torch.arange(n) + 100
    keys = _keys(n, seed=5)
    partner = partner_indices(keys)
    lam = rnd.beta(keys, 103, 0.4, 0.4)  # alpha is used for both Beta parameters
    mask = masks(lam, keys, h, w)
    expected = torch.where(mask.unsqueeze(1), x[partner], x)
    receiver = AUGMENTATIONS.build("cutmix", alpha=0.4, box=box)(x, labels, keys)
    assert torch.equal(receiver.images, expected)
    assert torch.equal(receiver.labels, labels) and torch.equal(receiver.partner_labels, labels)
    assert receiver.lam.dtype == x.dtype and receiver.lam.tolist() == [1.0] * n
    mixed = AUGMENTATIONS.build("cutmix", alpha=0.4, box=box, label="mixed")(x, labels, keys)
    assert torch.equal(mixed.images, expected)
    assert torch.equal(mixed.partner_labels, labels[partner])
    kept = 1.0 - mask.flatten(1).double().sum(1) / (h * w)
    assert mixed.lam.dtype == x.dtype and torch.equal(mixed.lam, kept.to(x.dtype))
    assert 0 < float(kept.min()) and float(kept.max()) <= 1


# ---------------------------------------------------------------------------------------------- MixedSample family

def test_lambda_is_beta_alpha_alpha_or_alpha_plus_one_alpha():
    keys = _keys(50)
    assert torch.equal(AUGMENTATIONS.build("mixup", alpha=0.3).sample_lambda(keys), rnd.beta(keys, 301, 0.3, 0.3))
    reformulated = AUGMENTATIONS.build("fmix", alpha=0.3, objective="reformulated").sample_lambda(keys)
    assert torch.equal(reformulated, rnd.beta(keys, 301, 1.3, 0.3))


def test_mixup_by_hand():
    n = 10
    x = _distinct(n, 3, 5, 4)
    labels = torch.arange(n) * 2
    keys = _keys(n, seed=2)
    partner = partner_indices(keys)
    lam = rnd.beta(keys, 301, 0.7, 0.7)
    out = AUGMENTATIONS.build("mixup", alpha=0.7)(x, labels, keys)
    weight = lam.float().view(-1, 1, 1, 1)  # the blend is computed in the images' dtype
    assert torch.equal(out.images, weight * x + (1 - weight) * x[partner])
    assert torch.equal(out.labels, labels) and torch.equal(out.partner_labels, labels[partner])
    assert out.lam.dtype == torch.float32 and torch.equal(out.lam, lam.float())


def test_binarise_top_by_hand():
    values = torch.tensor([[0.5, 0.1, 0.9, 0.5, 0.3], [1.0, 1.0, 1.0, 0.0, 1.0]])
    keys = _keys(2, seed=4)
    up = (rnd.uniform(keys, 305).squeeze(1) < 0.5).tolist()
    lam = torch.tensor([0.5, 0.5], dtype=torch.float64)  # lam * 5 = 2.5: 3 entries if the coin says up, else 2
    kept = binarise_top(values, lam, keys)
    for i, order in enumerate(([2, 0, 3, 4, 1], [0, 1, 2, 4, 3])):  # descending; ties in index order
        count = 3 if up[i] else 2
        expected = torch.zeros(5, dtype=torch.bool)
        expected[order[:count]] = True
        assert torch.equal(kept[i], expected), i
    assert binarise_top(values, torch.tensor([0.4, 1.0], dtype=torch.float64), keys).sum(1).tolist() == [2, 5]
    # the stream is a parameter: another stream flips other coins
    many = _keys(64)
    lam = torch.full((64,), 0.5, dtype=torch.float64)
    grid = torch.rand(64, 5, generator=torch.Generator().manual_seed(0))
    counts = binarise_top(grid, lam, many, stream=999).sum(1)
    expected = torch.where(rnd.uniform(many, 999).squeeze(1) < 0.5, 3, 2)
    assert torch.equal(counts, expected)


def test_fmix_by_hand():
    n, h, w = 8, 9, 7
    x = _distinct(n, 2, h, w)
    labels = torch.arange(n)
    keys = _keys(n, seed=6)
    partner = partner_indices(keys)
    lam = rnd.beta(keys, 301, 1.0, 1.0)
    keep = fourier_masks(lam, keys, h, w, decay_power=2.0)
    out = AUGMENTATIONS.build("fmix", decay_power=2.0)(x, labels, keys)
    assert torch.equal(out.images, torch.where(keep.unsqueeze(1), x, x[partner]))
    assert torch.equal(out.lam, keep.flatten(1).double().mean(1).float())
    assert torch.equal(out.partner_labels, labels[partner])
    # the decay power is used: a smoother spectrum gives other masks
    assert not torch.equal(keep, fourier_masks(lam, keys, h, w))


def test_random_masks_bank_and_choice_by_hand():
    n, h, w = 20, 6, 5
    x = _distinct(n, 1, h, w)
    keys = _keys(n, seed=7)
    partner = partner_indices(keys)
    aug = AUGMENTATIONS.build("random_masks", num_masks=4, seed=11, decay_power=2.5, alpha=0.5, per_batch=False)
    bank_keys = sample_keys(11, 0, torch.arange(4))
    bank = fourier_masks(rnd.beta(bank_keys, 301, 0.5, 0.5), bank_keys, h, w, 2.5)
    assert torch.equal(aug.masks(h, w), bank)
    choice = (rnd.uniform(keys, 306).squeeze(1) * 4).floor().long()
    out = aug(x, torch.arange(n), keys)
    keep = bank[choice]
    assert torch.equal(out.images, torch.where(keep.unsqueeze(1), x, x[partner]))
    assert torch.equal(out.lam, keep.flatten(1).double().mean(1).float())
    per_batch = AUGMENTATIONS.build("random_masks", num_masks=4, seed=11, decay_power=2.5, alpha=0.5,
                                    per_batch=True)(x, torch.arange(n), keys)
    assert torch.equal(per_batch.images, torch.where(bank[choice[0]].expand(n, h, w).unsqueeze(1), x, x[partner]))


def test_boxmix_keeps_the_outside_of_the_box():
    n, h, w = 10, 8, 8
    x = _distinct(n, 3, h, w)
    keys = _keys(n, seed=8)
    partner = partner_indices(keys)
    lam = rnd.beta(keys, 301, 1.0, 1.0)
    box = box_masks(lam, keys, h, w)
    out = AUGMENTATIONS.build("boxmix")(x, torch.arange(n), keys)
    assert torch.equal(out.images, torch.where(box.unsqueeze(1), x[partner], x))
    assert torch.equal(out.lam, (~box).flatten(1).double().mean(1).float())


@pytest.mark.parametrize("region, rows", [("top", slice(0, 3)), ("bottom", slice(3, 7))])
def test_region_mixes_that_half_and_lambda_is_its_kept_share(region, rows):
    n, h, w = 10, 7, 6  # an odd height: the top half has h // 2 rows
    x = _distinct(n, 1, h, w)
    keys = _keys(n, seed=9)
    partner = partner_indices(keys)
    out = AUGMENTATIONS.build("fmix", region=region)(x, torch.arange(n), keys)
    lam = rnd.beta(keys, 301, 1.0, 1.0)
    height = rows.stop - rows.start
    keep = fourier_masks(lam, keys, height, w)
    expected = x.clone()
    expected[..., rows, :] = torch.where(keep.unsqueeze(1), x[..., rows, :], x[partner][..., rows, :])
    assert torch.equal(out.images, expected)
    assert torch.equal(out.lam, keep.flatten(1).double().mean(1).float())


def test_reformulated_objective_keeps_the_first_label_with_weight_one():
    n = 6
    x = _distinct(n, 1, 4, 4)
    labels = torch.arange(n) + 3
    keys = _keys(n)
    out = AUGMENTATIONS.build("mixup", objective="reformulated")(x, labels, keys)
    lam = rnd.beta(keys, 301, 2.0, 1.0).float().view(-1, 1, 1, 1)
    partner = partner_indices(keys)
    assert torch.allclose(out.images, lam * x + (1 - lam) * x[partner], atol=1e-7, rtol=0)
    assert torch.equal(out.labels, labels) and torch.equal(out.partner_labels, labels)
    assert out.lam.dtype == x.dtype and out.lam.tolist() == [1.0] * n


# ---------------------------------------------------------------------------------------------- other data sets

def test_conform_images_by_hand():
    colour = torch.tensor([[[[10, 200]], [[20, 100]], [[250, 0]]]], dtype=torch.uint8)  # (1, 3, 1, 2)
    grey = conform_images(colour, 1, 1, 2)
    luma = 0.299 * colour[:, 0].double() + 0.587 * colour[:, 1].double() + 0.114 * colour[:, 2].double()
    assert grey.dtype == torch.uint8 and grey.shape == (1, 1, 1, 2)
    assert grey.flatten().tolist() == luma.round().flatten().int().tolist()
    floats = conform_images(colour.float() / 255, 1, 1, 2)
    assert floats.dtype == torch.float32
    assert torch.allclose(floats.double().flatten(), luma.flatten() / 255, atol=1e-6)
    repeated = conform_images(grey, 3, 1, 2)
    assert torch.equal(repeated, grey.expand(1, 3, 1, 2))
    # resizing: bilinear, antialiased when shrinking, rounded and clipped back to bytes
    big = torch.randint(0, 256, (2, 3, 12, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    small = conform_images(big, 3, 5, 4)
    reference = F.interpolate(big.float(), size=(5, 4), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(small, reference.round().clamp(0, 255).to(torch.uint8))
    wide = conform_images(big, 3, 12, 4)  # only the width shrinks: still antialiased
    reference = F.interpolate(big.float(), size=(12, 4), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(wide, reference.round().clamp(0, 255).to(torch.uint8))
    tall = conform_images(big, 3, 5, 10)  # only the height shrinks
    reference = F.interpolate(big.float(), size=(5, 10), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(tall, reference.round().clamp(0, 255).to(torch.uint8))
    larger = conform_images(big, 3, 20, 16)
    reference = F.interpolate(big.float(), size=(20, 16), mode="bilinear", align_corners=False, antialias=False)
    assert torch.equal(larger, reference.round().clamp(0, 255).to(torch.uint8))
    assert conform_images(big, 3, 12, 10) is not big and torch.equal(conform_images(big, 3, 12, 10), big)
    with pytest.raises(ValueError, match="channel"):
        conform_images(torch.zeros(1, 2, 4, 4), 3, 4, 4)


def test_conform_images_refuses_what_it_cannot_convert_and_antialiases_per_axis():
    with pytest.raises(ValueError, match="channel"):
        conform_images(torch.zeros(1, 3, 4, 4), 4, 4, 4)  # colour to 4 channels: no rule
    # a non-square image whose target width lies between its height and its width: shrinking the width only
    flat = torch.randint(0, 256, (1, 1, 6, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    reference = F.interpolate(flat.float(), size=(6, 10), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(conform_images(flat, 1, 6, 10), reference.round().clamp(0, 255).to(torch.uint8))


def test_foreign_images_load_the_split_once_per_name_split_and_root(monkeypatch):
    import auglens.augment.mixed as mixed
    import auglens.data

    calls = []

    class _Set:
        def __init__(self, tag):
            self.images = torch.full((2, 1, 4, 4), tag, dtype=torch.uint8)

    def fake_load(name, root=None):
        calls.append((name, root))
        return {"train": _Set(len(calls)), "test": _Set(100 + len(calls))}

    monkeypatch.setattr(mixed, "_FOREIGN_CACHE", {})
    monkeypatch.setattr(auglens.data, "load_dataset", fake_load)
    first = mixed.foreign_images("alpha", "/data")
    assert calls == [("alpha", "/data")] and int(first[0, 0, 0, 0]) == 1
    assert mixed.foreign_images("alpha", "/data") is first and len(calls) == 1  # cached
    test = mixed.foreign_images("alpha", "/data", split="test")
    assert int(test[0, 0, 0, 0]) == 102 and calls[-1] == ("alpha", "/data")
    other = mixed.foreign_images("beta")
    assert calls[-1] == ("beta", None) and int(other[0, 0, 0, 0]) == 3
    assert int(mixed.foreign_images("alpha", "/elsewhere")[0, 0, 0, 0]) == 4  # another root: loaded again


@pytest.mark.parametrize("name", ["mixup", "fmix", "random_masks", "boxmix"])
def test_every_family_takes_partners_from_the_named_data_set_and_root(monkeypatch, name):
    import auglens.augment.mixed as mixed

    pool = torch.zeros(3, 1, 6, 6, dtype=torch.uint8)  # black partners
    seen = []
    monkeypatch.setattr(mixed, "foreign_images", lambda name, root=None: seen.append((name, root)) or pool)
    x = torch.ones(4, 1, 6, 6)
    out = AUGMENTATIONS.build(name, objective="reformulated", partner_dataset="synthetic", partner_root="/r")(
        x, torch.arange(4), _keys(4))
    assert seen == [("synthetic", "/r")]
    assert bool((out.images < 1).any())  # the black partners were mixed in


def test_partners_from_another_data_set_by_hand(monkeypatch):
    import auglens.augment.mixed as mixed

    pool = torch.randint(0, 256, (7, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    seen = []
    monkeypatch.setattr(mixed, "foreign_images", lambda name, root=None: seen.append((name, root)) or pool)
    n = 5
    x = torch.rand(n, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    keys = _keys(n, seed=4)
    aug = AUGMENTATIONS.build("mixup", objective="reformulated", partner_dataset="synthetic", partner_root="/r")
    out = aug(x, torch.arange(n), keys)
    assert seen == [("synthetic", "/r")]
    index = (rnd.uniform(keys, 302).squeeze(1) * 7).floor().long()
    partners = pool[index].double().expand(n, 3, 6, 6) / 255.0  # grey repeated to colour, in float64
    lam = rnd.beta(keys, 301, 2.0, 1.0).view(-1, 1, 1, 1)
    assert torch.allclose(out.images, lam * x + (1 - lam) * partners, atol=1e-12, rtol=0)


def test_default_decay_power_is_three_and_ties_go_to_the_lower_index():
    from auglens.augment.mixed import low_frequency_images

    keys = _keys(3)
    assert torch.equal(low_frequency_images(keys, 8, 6), low_frequency_images(keys, 8, 6, 3.0))
    assert not torch.equal(low_frequency_images(keys, 8, 6), low_frequency_images(keys, 8, 6, 4.0))
    # many equal values: the kept ones are the first in index order
    values = torch.tensor([[1.0, 0.0] * 40, [0.0] * 80])
    lam = torch.tensor([0.25, 0.5], dtype=torch.float64)  # 20 of 40 ones; 40 of 80 zeros
    kept = binarise_top(values, lam, _keys(2))
    assert torch.equal(kept[0].nonzero().flatten(), torch.arange(0, 40, 2))
    assert torch.equal(kept[1].nonzero().flatten(), torch.arange(40))


def test_parameter_bounds():
    for build in (lambda: AUGMENTATIONS.build("cutmix", alpha=0.0), lambda: AUGMENTATIONS.build("mixup", alpha=0.0),
                  lambda: AUGMENTATIONS.build("fmix", decay_power=0.0),
                  lambda: AUGMENTATIONS.build("random_masks", decay_power=0.0),
                  lambda: AUGMENTATIONS.build("random_masks", num_masks=0)):
        with pytest.raises(ValueError):
            build()
    x = _distinct(4, 1, 6, 6)
    for aug in (AUGMENTATIONS.build("fmix", decay_power=1.0), AUGMENTATIONS.build("random_masks", decay_power=1.0),
                AUGMENTATIONS.build("random_masks", num_masks=1)):
        assert aug(x, torch.arange(4), _keys(4)).images.shape == x.shape


def test_random_masks_defaults():
    # An explicit seed: three masks from keys (seed, 0, 0..2), lam ~ Beta(1, 1), decay power 3.
    keys = sample_keys(0, 0, torch.arange(3))
    bank = fourier_masks(rnd.beta(keys, 301, 1.0, 1.0), keys, 8, 8, 3.0)
    assert torch.equal(AUGMENTATIONS.build("random_masks", seed=0).masks(8, 8), bank)
    # No seed (the default): the run's starting state draws them, from keys (run seed, -1, 0..2).
    run_keys = sample_keys(4, -1, torch.arange(3))
    run_bank = fourier_masks(rnd.beta(run_keys, 301, 1.0, 1.0), run_keys, 8, 8, 3.0)
    assert torch.equal(build_augmentation("random_masks", run_seed=4).masks(8, 8), run_bank)
    assert AUGMENTATIONS.build("random_masks").per_batch  # one mask per batch, as the paper


def test_label_weights_have_the_images_dtype():
    x = _distinct(4, 1, 6, 6).double()
    for name, params in (("cutmix", {}), ("cutmix", {"label": "mixed"}), ("mixup", {"objective": "reformulated"}),
                         ("fmix", {})):
        out = AUGMENTATIONS.build(name, **params)(x, torch.arange(4), _keys(4))
        assert out.lam.dtype == torch.float64 and out.images.dtype == torch.float64, name
