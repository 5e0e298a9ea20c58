"""Augmentation policies and pipelines: torchvision's operations and spaces, draw frequencies, determinism.

Oracles: torchvision's functional ops (``torchvision.transforms.v2.functional``) for every operation at every
tested magnitude, and torchvision's own policy tables (magnitude bins, AutoAugment sub-policies). Tolerance
for image equality: 1e-5 absolute on [0, 1] images — float32 rounding of the same arithmetic; nearest-mode
geometry is exact.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2 as T
from scipy import stats

from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment import random as rnd
from auglens.augment.ops import OP_NAMES, Op, apply_ops, magnitude_table
from auglens.augment.policies import (
    _AUTOAUGMENT, AUGMIX_OPS, AUTOAUGMENT_OPS, AUTOAUGMENT_POLICIES, RANDAUGMENT_OPS, TRIVIAL_AUGMENT_OPS,
)
from augment_testing import augmix_replayed, torchvision_op  # tests/augment is on sys.path

ATOL = 1e-5
POLICIES = ("randaugment", "trivial_augment", "autoaugment", "augmix")


def _images(n=8, c=3, h=20, w=24, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------- spaces vs torchvision

@pytest.mark.parametrize("ours, theirs, bins", [
    (RANDAUGMENT_OPS, T.RandAugment._AUGMENTATION_SPACE, 31),
    (TRIVIAL_AUGMENT_OPS, T.TrivialAugmentWide._AUGMENTATION_SPACE, 31),
    (AUTOAUGMENT_OPS, T.AutoAugment._AUGMENTATION_SPACE, 10),
    (AUGMIX_OPS, T.AugMix._AUGMENTATION_SPACE, 10),
])
def test_operation_spaces_and_magnitude_bins_are_torchvisions(ours, theirs, bins):
    assert [op.name for op in ours] == list(theirs)
    for h, w in ((28, 28), (32, 45)):
        table, signed = magnitude_table(ours, bins, h, w)
        for k, op in enumerate(ours):
            fn, their_signed = theirs[op.name]
            expected = fn(bins, h, w)
            assert bool(signed[k]) == their_signed, op.name
            if expected is None:
                assert op.bins is None
            else:
                assert torch.equal(table[k], expected.to(torch.float64)), op.name


def test_augmix_partial_space_is_torchvisions():
    assert [op.name for op in AUGMIX_OPS[:9]] == list(T.AugMix._PARTIAL_AUGMENTATION_SPACE)
    assert AUGMENTATIONS.build("augmix", all_ops=False).ops == AUGMIX_OPS[:9]


@pytest.mark.parametrize("policy", list(AUTOAUGMENT_POLICIES))
def test_autoaugment_sub_policies_are_torchvisions(policy):
    assert [tuple(sub) for sub in AUTOAUGMENT_POLICIES[policy]] == \
        [tuple(sub) for sub in T.AutoAugment(T.AutoAugmentPolicy(policy))._policies]


# ---------------------------------------------------------------------------------------------- operations vs torchvision

def _test_magnitudes(op: Op, bins: int, h: int, w: int) -> torch.Tensor:
    if op.bins is None:
        return torch.zeros(1, dtype=torch.float64)
    values = op.bins(bins, h, w).double()
    return torch.cat([values, -values]) if op.signed else values


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("space, bins", [(RANDAUGMENT_OPS, 31), (TRIVIAL_AUGMENT_OPS, 31), (AUTOAUGMENT_OPS, 10),
                                         (AUGMIX_OPS, 10)], ids=["randaugment", "trivial", "autoaugment", "augmix"])
def test_every_operation_at_every_magnitude_equals_torchvision(space, bins, interpolation, channels):
    h, w = 17, 22  # non-square: catches swapped axes
    for k, op in enumerate(space):
        magnitudes = _test_magnitudes(op, bins, h, w)
        x = _images(len(magnitudes), channels, h, w, seed=k)
        ours = apply_ops(x, space, torch.full((len(x),), k), magnitudes, interpolation)
        for i, m in enumerate(magnitudes.tolist()):
            expected = torchvision_op(x[i], op.name, m, interpolation)
            assert torch.allclose(ours[i], expected, atol=ATOL, rtol=0), (op.name, m)


def test_operations_change_images_as_named():
    # Guards the oracle itself: each operation does something at a non-zero magnitude.
    x = _images(1, 3, 16, 16)
    for name in OP_NAMES[1:]:
        m = {"Posterize": 2.0, "Solarize": 0.5}.get(name, 0.3 if "Translate" not in name else 3.0)
        if name == "Rotate":
            m = 20.0
        out = apply_ops(x, (Op(name),), torch.zeros(1, dtype=torch.int64), torch.tensor([m], dtype=torch.float64))
        assert not torch.allclose(out, x, atol=1e-3), name


def test_grey_images_keep_one_channel_and_colour_ops_follow_torchvision():
    x = _images(4, 1, 12, 12)
    out = apply_ops(x, (Op("Color"),), torch.zeros(4, dtype=torch.int64), torch.full((4,), 0.8, dtype=torch.float64))
    assert torch.equal(out, x)  # saturation has no effect on grey images, as in torchvision and PIL


# ---------------------------------------------------------------------------------------------- whole policies replayed

@pytest.mark.parametrize("name, params", [
    ("randaugment", {}), ("randaugment", {"num_ops": 3, "magnitude": 25, "interpolation": "bilinear"}),
    ("trivial_augment", {}), ("autoaugment", {"policy": "imagenet"}), ("autoaugment", {"policy": "cifar10"}),
    ("autoaugment", {"policy": "svhn"}),
])
@pytest.mark.parametrize("channels", [1, 3])
def test_policy_output_equals_its_plan_replayed_through_torchvision(name, params, channels):
    aug = AUGMENTATIONS.build(name, **params)
    x = _images(24, channels, 18, 18, seed=3)
    keys = sample_keys(5, 1, torch.arange(24))
    out = aug(x, torch.zeros(24, dtype=torch.int64), keys).images
    plan = aug.plan(keys, 18, 18)
    for i in range(24):
        expected = x[i]
        for draw in plan:
            expected = torchvision_op(expected, draw.names()[i], float(draw.magnitude[i]), aug.interpolation)
        assert torch.allclose(out[i], expected, atol=ATOL, rtol=0), i


@pytest.mark.parametrize("channels", [1, 3])
def test_augmix_output_equals_its_plan_replayed_through_torchvision(channels):
    aug = AUGMENTATIONS.build("augmix", severity=5, mixture_width=2)
    x = _images(12, channels, 16, 16, seed=4)
    keys = sample_keys(0, 0, torch.arange(12))
    out = aug(x, torch.zeros(12, dtype=torch.int64), keys).images
    plan = aug.plan(keys, 16, 16)
    for i in range(12):
        assert torch.allclose(out[i], augmix_replayed(x[i], plan, i), atol=ATOL, rtol=0), i


# ---------------------------------------------------------------------------------------------- draw frequencies

N_DRAWS = 30_000


def _keys(n=N_DRAWS):
    return sample_keys(11, 3, torch.arange(n))


def _assert_uniform(values: torch.Tensor, k: int):
    counts = torch.bincount(values, minlength=k).numpy()
    assert len(counts) == k
    assert stats.chisquare(counts).pvalue > 1e-4, counts


def _assert_rate(hits: torch.Tensor, p: float):
    n = hits.numel()
    assert abs(float(hits.double().mean()) - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12, (float(hits.double().mean()), p)


def test_randaugment_draws_ops_uniformly_at_the_fixed_magnitude_with_random_sign():
    aug = AUGMENTATIONS.build("randaugment", num_ops=2, magnitude=7, num_magnitude_bins=11)
    table, signed = magnitude_table(RANDAUGMENT_OPS, 11, 30, 30)
    draws = aug.plan(_keys(), 30, 30)
    assert len(draws) == 2
    for draw in draws:
        _assert_uniform(draw.index, len(RANDAUGMENT_OPS))
        assert torch.equal(draw.magnitude.abs(), table[draw.index, 7].abs())
        is_signed = signed[draw.index] & (table[draw.index, 7] != 0)
        _assert_rate(draw.magnitude[is_signed] < 0, 0.5)
        assert bool((draw.magnitude[~signed[draw.index]] >= 0).all())
    # The two slots are independent: their joint frequencies are uniform over 14 x 14 pairs.
    _assert_uniform(draws[0].index * len(RANDAUGMENT_OPS) + draws[1].index, len(RANDAUGMENT_OPS) ** 2)


def test_trivial_augment_draws_op_and_bin_uniformly():
    aug = AUGMENTATIONS.build("trivial_augment", num_magnitude_bins=31)
    table, signed = magnitude_table(TRIVIAL_AUGMENT_OPS, 31, 28, 28)
    (draw,) = aug.plan(_keys(), 28, 28)
    _assert_uniform(draw.index, len(TRIVIAL_AUGMENT_OPS))
    rotate = draw.index == [op.name for op in TRIVIAL_AUGMENT_OPS].index("Rotate")
    # Recover each rotation's bin from its magnitude: the bins are uniform over all 31.
    bins = (draw.magnitude[rotate].abs().unsqueeze(1) - table[5].unsqueeze(0)).abs().argmin(dim=1)
    assert torch.equal(table[5][bins], draw.magnitude[rotate].abs())
    _assert_uniform(bins, 31)
    _assert_rate(draw.magnitude[rotate & (draw.magnitude != 0)] < 0, 0.5)


@pytest.mark.parametrize("policy", list(AUTOAUGMENT_POLICIES))
def test_autoaugment_draws_sub_policies_uniformly_and_applies_steps_with_their_probabilities(policy):
    aug = AUGMENTATIONS.build("autoaugment", policy=policy)
    keys = _keys()
    sub = rnd.randint(keys, _AUTOAUGMENT, 25)  # the sub-policy drawn for each sample
    _assert_uniform(sub, 25)
    table, _ = magnitude_table(AUTOAUGMENT_OPS, 10, 32, 32)
    names = [op.name for op in AUTOAUGMENT_OPS]
    draws = aug.plan(keys, 32, 32)
    sub_policies = AUTOAUGMENT_POLICIES[policy]
    for step, draw in enumerate(draws):
        step_names = draw.names()
        for s, steps in enumerate(sub_policies):
            name, probability, bin_ = steps[step]
            mine = sub == s
            applied = draw.index[mine] >= 0
            _assert_rate(applied, probability)
            assert all(step_names[i] == name for i in mine.nonzero().squeeze(1)[applied].tolist())
            if bin_ is not None:
                assert bool((draw.magnitude[mine].abs() == table[names.index(name), bin_]).all())


def test_augmix_draws_depths_ops_bins_and_weights_as_defined():
    aug = AUGMENTATIONS.build("augmix", severity=4, mixture_width=3, chain_depth=-1, alpha=1.0)
    keys = _keys(20_000)
    plan = aug.plan(keys, 30, 30)
    table, _ = magnitude_table(AUGMIX_OPS, 10, 30, 30)
    # Weights: a convex combination; the original's weight is Beta(1, 1) (uniform), each chain's share of the
    # rest a Dirichlet(1, 1, 1) part (mean 1/3).
    assert torch.allclose(plan.weights.sum(1), torch.ones(len(keys), dtype=torch.float64))
    assert stats.kstest(plan.weights[:, 0].numpy(), "uniform").pvalue > 1e-4
    share = plan.weights[:, 1] / (1 - plan.weights[:, 0])
    assert stats.kstest(share.numpy(), stats.beta(1, 2).cdf).pvalue > 1e-4  # a part of Dirichlet(1,1,1)
    for chain in plan.chains:
        depth = sum((draw.index >= 0).long() for draw in chain)
        _assert_uniform(depth - 1, 3)
        for d, draw in enumerate(chain):
            active = draw.index >= 0
            assert torch.equal(active, depth > d)  # operations fill the chain from the front
            _assert_uniform(draw.index[active], len(AUGMIX_OPS))
        first = chain[0]
        rotate = first.index == 4
        bins = (first.magnitude[rotate].abs().unsqueeze(1) - table[4].unsqueeze(0)).abs().argmin(dim=1)
        _assert_uniform(bins, 4)  # bins 0 .. severity - 1


def test_augmix_fixed_depth_fills_every_step():
    plan = AUGMENTATIONS.build("augmix", chain_depth=2, mixture_width=1).plan(_keys(1000), 20, 20)
    assert len(plan.chains[0]) == 2 and all(bool((d.index >= 0).all()) for d in plan.chains[0])


# ---------------------------------------------------------------------------------------------- determinism

@pytest.mark.parametrize("name", [*POLICIES, "compose"])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_is_identical_across_reruns_batch_sizes_and_order(name, channels):
    aug = AUGMENTATIONS.build(name)
    x = _images(10, channels, 24, 24, seed=9)
    labels = torch.zeros(10, dtype=torch.int64)
    keys = sample_keys(2, 4, torch.arange(10))
    whole = aug(x, labels, keys).images
    assert torch.equal(whole, AUGMENTATIONS.build(name)(x.clone(), labels, keys).images)
    for i in (0, 7):
        assert torch.equal(whole[i:i + 1], aug(x[i:i + 1], labels[:1], keys[i:i + 1]).images)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(whole[order], aug(x[order], labels, keys[order]).images)
    other_epoch = aug(x, labels, sample_keys(2, 5, torch.arange(10))).images
    assert not torch.equal(whole, other_epoch)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", [*POLICIES, "compose"])
def test_cuda_matches_cpu(name):
    aug = AUGMENTATIONS.build(name)
    x = _images(16, 3, 32, 32)
    labels = torch.zeros(16, dtype=torch.int64)
    keys = sample_keys(1, 0, torch.arange(16))
    cpu = aug(x, labels, keys).images
    gpu = aug(x.cuda(), labels.cuda(), keys.cuda()).images.cpu()
    # Same draws on both devices; pixels may differ where a geometric op's sampling point lies on a rounding
    # boundary, or by float rounding.
    assert (cpu - gpu).abs().gt(1e-4).float().mean() < 0.01


# ---------------------------------------------------------------------------------------------- parameters

@pytest.mark.parametrize("name, params, message", [
    ("randaugment", {"magnitude": 31}, "magnitude is a bin index"),
    ("randaugment", {"num_ops": -1}, "num_ops"),
    ("randaugment", {"num_magnitude_bins": 1}, "num_magnitude_bins"),
    ("trivial_augment", {"interpolation": "bicubic"}, "'nearest', 'bilinear'"),
    ("autoaugment", {"policy": "cifar100"}, "'imagenet', 'cifar10', 'svhn'"),
    ("augmix", {"severity": 11}, "severity"),
    ("augmix", {"chain_depth": 0}, "chain_depth"),
    ("augmix", {"alpha": 0.0}, "alpha"),
])
def test_bad_parameters_say_what_is_valid(name, params, message):
    with pytest.raises(ValueError, match=message):
        AUGMENTATIONS.build(name, **params)


def test_zero_operations_and_zero_magnitude_leave_images_unchanged():
    x = _images()
    keys = sample_keys(0, 0, torch.arange(len(x)))
    labels = torch.zeros(len(x), dtype=torch.int64)
    assert torch.equal(AUGMENTATIONS.build("randaugment", num_ops=0)(x, labels, keys).images, x)
    # Bin 0 is magnitude 0 for the signed operations (identities); the rest still act.
    out = AUGMENTATIONS.build("randaugment", num_ops=1, magnitude=0)(x, labels, keys).images
    (draw,) = AUGMENTATIONS.build("randaugment", num_ops=1, magnitude=0).plan(keys, 20, 24)
    for i, name in enumerate(draw.names()):
        if RANDAUGMENT_OPS[int(draw.index[i])].signed or name == "Identity":
            assert torch.allclose(out[i], x[i], atol=1e-6), name
