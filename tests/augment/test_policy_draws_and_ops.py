"""The policies' plans and operations where the earlier tests did not look: AugMix's magnitudes are exactly
torchvision's bins, draws that must be independent are (a bin and its sign, a chain's depth and the mixing
weight), skipped steps are marked -1 as documented, whole policies on non-square images replay through
torchvision, and operations at their edges (the inverse matrix with rotation and both shears, Solarize at
the threshold, Sharpness on three-pixel-wide images, Contrast's mean, float64 images) equal torchvision's.

Oracles: torchvision's tables, its private inverse-matrix function and its functional ops; ``math.fsum``; rates of
independent coin flips (5 standard errors)."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from scipy import stats

from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment.ops import OP_NAMES, Op, apply_ops, check_ops, contrast, inverse_affine, magnitude_table
from auglens.augment.policies import AUGMIX_OPS, AUTOAUGMENT_OPS, RANDAUGMENT_OPS, TRIVIAL_AUGMENT_OPS

from augment_testing import augmix_replayed, torchvision_op  # tests/augment is on sys.path


def _keys(n, seed=11):
    return sample_keys(seed, 3, torch.arange(n))


def _assert_rate(hits: torch.Tensor, p: float):
    n = hits.numel()
    assert n > 100
    assert abs(float(hits.double().mean()) - p) <= 5 * math.sqrt(p * (1 - p) / n), (float(hits.double().mean()), n)


# ---------------------------------------------------------------------------------------------- plans

def test_augmix_magnitudes_are_torchvisions_bins_below_severity():
    severity, h, w = 7, 26, 30
    plan = AUGMENTATIONS.build("augmix", severity=severity).plan(_keys(3000), h, w)
    space = T.AugMix._AUGMENTATION_SPACE
    for chain in plan.chains:
        for draw in chain:
            for k, op in enumerate(AUGMIX_OPS):
                mine = draw.magnitude[draw.index == k].abs()
                fn, _ = space[op.name]
                if fn(10, h, w) is None:
                    assert bool((mine == 0).all()), op.name
                    continue
                allowed = fn(10, h, w)[:severity].double()  # torchvision: magnitudes[randint(severity)]
                assert bool((mine.unsqueeze(1) == allowed.unsqueeze(0)).any(1).all()), op.name


def _relative_bin(draw, ops, bins, h, w):
    """Per sample: whether the operation is signed with a non-zero magnitude, and its magnitude's place in
    the op's range (|m| / the op's largest magnitude)."""
    table, signed = magnitude_table(ops, bins, h, w)
    top = table[draw.index.clamp_min(0), -1]
    active = (draw.index >= 0) & signed[draw.index.clamp_min(0)] & (draw.magnitude != 0)
    return active, draw.magnitude.abs() / top.clamp_min(1e-12)


def test_trivial_augment_sign_does_not_depend_on_the_bin():
    (draw,) = AUGMENTATIONS.build("trivial_augment").plan(_keys(20_000), 28, 28)
    active, place = _relative_bin(draw, TRIVIAL_AUGMENT_OPS, 31, 28, 28)
    negative = draw.magnitude < 0
    _assert_rate(negative[active & (place < 0.5)], 0.5)
    _assert_rate(negative[active & (place > 0.5)], 0.5)


def test_augmix_sign_does_not_depend_on_the_bin():
    plan = AUGMENTATIONS.build("augmix", severity=10, mixture_width=2, chain_depth=2).plan(_keys(10_000), 28, 28)
    for chain in plan.chains:
        for draw in chain:
            active, place = _relative_bin(draw, AUGMIX_OPS, 10, 28, 28)
            negative = draw.magnitude < 0
            _assert_rate(negative[active & (place < 0.5)], 0.5)
            _assert_rate(negative[active & (place > 0.5)], 0.5)


def test_augmix_chain_depths_do_not_depend_on_the_mixing_weights():
    plan = AUGMENTATIONS.build("augmix", mixture_width=3, chain_depth=-1).plan(_keys(20_000), 20, 20)
    for chain in plan.chains:
        depth = sum((draw.index >= 0).long() for draw in chain)
        for column in range(plan.weights.shape[1]):
            rho = stats.spearmanr(depth.numpy(), plan.weights[:, column].numpy()).statistic
            assert abs(rho) < 0.04, (column, rho)  # 5 standard errors for 20,000 independent pairs


def test_skipped_steps_are_marked_minus_one():
    keys = _keys(2000)
    draws = AUGMENTATIONS.build("autoaugment", policy="svhn").plan(keys, 20, 20)
    plan = AUGMENTATIONS.build("augmix", chain_depth=-1).plan(keys, 20, 20)
    for policy_draws in (draws, [d for chain in plan.chains for d in chain]):
        skipped = torch.cat([draw.index[draw.index < 0] for draw in policy_draws])
        assert skipped.numel() > 0 and bool((skipped == -1).all())


def test_randaugment_on_non_square_images_replays_through_torchvision():
    # Translations are fractions of the width along x and of the height along y, so a swapped side shows on
    # non-square images.
    h, w = 14, 30
    aug = AUGMENTATIONS.build("randaugment", num_ops=3, magnitude=20)
    x = torch.rand(40, 3, h, w, generator=torch.Generator().manual_seed(2))
    keys = sample_keys(1, 0, torch.arange(40))
    out = aug(x, torch.zeros(40, dtype=torch.int64), keys).images
    plan = aug.plan(keys, h, w)
    assert any("TranslateX" in draw.names() for draw in plan)
    for i in range(40):
        expected = x[i]
        for draw in plan:
            expected = torchvision_op(expected, draw.names()[i], float(draw.magnitude[i]), aug.interpolation)
        assert torch.allclose(out[i], expected, atol=1e-5, rtol=0), i


def test_augmix_on_non_square_images_replays_through_torchvision():
    h, w = 14, 30
    aug = AUGMENTATIONS.build("augmix", severity=10, mixture_width=2)
    x = torch.rand(16, 3, h, w, generator=torch.Generator().manual_seed(4))
    keys = sample_keys(0, 0, torch.arange(16))
    out = aug(x, torch.zeros(16, dtype=torch.int64), keys).images
    plan = aug.plan(keys, h, w)
    for i in range(16):
        assert torch.allclose(out[i], augmix_replayed(x[i], plan, i), atol=1e-5, rtol=0), i


# ---------------------------------------------------------------------------------------------- operations

def test_inverse_affine_is_torchvisions_with_rotation_and_both_shears():
    from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

    center = torch.tensor([[1.5, -2.0], [0.0, 0.0], [-3.0, 4.5]], dtype=torch.float64)
    angle = torch.tensor([30.0, -47.0, 200.0], dtype=torch.float64)
    translate = torch.tensor([[3.0, -1.0], [0.0, 2.0], [-4.0, 0.0]], dtype=torch.float64)
    shear = torch.tensor([[10.0, 5.0], [-20.0, 12.0], [7.0, -33.0]], dtype=torch.float64)
    ours = inverse_affine(center, angle, translate, shear)
    for i in range(3):
        theirs = _get_inverse_affine_matrix(center[i].tolist(), float(angle[i]), translate[i].tolist(), 1.0,
                                            shear[i].tolist())
        assert ours[i].flatten().tolist() == pytest.approx(theirs, abs=1e-12)


def test_solarize_inverts_pixels_equal_to_the_threshold():
    # White pixels (1.0) are common, and the top bin's threshold is exactly 1.0: torchvision inverts them.
    x = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]).view(1, 1, 1, 5).expand(3, 1, 1, 5).contiguous()
    m = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    out = apply_ops(x, (Op("Solarize"),), torch.zeros(3, dtype=torch.int64), m)
    for i in range(3):
        assert torch.equal(out[i], TF.solarize(x[i], float(m[i])))


@pytest.mark.parametrize("height, width", [(3, 5), (5, 3), (3, 3), (2, 6), (6, 1)])
def test_sharpness_on_narrow_images_equals_torchvision(height, width):
    # Three rows or columns have one interior line that torchvision sharpens; two or fewer have none.
    x = torch.rand(4, 3, height, width, generator=torch.Generator().manual_seed(height * 10 + width))
    m = torch.tensor([0.9, -0.9, 0.5, -0.3], dtype=torch.float64)
    out = apply_ops(x, (Op("Sharpness"),), torch.zeros(4, dtype=torch.int64), m)
    for i in range(4):
        torch.testing.assert_close(out[i], TF.adjust_sharpness(x[i], 1.0 + float(m[i])), atol=1e-6, rtol=0)


def test_contrast_blends_with_the_exactly_rounded_mean():
    # The mean is accumulated in float64 so that it does not depend on how a float32 reduction is split;
    # at factor 0 (m = -1) the output is that mean everywhere. float32 accumulation misses it by an ulp on
    # about a third of such images.
    x = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    out = contrast(x, torch.full((16,), -1.0, dtype=torch.float64))
    for i in range(16):
        exact = torch.tensor(math.fsum(x[i].double().flatten().tolist()) / x[i].numel(), dtype=torch.float32)
        assert bool((out[i] == exact).all()), i


@pytest.mark.parametrize("space, bins", [(RANDAUGMENT_OPS, 31), (AUTOAUGMENT_OPS, 10)])
def test_operations_on_float64_images_equal_torchvision(space, bins):
    h, w = 13, 17
    for k, op in enumerate(space):
        magnitudes = op.bins(bins, h, w).double()[[3, -1]] if op.bins is not None else torch.zeros(2).double()
        x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
        out = apply_ops(x, space, torch.full((2,), k), magnitudes, "bilinear")
        assert out.dtype == torch.float64
        for i in range(2):
            expected = torchvision_op(x[i], op.name, float(magnitudes[i]), "bilinear")
            assert torch.allclose(out[i], expected, atol=1e-6, rtol=0), (op.name, float(magnitudes[i]))


def test_check_ops_accepts_the_spaces_and_refuses_unknown_operations():
    for space in (RANDAUGMENT_OPS, TRIVIAL_AUGMENT_OPS, AUTOAUGMENT_OPS, AUGMIX_OPS, tuple(Op(n) for n in OP_NAMES)):
        check_ops(space)
    with pytest.raises(ValueError, match="unknown operation 'Blur'"):
        check_ops((Op("Rotate"), Op("Blur")))
