"""The thesis's seven augmentations against torchvision, the library the thesis used.

Two kinds of check per augmentation:
- images: for a fixed parameter set our batched op equals torchvision's (functional op, or the transform
  class applied with our drawn parameters) on the same image, to float rounding (tolerances below);
- parameters: over >= 1,000 draws our per-sample parameters follow the distribution of torchvision's
  ``make_params`` (two-sample Kolmogorov–Smirnov p > 1e-3, and the summary statistic named in each test).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageOps
from scipy.stats import ks_2samp

from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment import filters, geometric
from auglens.train.loop import mixed_cross_entropy

DRAWS = 2000
ATOL_64 = 1e-12  # float64 images: our op and torchvision's differ by rounding only
ATOL_32 = 2e-6   # float32 images (torchvision's hue adjustment computes in float32)


def _keys(n=DRAWS, seed=0):
    return sample_keys(seed, 0, torch.arange(n))


def _torchvision_draws(transform, image, n=DRAWS, seed=0):
    torch.manual_seed(seed)
    return [transform.make_params([image]) for _ in range(n)]


def _same_distribution(ours, theirs):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    result = ks_2samp(ours, theirs)
    assert result.pvalue > 1e-3, (result, ours.mean(), theirs.mean())


def _images(n=4, c=3, h=20, w=24, dtype=torch.float64, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---------------------------------------------------------------------------------------------- affine

@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_affine_equals_torchvision_affine(interpolation):
    x = _images()
    angle = torch.tensor([12.3, -7.1, 3.3, 0.0], dtype=torch.float64)
    translate = torch.tensor([[2.0, -1.0], [0.0, 3.0], [-2.0, -2.0], [1.0, 0.0]], dtype=torch.float64)
    scale = torch.tensor([0.93, 1.07, 1.0, 1.1], dtype=torch.float64)
    shear = torch.tensor([[5.5, 0.0], [-8.0, 2.0], [0.0, 0.0], [9.0, -3.0]], dtype=torch.float64)
    ours = geometric.affine(x, angle, translate, scale, shear, interpolation)
    for i in range(4):
        expected = TF.affine(x[i], angle=float(angle[i]), translate=translate[i].int().tolist(),
                             scale=float(scale[i]), shear=shear[i].tolist(),
                             interpolation=TF.InterpolationMode(interpolation), fill=0)
        torch.testing.assert_close(ours[i], expected, atol=ATOL_64, rtol=0)


def test_random_affine_is_torchvisions_transform_with_our_parameters():
    aug = AUGMENTATIONS.build("affine", degrees=20.0, translate=0.2, scale=(0.8, 1.2), shear=(-5.0, 10.0, -3.0, 3.0),
                              interpolation="bilinear")
    reference = T.RandomAffine(20.0, translate=(0.2, 0.2), scale=(0.8, 1.2), shear=(-5.0, 10.0, -3.0, 3.0),
                               interpolation=T.InterpolationMode.BILINEAR)
    x, keys = _images(), _keys(4, seed=3)
    out = aug(x, torch.zeros(4, dtype=torch.int64), keys).images
    p = aug.params(keys, 20, 24)
    for i in range(4):
        params = dict(angle=float(p["angle"][i]), translate=p["translate"][i].int().tolist(),
                      scale=float(p["scale"][i]), shear=p["shear"][i].tolist())
        torch.testing.assert_close(out[i], reference.transform(x[i], params).clamp(0, 1), atol=ATOL_64, rtol=0)


def test_affine_parameters_follow_torchvision():
    aug = AUGMENTATIONS.build("affine")  # degrees 15, translate 0.1, scale (0.9, 1.1), shear 10 (x only)
    ours = aug.params(_keys(), 32, 32)
    theirs = _torchvision_draws(T.RandomAffine(15.0, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10.0),
                                torch.zeros(3, 32, 32))
    _same_distribution(ours["angle"], [t["angle"] for t in theirs])
    _same_distribution(ours["scale"], [t["scale"] for t in theirs])
    _same_distribution(ours["shear"][:, 0], [t["shear"][0] for t in theirs])
    assert float(ours["shear"][:, 1].abs().max()) == 0.0 and all(t["shear"][1] == 0.0 for t in theirs)
    for axis in (0, 1):
        mine = ours["translate"][:, axis]
        assert torch.equal(mine, mine.round()) and float(mine.abs().max()) == 3.0  # whole pixels, |t| <= 3.2
        _same_distribution(mine, [t["translate"][axis] for t in theirs])


# ---------------------------------------------------------------------------------------------- elastic

def test_elastic_equals_torchvision_elastic():
    x = _images()
    displacement = 0.05 * torch.randn(4, 20, 24, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = geometric.elastic(x, displacement)
    for i in range(4):
        torch.testing.assert_close(ours[i], TF.elastic(x[i], displacement[i : i + 1], fill=0), atol=ATOL_64, rtol=0)


def test_elastic_augmentation_is_torchvisions_transform_with_our_field():
    aug = AUGMENTATIONS.build("elastic", alpha=30.0, sigma=3.0)
    x, keys = _images(h=28, w=28), _keys(4, seed=5)
    out = aug(x, torch.zeros(4, dtype=torch.int64), keys).images
    field = aug.params(keys, 28, 28, dtype=torch.float64)["displacement"]
    reference = T.ElasticTransform(alpha=30.0, sigma=3.0)
    for i in range(4):
        expected = reference.transform(x[i], {"displacement": field[i : i + 1]}).clamp(0, 1)
        torch.testing.assert_close(out[i], expected, atol=ATOL_64, rtol=0)


def _rms_pixels(displacement, height, width):
    """RMS displacement in pixels of (N, H, W, 2) fields in normalised units (x: W / 2 px per unit)."""
    pixels = displacement * torch.tensor([width / 2.0, height / 2.0], dtype=displacement.dtype)
    return float(pixels.pow(2).sum(-1).mean().sqrt())


@pytest.fixture
def one_thread():
    # 1,000 single-image blurs with a 41-tap kernel: thread start-up dominates, so one thread is fastest.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_elastic_displacement_matches_torchvision_within_5_percent(one_thread):
    size, n = 32, 1000
    theirs = _torchvision_draws(T.ElasticTransform(alpha=50.0, sigma=5.0), torch.zeros(3, size, size), n=n)
    reference = _rms_pixels(torch.cat([t["displacement"] for t in theirs]).double(), size, size)
    ours = AUGMENTATIONS.build("elastic", alpha=50.0, sigma=5.0).params(_keys(n), size, size)
    measured = _rms_pixels(ours["displacement"].double(), size, size)
    assert abs(measured / reference - 1) < 0.05, (measured, reference)
    # The Simard convention (alpha in pixels, auglens's earlier reading) doubles it: the check above can fail.
    simard = AUGMENTATIONS.build("elastic", alpha=50.0, sigma=5.0, convention="simard").params(_keys(n), size, size)
    assert abs(_rms_pixels(simard["displacement"].double(), size, size) / reference - 2) < 0.1


# ---------------------------------------------------------------------------------------------- random crop

def test_resized_crop_equals_torchvision_resized_crop():
    top, left = torch.tensor([0, 3, 5, 19]), torch.tensor([0, 2, 7, 0])
    height, width = torch.tensor([20, 11, 7, 1]), torch.tensor([24, 17, 9, 24])
    for dtype, atol in ((torch.float64, ATOL_64), (torch.float32, ATOL_32)):
        x = _images(dtype=dtype)
        ours = geometric.resized_crop(x, top, left, height, width)
        for i in range(4):
            expected = TF.resized_crop(x[i], int(top[i]), int(left[i]), int(height[i]), int(width[i]), [20, 24],
                                       antialias=True)
            torch.testing.assert_close(ours[i], expected, atol=atol, rtol=0)


@pytest.mark.parametrize("scale, ratio", [((0.08, 1.0), (3 / 4, 4 / 3)), ((0.5, 0.9), (2.0, 3.0))])
def test_random_crop_boxes_follow_torchvision_random_resized_crop(scale, ratio):
    # The second case makes torchvision's 10 tries fail often on a 28x28 image, exercising the fallback.
    aug = AUGMENTATIONS.build("random_crop", scale=scale, ratio=ratio)
    ours = aug.params(_keys(), 28, 28)
    theirs = _torchvision_draws(T.RandomResizedCrop(28, scale=scale, ratio=ratio), torch.zeros(3, 28, 28))
    area = (ours["height"] * ours["width"]).double() / 28**2
    _same_distribution(area, [t["height"] * t["width"] / 28**2 for t in theirs])
    _same_distribution(ours["width"].double() / ours["height"], [t["width"] / t["height"] for t in theirs])
    _same_distribution(ours["top"], [t["top"] for t in theirs])
    _same_distribution(ours["left"], [t["left"] for t in theirs])
    assert bool(((ours["top"] + ours["height"] <= 28) & (ours["left"] + ours["width"] <= 28)).all())


def test_random_crop_is_torchvisions_transform_with_our_boxes():
    aug = AUGMENTATIONS.build("random_crop")
    reference = T.RandomResizedCrop((20, 24))
    x, keys = _images(dtype=torch.float32), _keys(4, seed=2)
    out = aug(x, torch.zeros(4, dtype=torch.int64), keys).images
    p = aug.params(keys, 20, 24)
    for i in range(4):
        box = {k: int(p[k][i]) for k in ("top", "left", "height", "width")}
        torch.testing.assert_close(out[i], reference.transform(x[i], box), atol=ATOL_32, rtol=0)


def test_size_fraction_crops_a_fixed_box_at_a_uniform_position():
    p = AUGMENTATIONS.build("random_crop", size_fraction=0.8).params(_keys(), 28, 28)
    assert set(p["height"].tolist()) == {22} and set(p["width"].tolist()) == {22}
    counts = torch.bincount(p["top"], minlength=7)
    assert len(counts) == 7 and int(counts.min()) > DRAWS / 7 * 0.8  # 0..6, uniform


# ---------------------------------------------------------------------------------------------- colour jitter

@pytest.mark.parametrize("channels", [1, 3])
def test_colour_adjustments_equal_torchvision(channels):
    x = _images(c=channels, dtype=torch.float32)
    factor = torch.tensor([0.6, 1.4, 1.0, 0.0])
    shift = torch.tensor([0.1, -0.37, 0.5, -0.5])
    cases = [(filters.adjust_brightness, TF.adjust_brightness, factor),
             (filters.adjust_contrast, TF.adjust_contrast, factor),
             (filters.adjust_saturation, TF.adjust_saturation, factor),
             (filters.adjust_hue, TF.adjust_hue, shift)]
    for ours, theirs, values in cases:
        out = ours(x, values)
        for i in range(4):
            torch.testing.assert_close(out[i], theirs(x[i], float(values[i])), atol=ATOL_32, rtol=0)


def test_color_jitter_is_torchvisions_transform_with_our_parameters():
    aug = AUGMENTATIONS.build("color_jitter", brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2)
    reference = T.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2)
    n = 48  # enough images that many of the 24 orders occur
    x, keys = _images(n=n, dtype=torch.float32, h=8, w=8), _keys(n, seed=4)
    out = aug(x, torch.zeros(n, dtype=torch.int64), keys).images
    p = aug.params(keys)
    assert len({tuple(row) for row in p["order"].tolist()}) > 12
    for i in range(n):
        params = dict(fn_idx=p["order"][i].tolist(), brightness_factor=float(p["brightness"][i]),
                      contrast_factor=float(p["contrast"][i]), saturation_factor=float(p["saturation"][i]),
                      hue_factor=float(p["hue"][i]))
        torch.testing.assert_close(out[i], reference.transform(x[i], params), atol=ATOL_32, rtol=0)


def test_color_jitter_parameters_follow_torchvision():
    aug = AUGMENTATIONS.build("color_jitter")
    ours = aug.params(_keys())
    theirs = _torchvision_draws(T.ColorJitter(0.4, 0.4, 0.4, 0.1), torch.zeros(3, 4, 4))
    for name in ("brightness", "contrast", "saturation", "hue"):
        _same_distribution(ours[name], [t[f"{name}_factor"] for t in theirs])
    # Orders: every position holds each adjustment a quarter of the time, as torch.randperm(4).
    for step in range(4):
        mine = torch.bincount(ours["order"][:, step], minlength=4).double() / DRAWS
        ref = torch.bincount(torch.stack([t["fn_idx"] for t in theirs])[:, step], minlength=4).double() / DRAWS
        assert float((mine - 0.25).abs().max()) < 0.03 and float((ref - mine).abs().max()) < 0.04
    assert len({tuple(row) for row in ours["order"].tolist()}) == 24


def test_fixed_order_yiq_is_the_earlier_reading():
    aug = AUGMENTATIONS.build("color_jitter", order="fixed", hue_space="yiq")
    assert (aug.params(_keys(8))["order"] == torch.arange(4)).all()
    x = _images(dtype=torch.float32)
    hsv = filters.adjust_hue(x, torch.full((4,), 0.2))
    yiq = filters.rotate_hue_yiq(x, torch.full((4,), 0.2))
    assert float((hsv - yiq).abs().max()) > 0.05  # the two hue spaces differ; only "hsv" is torchvision's


# ---------------------------------------------------------------------------------------------- blur

def test_gaussian_blur_equals_torchvision_and_sigma_follows_it():
    x = _images(dtype=torch.float64)
    sigmas = torch.tensor([0.1, 0.7, 1.3, 2.0], dtype=torch.float64)
    out = filters.gaussian_blur(x, sigmas, 7)
    for i in range(4):
        expected = TF.gaussian_blur(x[i], [7, 7], [float(sigmas[i])] * 2)
        torch.testing.assert_close(out[i], expected, atol=ATOL_64, rtol=0)
    ours = AUGMENTATIONS.build("gaussian_blur").params(_keys())["sigma"]
    theirs = _torchvision_draws(T.GaussianBlur(5, sigma=(0.1, 2.0)), torch.zeros(3, 8, 8))
    _same_distribution(ours, [t["sigma"][0] for t in theirs])


# ---------------------------------------------------------------------------------------------- equalisation

def test_equalize_equals_pil_and_torchvision():
    as_bytes = torch.randint(30, 160, (4, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = as_bytes.float() / 255
    out = AUGMENTATIONS.build("equalize")(x, torch.zeros(4, dtype=torch.int64), _keys(4)).images
    assert torch.equal(out, TF.equalize(x))
    for i in range(4):  # PIL, the independent reference torchvision follows
        pil = ImageOps.equalize(Image.fromarray(as_bytes[i].permute(1, 2, 0).numpy()))
        expected = torch.from_numpy(np.array(pil)).permute(2, 0, 1)
        assert torch.equal((out[i] * 255).round().to(torch.uint8), expected)


def test_equalize_probability_follows_torchvision_random_equalize():
    aug = AUGMENTATIONS.build("equalize", p=0.5)
    applied = aug.params(_keys())["apply"].double()
    torch.manual_seed(0)
    reference = T.RandomEqualize(p=0.5)
    theirs = [float(torch.rand(1) < reference.p) for _ in range(DRAWS)]  # RandomApply's coin, per call
    assert abs(float(applied.mean()) - 0.5) < 0.03 and abs(float(applied.mean()) - np.mean(theirs)) < 0.05
    x = _images(n=16, dtype=torch.float32)
    keys = _keys(16)
    out = aug(x, torch.zeros(16, dtype=torch.int64), keys).images
    chosen = aug.params(keys)["apply"]
    assert torch.equal(out[chosen], TF.equalize(x[chosen])) and torch.equal(out[~chosen], x[~chosen])


# ---------------------------------------------------------------------------------------------- cutmix

def test_cutmix_receiver_label_trains_on_the_receivers_label_alone():
    n = 32
    x = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n) % 10
    logits = torch.randn(n, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    receiver = AUGMENTATIONS.build("cutmix", label="receiver")(x, labels, _keys(n))
    mixed = AUGMENTATIONS.build("cutmix", label="mixed")(x, labels, _keys(n))
    assert torch.equal(receiver.images, mixed.images)  # same boxes and partners; only the target differs
    loss = mixed_cross_entropy(logits, receiver.labels, receiver.partner_labels, receiver.lam)
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels), atol=1e-12, rtol=0)
    mixed_loss = mixed_cross_entropy(logits, mixed.labels, mixed.partner_labels, mixed.lam)
    assert abs(float(mixed_loss - loss)) > 1e-3


def test_cutmix_kept_share_follows_torchvision_cutmix():
    size = 32
    x = torch.rand(DRAWS, 1, size, size)
    ours = AUGMENTATIONS.build("cutmix", label="mixed")(x, torch.arange(DRAWS), _keys()).lam
    theirs = _torchvision_draws(T.CutMix(num_classes=10), torch.zeros(2, 1, size, size))
    _same_distribution(ours, [t["lam_adjusted"] for t in theirs])
