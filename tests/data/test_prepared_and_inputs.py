"""A study's prepared data and the model's input against independent oracles: numpy and PIL's resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from auglens.data import ImageSet, channel_stats, load_dataset, normalize, resize_keep_aspect, resize_masks
from auglens.data import prepared as prepared_module
from auglens.data.prepared import DataSpec, model_input, prepare_data


def pil_resize_keep_aspect(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W) float -> (S, S): PIL's bilinear resize (antialiased when shrinking) of the shorter side to
    ``size``, the longer one in proportion (rounded), then the central ``size x size`` (the lower offset)."""
    h, w = image.shape
    new_h, new_w = (size, round(w * size / h)) if h <= w else (round(h * size / w), size)
    resized = np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((new_w, new_h), Image.BILINEAR))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top : top + size, left : left + size]


SHAPES = [(20, 40, 10), (40, 20, 10), (13, 29, 7), (31, 17, 12), (9, 9, 16), (10, 15, 24), (8, 12, 8), (12, 8, 8)]


@pytest.mark.parametrize("h, w, size", SHAPES)
def test_resize_keep_aspect_is_pils_resize_and_centre_crop(h, w, size):
    images = np.random.default_rng(h * w).random((2, 3, h, w)).astype(np.float32)
    ours = resize_keep_aspect(torch.from_numpy(images), size)
    assert ours.shape == (2, 3, size, size) and ours.dtype == torch.float32
    for n in range(2):
        for c in range(3):
            assert np.allclose(ours[n, c].numpy(), pil_resize_keep_aspect(images[n, c], size), atol=2e-6)


@pytest.mark.parametrize("h, w, size", SHAPES)
def test_resize_keep_aspect_of_bytes_rounds_to_the_nearest_byte(h, w, size):
    images = np.random.default_rng(h + w).integers(0, 256, (1, 2, h, w), dtype=np.uint8)
    ours = resize_keep_aspect(torch.from_numpy(images), size)
    assert ours.dtype == torch.uint8
    for c in range(2):
        exact = pil_resize_keep_aspect(images[0, c].astype(np.float32), size)
        assert np.all(np.abs(ours[0, c].numpy().astype(np.float64) - exact) <= 0.5 + 1e-3)


def test_black_and_white_bytes_stay_black_and_white():
    images = torch.zeros(1, 1, 12, 18, dtype=torch.uint8)
    images[..., :, 9:] = 255
    out = resize_keep_aspect(images, 6)
    assert out.dtype == torch.uint8 and out[..., :3].eq(0).all() and out[..., -2:].eq(255).all()


def test_resize_of_the_model_size_is_the_identity():
    images = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    assert resize_keep_aspect(images, 8) is images


def test_a_mask_pixel_half_covered_is_object():
    mask = torch.tensor([[[True, False], [True, False]]])  # the left half of a 2x2 image
    assert resize_masks(mask, 1).tolist() == [[[True]]]
    assert resize_masks(~mask, 1).tolist() == [[[True]]]
    quarter = torch.tensor([[[True, False], [False, False]]])
    assert resize_masks(quarter, 1).tolist() == [[[False]]]
    assert resize_masks(mask, 2).dtype == torch.bool


@pytest.mark.parametrize("n, chunk", [(1, 4096), (7, 1), (7, 3), (9, 9), (10, 4)])
def test_channel_stats_are_numpys_over_every_chunk(n, chunk):
    images = torch.from_numpy(np.random.default_rng(n).integers(0, 256, (n, 2, 3, 5), dtype=np.uint8))
    mean, std = channel_stats(images, chunk=chunk)
    x = images.numpy().astype(np.float64) / 255
    assert mean.dtype == std.dtype == torch.float32 and mean.shape == std.shape == (2,)
    assert np.allclose(mean.numpy(), x.mean(axis=(0, 2, 3)), rtol=1e-6, atol=0)
    assert np.allclose(std.numpy(), x.std(axis=(0, 2, 3)), rtol=1e-6, atol=0)  # population std, as numpy's


def test_channel_stats_accumulate_in_double_precision():
    # 6000 one-pixel chunks: a float32 running sum would be off by ~1e-6 relative, 20 float32 steps.
    images = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (6000, 2, 1, 1), dtype=np.uint8))
    mean, std = channel_stats(images, chunk=1)
    x = images.numpy().astype(np.float64) / 255
    assert np.array_equal(mean.numpy(), x.mean(axis=(0, 2, 3)).astype(np.float32))
    assert np.allclose(std.numpy(), x.std(axis=(0, 2, 3)), rtol=2e-7, atol=0)


def test_channel_stats_of_constant_channels():
    # Every byte value as a constant channel: its mean exactly, and the std floor 1e-6 (never 0 or NaN).
    images = torch.arange(256, dtype=torch.uint8).view(1, 256, 1, 1).expand(3, 256, 2, 2).contiguous()
    mean, std = channel_stats(images)
    assert torch.equal(mean, torch.from_numpy((np.arange(256) / 255).astype(np.float32)))
    assert torch.equal(std, torch.full((256,), 1e-6, dtype=torch.float32))


def test_normalize_is_numpys():
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 4, 5))
    mean, std = rng.random(3), rng.random(3) + 0.5
    ours = normalize(torch.from_numpy(x).float(), torch.from_numpy(mean).float(), torch.from_numpy(std).float())
    expected = (x - mean[None, :, None, None]) / std[None, :, None, None]
    assert ours.dtype == torch.float32 and np.allclose(ours.numpy(), expected, atol=1e-6)
    # The images' dtype is kept, whatever the statistics' (float32 from channel_stats).
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        out = normalize(torch.from_numpy(x).to(dtype), torch.from_numpy(mean).float(), torch.from_numpy(std).float())
        assert out.dtype == dtype and np.allclose(out.double().numpy(), expected, atol=0.05)


@pytest.mark.parametrize("input_size", [None, 6, 16])
def test_model_input_from_bytes_and_from_floats(input_size):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 3, 9, 11), dtype=np.uint8)
    mean, std = np.array([0.2, 0.5, 0.7]), np.array([0.1, 0.3, 0.25])
    x = images.astype(np.float64) / 255
    if input_size is not None:
        x = np.stack([[pil_resize_keep_aspect(channel, input_size) for channel in image] for image in x])
    expected = (x - mean[None, :, None, None]) / std[None, :, None, None]
    args = (torch.from_numpy(mean).float(), torch.from_numpy(std).float(), input_size)
    from_bytes = model_input(torch.from_numpy(images), *args)
    from_floats = model_input(torch.from_numpy(images.astype(np.float64) / 255), *args)  # [0, 1] floats
    for ours in (from_bytes, from_floats):
        assert ours.dtype == torch.float32 and ours.shape == expected.shape
        assert np.allclose(ours.numpy(), expected, atol=2e-5)


def test_data_spec_defaults_are_the_documented_ones():
    spec = DataSpec("synthetic")
    assert (spec.root, spec.download, spec.image_size, spec.train_subset, spec.test_subset) == (None, True, None, None, None)
    assert (spec.subset_seed, spec.validation_fraction, spec.split_seed) == (0, 0.1, 0)


def test_prepared_data_is_the_subset_split_and_training_statistics():
    spec = DataSpec("synthetic", train_subset=100, test_subset=40, subset_seed=3, validation_fraction=0.2, split_seed=5)
    data = prepare_data(spec)
    raw = load_dataset("synthetic")
    # Class counts: 100 of 480 balanced images -> 25 per class, 20 % of them (5) for validation; 10 test per class.
    assert np.bincount(data.train.labels.numpy()).tolist() == [20] * 4
    assert np.bincount(data.validation.labels.numpy()).tolist() == [5] * 4
    assert np.bincount(data.test.labels.numpy()).tolist() == [10] * 4
    # The images are the data set's own, each used once, with their labels and masks.
    def rows(images):
        return [bytes(row) for row in images.flatten(1).numpy()]
    source = {r: i for i, r in enumerate(rows(raw["train"].images))}
    picked = [source[r] for r in rows(data.train.images) + rows(data.validation.images)]
    assert len(set(picked)) == 100
    assert torch.equal(torch.cat([data.train.labels, data.validation.labels]), raw["train"].labels[picked])
    assert torch.equal(torch.cat([data.train.masks, data.validation.masks]), raw["train"].masks[picked])
    test_source = {r: i for i, r in enumerate(rows(raw["test"].images))}
    test_picked = [test_source[r] for r in rows(data.test.images)]
    assert len(set(test_picked)) == 40 and torch.equal(data.test.labels, raw["test"].labels[test_picked])
    # Training and validation keep the data set's order.
    train_picked = picked[: len(data.train)]
    assert train_picked == sorted(train_picked) and picked[len(data.train):] == sorted(picked[len(data.train):])
    # The normalisation statistics are numpy's over the training images only.
    x = data.train.images.numpy().astype(np.float64) / 255
    assert np.allclose(data.mean.numpy(), x.mean(axis=(0, 2, 3)), rtol=1e-6)
    assert np.allclose(data.std.numpy(), x.std(axis=(0, 2, 3)), rtol=1e-6)
    assert data.classes == raw["train"].classes and data.num_classes == 4 and data.in_channels == 1

    # The split seed moves images between training and validation only; the subset seed picks other images.
    other_split = prepare_data(DataSpec("synthetic", train_subset=100, test_subset=40, subset_seed=3,
                                        validation_fraction=0.2, split_seed=6))
    assert sorted(rows(other_split.train.images) + rows(other_split.validation.images)) == sorted(
        rows(data.train.images) + rows(data.validation.images))
    assert rows(other_split.validation.images) != rows(data.validation.images)
    assert rows(other_split.test.images) == rows(data.test.images)
    other_subset = prepare_data(DataSpec("synthetic", train_subset=100, test_subset=40, subset_seed=4,
                                         validation_fraction=0.2, split_seed=5))
    assert sorted(rows(other_subset.train.images)) != sorted(rows(data.train.images))
    assert rows(other_subset.test.images) != rows(data.test.images)


def test_prepare_data_passes_the_spec_to_the_loader(monkeypatch):
    calls = []
    images = torch.zeros(10, 3, 4, 4, dtype=torch.uint8)
    images[:, 1] = 255

    def loader(name, root, download, image_size):
        calls.append((name, root, download, image_size))
        split = ImageSet(images, torch.arange(10) % 2, ["a", "b"])
        return {"train": split, "test": split}

    monkeypatch.setattr(prepared_module, "load_dataset", loader)
    data = prepare_data(DataSpec("mine", root="/data", download=False, image_size=4, validation_fraction=0.2))
    assert calls == [("mine", "/data", False, 4)]
    assert len(data.train) == 8 and len(data.validation) == 2 and len(data.test) == 10
    assert data.mean.tolist() == [0.0, 1.0, 0.0] and data.in_channels == 3 and data.num_classes == 2


def test_a_derived_data_set_prepares_itself():
    class Derived:
        def prepare(self):
            return "prepared by itself"

    assert prepare_data(Derived()) == "prepared by itself"
