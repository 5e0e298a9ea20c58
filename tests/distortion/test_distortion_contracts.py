"""Contracts of the distortion formulas and masks that the hand examples leave open: documented defaults,
float64 precision, edge cases (one wrong prediction, no conflict trial, a run-dependent worst case), the
unrestricted CutOcclusion box's expected area, the occlusion masks' dispatch and the saliency maps against
pytorch-grad-cam."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from auglens.augment import sample_keys
from auglens.augment import random as rnd
from auglens.augment.mixed import fourier_masks
from auglens.distortion.affinity import affinity
from auglens.distortion.cue_conflict import coarse_predictions, load_class_mapping, shape_bias
from auglens.distortion.distortions import (box_occlusion_masks, cut_occlusion, fourier_occlusion_masks, grid_shuffle,
                                            occlude, occlusion_fractions, release_fourier_fractions,
                                            saliency_occlusion_masks)
from auglens.distortion.interference import di_index, misclassification_increase
from auglens.distortion.occlusion import occlusion_masks, saliency_maps


def _keys(n, seed=0):
    return sample_keys(seed, 0, torch.arange(n))


# ---------------------------------------------------------------------------------------------- DI

def test_release_shares_are_exact_in_float64_from_integer_counts():
    clean = torch.tensor([[1, 2, 0], [0, 0, 1]])  # run 2 has a single wrong prediction
    distorted = torch.tensor([[0, 1, 2], [2, 1, 0]])
    got = misclassification_increase(clean, distorted, 10)  # the default normalisation is the release's
    assert got.dtype == torch.float64
    expected = [[(Fraction(d, sum(dr)) - Fraction(c, sum(cr))) * 3 / 100 for c, d in zip(cr, dr)]
                for cr, dr in zip(clean.tolist(), distorted.tolist())]
    # exact shares (1/3, 2/3 ...) to double precision: a float32 share would be off by ~1e-8
    np.testing.assert_allclose(got.numpy(), np.array(expected, dtype=float), rtol=1e-14, atol=1e-17)
    # one wrong prediction is a share of 1, not 0 or 1/2
    assert got[1].tolist() == pytest.approx([2 / 3 * 0.03, 1 / 3 * 0.03, -0.03], rel=1e-14)


def test_di_index_defaults_to_the_release_normalisation():
    clean = torch.tensor([[2, 2, 4, 2], [5, 0, 0, 5]])
    distorted = torch.tensor([[10, 2, 4, 4], [5, 5, 5, 5]])
    default = di_index(clean, distorted, 1000)
    release = di_index(clean, distorted, 1000, "release")
    paper = di_index(clean, distorted, 1000, "paper")
    assert torch.equal(default.per_run, release.per_run) and not torch.allclose(default.per_run, paper.per_run)


def test_paper_worst_case_weights_every_run_by_the_largest_increase():
    # percent of 100 images: run 1 (+8, 0, +2), run 2 (+4, +1, 0) -> c_max = 0 (mean 6)
    clean = torch.tensor([[2, 2, 2], [2, 2, 2]])
    distorted = torch.tensor([[10, 2, 4], [6, 3, 2]])
    own = di_index(clean, distorted, 100, "paper")
    assert torch.allclose(own.per_run, torch.tensor([8 / 10 * 8, 4 / 5 * 4], dtype=torch.float64))
    worst = di_index(clean, distorted, 100, "paper", worst=True)
    assert torch.allclose(worst.per_run, torch.tensor([8 / 10 * 8, 4 / 5 * 8], dtype=torch.float64))


# ---------------------------------------------------------------------------------------------- grid shuffle

@pytest.mark.parametrize("shape, grid", [((2, 8), 4), ((8, 2), 4), ((3, 3), 4), ((8, 8), 0), ((8, 8), -1)])
def test_grid_shuffle_rejects_grids_without_whole_tiles(shape, grid):
    with pytest.raises(ValueError, match="grid must be"):
        grid_shuffle(torch.rand(2, 1, *shape), grid, _keys(2))


@pytest.mark.parametrize("shape, grid", [((4, 8), 4), ((8, 4), 4), ((5, 7), 1)])
def test_grid_shuffle_accepts_one_pixel_tiles_and_a_single_tile(shape, grid):
    x = torch.rand(20, 2, *shape)
    out = grid_shuffle(x, grid, _keys(20))
    if grid == 1:
        assert torch.equal(out, x)  # one tile: nothing moves
    else:
        # the multiset of pixel columns (tiles of one row or column) is kept, and something moved
        assert torch.equal(out.flatten(2).sort(dim=2).values, x.flatten(2).sort(dim=2).values)
        assert not torch.equal(out, x)


# ---------------------------------------------------------------------------------------------- boxes

def test_unrestricted_boxes_are_the_default_and_cover_the_expected_clipped_area():
    n, size = 4000, 64
    keys = _keys(n, seed=1)
    fraction = occlusion_fractions(keys)
    masks = box_occlusion_masks(fraction, keys, size, size)
    assert torch.equal(masks, box_occlusion_masks(fraction, keys, size, size, restricted=False))
    # A side s (as a share of the image's) centred uniformly covers on average s - s^2/4 of each axis
    # (the part outside is cut off), independently in both axes.
    s = fraction.sqrt()
    expected = float(((s - s**2 / 4) ** 2).mean())
    realised = masks.flatten(1).double().mean(1)
    assert abs(float(realised.mean()) - expected) < 0.01
    # a box whose centre is far enough from every border keeps its full area
    assert float(realised.max()) > 0.9


def test_restricted_corners_are_uniform_and_independent_in_both_axes():
    n, size = 3000, 16
    keys = _keys(n, seed=2)
    masks = box_occlusion_masks(torch.full((n,), 0.25), keys, size, size, restricted=True)  # 8x8 boxes
    assert bool((masks.flatten(1).sum(1) == 64).all())
    y0 = masks.any(dim=2).double().argmax(dim=1)
    x0 = masks.any(dim=1).double().argmax(dim=1)
    for offsets in (y0, x0):  # uniform over the 9 valid positions 0..8
        counts = torch.bincount(offsets.long(), minlength=9)
        assert len(counts) == 9 and int(counts.min()) > n / 9 * 0.75
    assert abs(float(np.corrcoef(y0.numpy(), x0.numpy())[0, 1])) < 0.1


def test_restricted_box_sides_round_in_double_precision_and_zero_removes_nothing():
    keys = _keys(6)
    # sqrt(0.097656255) * 8 = 2.50000006: a side of 3 pixels (in float32 the fraction is 0.09765625: side 2.5 -> 2)
    fraction = 0.097656255
    assert np.round(np.sqrt(fraction) * 8) == 3
    x = torch.rand(6, 3, 8, 8) + 1.0
    out = cut_occlusion(x, keys, fraction=fraction, restricted=True)
    assert ((out == 0).all(dim=1)).flatten(1).sum(1).tolist() == [9] * 6
    assert occlusion_masks("box", fraction, keys, 8, 8).flatten(1).sum(1).tolist() == [9] * 6
    # sqrt(0.17361111111111216) * 6 = 2.5000000000000075: 3 pixels (its float32 value gives 2.4999999 -> 2)
    assert occlusion_masks("box", 0.17361111111111216, keys, 6, 6).flatten(1).sum(1).tolist() == [9] * 6
    assert not box_occlusion_masks(torch.zeros(6), keys, 8, 8, restricted=True).any()
    assert not box_occlusion_masks(torch.zeros(6), keys, 8, 8).any()
    # on a 2 x 20 image a 1 % box has sides round(0.2) = 0 rows and round(2.0) = 2 columns: nothing is removed
    assert not box_occlusion_masks(torch.full((6,), 0.01), keys, 2, 20, restricted=True).any()
    assert not box_occlusion_masks(torch.full((6,), 0.01), keys, 20, 2, restricted=True).any()


def test_cut_occlusion_defaults_draw_unrestricted_beta_2_1_boxes_in_black():
    n, size = 3000, 32
    keys = _keys(n, seed=4)
    x = torch.rand(n, 1, size, size) + 0.5
    out = cut_occlusion(x, keys)
    masks = box_occlusion_masks(occlusion_fractions(keys, 2.0, 1.0), keys, size, size, restricted=False)
    assert torch.equal(out, torch.where(masks.unsqueeze(1), torch.zeros(()), x))
    # the Beta parameters are used: Beta(1, 3) boxes are small (mean lam 1/4)
    small = cut_occlusion(x, keys, restricted=True, beta=(1.0, 3.0))
    removed = (small == 0).flatten(1).double().mean(1)
    assert abs(float(removed.mean()) - 0.25) < 0.02


def test_occlude_fills_in_the_images_precision_with_black_by_default():
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64) + 1.0
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[:, 1:3, 0] = True
    assert torch.equal(occlude(x, masks)[:, :, 1:3, 0], torch.zeros(3, 3, 2, dtype=torch.float64))
    filled = occlude(x, masks, 0.1)
    assert bool((filled[:, :, 1:3, 0] == 0.1).all())  # the double 0.1, not float32's 0.1000000015
    assert torch.equal(filled[:, :, 0], x[:, :, 0])


# ---------------------------------------------------------------------------------------------- Fourier / saliency

def test_fourier_occlusion_uses_fmix_decay_power_3_by_default_and_the_given_one():
    keys = _keys(20)
    lam = torch.full((20,), 0.7, dtype=torch.float64)
    assert torch.equal(fourier_occlusion_masks(0.3, keys, 12, 12), ~fourier_masks(lam, keys, 12, 12, 3.0))
    smooth = fourier_occlusion_masks(0.3, keys, 12, 12, decay_power=1.0)
    assert torch.equal(smooth, ~fourier_masks(lam, keys, 12, 12, 1.0))
    assert not torch.equal(smooth, fourier_occlusion_masks(0.3, keys, 12, 12))
    assert torch.equal(occlusion_masks("fourier", 0.3, keys, 12, 12), ~fourier_masks(lam, keys, 12, 12, 3.0))
    assert torch.equal(occlusion_masks("fourier", 0.3, keys, 12, 12, decay_power=1.0), smooth)


def test_release_fractions_are_double_zeros_at_p_0():
    zeros = release_fourier_fractions(0.0, _keys(4))
    assert zeros.dtype == torch.float64 and zeros.tolist() == [0.0] * 4
    assert release_fourier_fractions(0.5, _keys(4)).dtype == torch.float64


def test_saliency_masks_count_is_the_ceiling_and_ties_follow_the_key_draw():
    n, h, w = 50, 4, 5
    keys = _keys(n)
    saliency = torch.randint(0, 3, (n, h, w)).float()  # many ties
    masks = saliency_occlusion_masks(saliency, 0.21, keys)  # 0.21 * 20 = 4.2 -> 5 pixels
    assert masks.dtype == torch.bool and masks.flatten(1).sum(1).tolist() == [5] * n
    assert torch.equal(masks, saliency_occlusion_masks(saliency, 0.21, keys, "most"))  # the default order
    # independent ranking: numpy's lexsort by saliency (descending), ties by the per-pixel draw (ascending)
    tiebreak = rnd.uniform(keys, 404, h * w).numpy()
    flat = saliency.flatten(1).numpy()
    for i in range(n):
        chosen = np.lexsort((tiebreak[i], -flat[i]))[:5]
        assert set(chosen.tolist()) == set(masks[i].flatten().nonzero().flatten().tolist())
    # a product that is a whole number up to rounding: 0.07 * 100 = 7.000000000000001 -> 7 pixels
    assert int(saliency_occlusion_masks(torch.rand(1, 10, 10), 0.07, keys[:1]).sum()) == 7


def test_occlusion_masks_dispatch_saliency_and_box():
    n, size = 400, 16
    keys = _keys(n, seed=5)
    saliency = torch.rand(n, size, size)
    for order in ("most", "least"):
        got = occlusion_masks("saliency", 0.3, keys, size, size, saliency=saliency, order=order)
        assert torch.equal(got, saliency_occlusion_masks(saliency, 0.3, keys, order))
    assert torch.equal(occlusion_masks("saliency", 0.3, keys, size, size, saliency=saliency),
                       saliency_occlusion_masks(saliency, 0.3, keys, "most"))
    with pytest.raises(ValueError, match="saliency maps"):
        occlusion_masks("saliency", 0.3, keys, size, size)
    # "box": restricted boxes, never clipped, side round(sqrt(0.3) * side) in each axis
    boxes = occlusion_masks("box", 0.3, keys, size, 12)
    side_h, side_w = round(math.sqrt(0.3) * size), round(math.sqrt(0.3) * 12)
    assert boxes.shape == (n, size, 12)
    assert boxes.flatten(1).sum(1).tolist() == [side_h * side_w] * n
    assert torch.equal(boxes, box_occlusion_masks(torch.full((n,), 0.3), keys, size, 12, restricted=True))


class _TinyNet(torch.nn.Module):
    auglens_target_layer = "features.3"

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(6, 8, 3, padding=1, stride=2), torch.nn.ReLU())
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("method, layer, input_size", [(None, None, 24), ("gradcam++", "features.1", None)])
def test_saliency_maps_match_pytorch_grad_cam_of_the_predicted_class(method, layer, input_size):
    pgc = pytest.importorskip("pytorch_grad_cam")
    from torchvision.transforms import functional as TF

    model = _TinyNet().eval()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(5, 3, 12, 12, generator=g)
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    options = {} if method is None else {"method": method}  # the default method is Grad-CAM
    got = saliency_maps(model, images, mean, std, input_size, target_layer=layer, batch_size=2, **options)
    # reference: torchvision's resize and normalisation, pytorch-grad-cam's map, resized back bilinearly
    x = images if input_size is None else TF.resize(images, [input_size, input_size], antialias=True)
    x = TF.normalize(x, mean.tolist(), std.tolist())
    reference_class = {None: pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus}[method]
    cam = reference_class(model=model, target_layers=[dict(model.named_modules())[layer or "features.3"]])
    try:
        reference = torch.from_numpy(cam(input_tensor=x, targets=None))  # None: the predicted class
    finally:
        cam.activations_and_grads.release()
    if input_size is not None:
        reference = F.interpolate(reference.unsqueeze(1), size=(12, 12), mode="bilinear",
                                  align_corners=False).squeeze(1)
    assert got.shape == (5, 12, 12)
    assert float(reference.flatten(1).std(1).min()) > 0.05  # informative maps
    torch.testing.assert_close(got, reference, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------- affinity, cue conflict

def test_affinity_is_computed_in_double_precision():
    assert float(affinity(0.7, 0.8)) == 0.7 - 0.8
    assert float(affinity(0.7, 0.8, "ratio")) == 0.7 / 0.8


def test_shape_bias_is_undefined_without_conflict_trials_or_hits():
    same = torch.tensor([1, 2])
    scores = shape_bias(torch.tensor([1, 2]), same, same)
    assert scores["trials"] == 0 and all(math.isnan(scores[k]) for k in ("shape_accuracy", "texture_accuracy",
                                                                          "shape_bias"))
    missed = shape_bias(torch.tensor([3, 3]), torch.tensor([0, 1]), torch.tensor([1, 0]))
    assert missed["shape_accuracy"] == 0.0 and missed["texture_accuracy"] == 0.0 and math.isnan(missed["shape_bias"])


def test_class_mapping_accepts_every_valid_index_and_rejects_partial_or_empty_classes(tmp_path):
    path = tmp_path / "mapping.json"
    classes = ["tabby", "beagle", "siamese"]
    path.write_text(json.dumps({"cat": [0, 2], "dog": [1]}))
    assert load_class_mapping(path, classes) == {"cat": [0, 2], "dog": [1]}
    for bad in ({"cat": [3]}, {"cat": [-1]}, {"cat": ["tabby", "lion"]}, {"cat": [0], "dog": []}, {}):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            load_class_mapping(path, classes)


def test_coarse_predictions_one_per_image():
    probabilities = torch.tensor([[0.5, 0.0, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64)
    # cue means: (0.25, 0.5), (0.45, 0.1), (0.1, 0.8)
    assert coarse_predictions(probabilities, [[0, 1], [2]]).tolist() == [1, 0, 1]


def test_cue_conflict_colour_images_are_read_channel_first_from_every_subfolder(tmp_path):
    from PIL import Image

    from auglens.distortion.cue_conflict import load_cue_conflict

    rng = np.random.default_rng(0)
    pixels = {"cat1-dog2.png": rng.integers(0, 256, (4, 5, 3), dtype=np.uint8),
              "sub/dog3-cat4.png": rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)}
    for name, array in pixels.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(array).save(tmp_path / name)
    loaded = load_cue_conflict(tmp_path, ["cat", "dog"], 3, 4, 5)
    assert loaded.files == ["cat1-dog2.png", "sub/dog3-cat4.png"]
    for image, name in zip(loaded.images, loaded.files):
        assert torch.equal(image, torch.from_numpy(pixels[name]).permute(2, 0, 1))
    # a palette image is read as the colours of its palette, not as its palette indices
    Image.fromarray(pixels["cat1-dog2.png"]).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(
        tmp_path / "sub" / "cat5-dog6.png")
    palette = load_cue_conflict(tmp_path, ["cat", "dog"], 3, 4, 5)
    with Image.open(tmp_path / "sub" / "cat5-dog6.png") as image:
        assert image.mode == "P"
        expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(palette.images[palette.files.index("sub/cat5-dog6.png")], expected)
    (tmp_path / "sub" / "cat5-dog6.png").unlink()
    grey = load_cue_conflict(tmp_path, ["cat", "dog"], 1, 4, 5)
    for image, name in zip(grey.images, grey.files):  # PIL's own RGB -> L conversion
        assert torch.equal(image[0], torch.from_numpy(np.array(Image.fromarray(pixels[name]).convert("L"))))


def test_matched_pairs_accept_a_class_with_a_single_simple_image_and_reject_a_missing_one():
    from auglens.distortion.simplicity import matched_pairs, random_pairs

    pairs = matched_pairs(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), seed=0)
    assert pairs.tolist()[:2] == [0, 0] and pairs[2] in (1, 2)
    with pytest.raises(ValueError, match="no image of class 2"):
        matched_pairs(torch.tensor([0, 1]), torch.tensor([2]), seed=0)
    # random pairs are a pure function of the seed, whatever the global random state
    torch.manual_seed(1)
    first = random_pairs(200, 7, seed=3)
    torch.manual_seed(2)
    assert torch.equal(first, random_pairs(200, 7, seed=3))
    assert not torch.equal(first, random_pairs(200, 7, seed=4))
