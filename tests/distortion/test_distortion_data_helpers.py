"""Data helpers of the distortion analyses: class removal, stacked pairs, image conforming, cue-conflict files."""

from __future__ import annotations

import pytest
import torch

from auglens.augment.mixed import conform_images
from auglens.data.datasets import ImageSet
from auglens.data.prepared import PreparedData
from auglens.distortion.analyses import summarise
from auglens.distortion.derived import without_class
from auglens.distortion.cue_conflict import load_cue_conflict
from auglens.distortion.simplicity import matched_pairs, pick_classes, random_pairs, stack_halves, stacked_set


def _set(labels, classes=("a", "b", "c"), size=4, channels=1):
    labels = torch.tensor(labels)
    images = (labels.view(-1, 1, 1, 1) * 10 + torch.arange(len(labels)).view(-1, 1, 1, 1)).expand(
        -1, channels, size, size).to(torch.uint8).contiguous()
    return ImageSet(images, labels, list(classes))


def test_without_class_drops_and_relabels():
    data = PreparedData(_set([0, 1, 2, 1]), _set([2, 0]), _set([1, 2, 0]), torch.zeros(1), torch.ones(1))
    reduced = without_class(data, 1)
    assert reduced.classes == ["a", "c"]
    assert reduced.train.labels.tolist() == [0, 1] and reduced.test.labels.tolist() == [1, 0]
    assert reduced.validation.labels.tolist() == [1, 0]
    assert reduced.train.images[1, 0, 0, 0] == 22  # the class-2 image, now labelled 1


def test_pick_classes_relabels_in_the_given_order():
    picked = pick_classes(_set([0, 1, 2, 2]), [2, 0])
    assert picked.labels.tolist() == [1, 0, 0] and picked.classes == ["c", "a"]


def test_matched_pairs_share_the_class_and_random_pairs_do_not_care():
    simple, complex_ = torch.tensor([0, 1, 0, 1, 1]), torch.tensor([1, 1, 0, 0, 1, 0])
    pairs = matched_pairs(simple, complex_, seed=0)
    assert torch.equal(simple[pairs], complex_)
    assert torch.equal(pairs, matched_pairs(simple, complex_, seed=0))
    anywhere = random_pairs(1000, 5, seed=0)
    assert set(anywhere.tolist()) == set(range(5))


def test_stacked_images_put_the_simple_half_on_top():
    simple = _set([0, 1], classes=("x", "y"), size=2)
    complex_ = _set([1, 0], classes=("p", "q"), size=4, channels=3)
    stacked, simple_labels = stacked_set(simple, complex_, torch.tensor([1, 0]))
    assert stacked.images.shape == (2, 3, 8, 4)
    assert torch.equal(stacked.images[:, :, 4:], complex_.images)
    assert stacked.labels.tolist() == [1, 0] and simple_labels.tolist() == [1, 0]
    assert stacked.classes == ["x / p", "y / q"]
    assert stack_halves(simple.images, complex_.images).shape == (2, 3, 8, 4)


def test_the_simple_half_is_padded_not_resized():
    """Section 4.1: "we stack a padded image from the kth class of MNIST on top of a sample from the kth class
    of CIFAR-10": a 28x28 digit keeps its pixels, centred in a black 32x32 frame (by hand: 2x2 in 4x4)."""
    digit = torch.tensor([[10, 20], [30, 40]], dtype=torch.uint8).view(1, 1, 2, 2)
    below = torch.full((1, 3, 4, 4), 7, dtype=torch.uint8)
    expected_top = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    expected_top[:, :, 1:3, 1:3] = digit  # grey repeated over the three channels
    assert torch.equal(stack_halves(digit, below), torch.cat([expected_top, below], dim=2))
    # MNIST on CIFAR: 2 black rows and columns on every side, the digit's pixels unchanged
    mnist = torch.randint(1, 256, (2, 1, 28, 28), dtype=torch.uint8)
    out = stack_halves(mnist, torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert out.shape == (2, 3, 64, 32) and torch.equal(out[:, :, 2:30, 2:30], mnist.expand(-1, 3, -1, -1))
    assert int(out[:, :, :32].count_nonzero()) == 3 * mnist.count_nonzero()


def test_conform_images_converts_channels_and_size():
    grey = torch.full((2, 1, 4, 4), 100, dtype=torch.uint8)
    colour = conform_images(grey, 3, 8, 8)
    assert colour.shape == (2, 3, 8, 8) and colour.dtype == torch.uint8 and bool((colour == 100).all())
    back = conform_images(torch.tensor([255.0, 0.0, 0.0]).view(1, 3, 1, 1), 1, 1, 1)
    assert float(back) == pytest.approx(0.299 * 255)


def test_summarise_gives_mean_std_and_runs():
    import pandas as pd

    frame = pd.DataFrame({"a": ["x", "x", "y"], "v": [1.0, 3.0, 5.0]})
    out = summarise(frame, ["a"], ["v"])
    assert out["v_mean"].tolist() == [2.0, 5.0] and out["runs"].tolist() == [2, 1]
    assert out["v_std"].iloc[0] == pytest.approx(2 ** 0.5) and pd.isna(out["v_std"].iloc[1])
    # runs counts the runs with a value of the first measure; means skip the missing ones
    gaps = pd.DataFrame({"a": ["x", "x", "x"], "v": [1.0, float("nan"), 3.0], "w": [1.0, 2.0, 3.0]})
    out = summarise(gaps, ["a"], ["v", "w"])
    assert out["runs"].tolist() == [2] and out["v_mean"].tolist() == [2.0] and out["w_mean"].tolist() == [2.0]


def test_cue_conflict_loader_maps_classes_and_reports_unknown_ones(tmp_path):
    from PIL import Image

    for name in ("Dog1-cat2.png", "kitty3-dog4.png"):
        Image.new("RGB", (6, 6), (10, 20, 30)).save(tmp_path / name)
    loaded = load_cue_conflict(tmp_path, ["cat", "dog"], 1, 4, 4, class_map={"kitty": "cat"})
    assert loaded.images.shape == (2, 1, 4, 4)
    assert loaded.shape.tolist() == [1, 0] and loaded.texture.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"\['kitty'\].*class_map"):
        load_cue_conflict(tmp_path, ["cat", "dog"], 1, 4, 4)
