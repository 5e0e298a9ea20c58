"""Object masks: an ImageFolder's parallel masks/ tree, Oxford-IIIT Pet's trimaps, the synthetic squares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from auglens.data import load_dataset
from auglens.data.prepared import DataSpec, prepare_data


def _write_folder(root, size=(24, 18), masks=True, skip_mask=None):
    """Two classes, 3 images per split; each image a bright rectangle (its object) on a dark ground."""
    rng = np.random.default_rng(0)
    expected = {}
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            for i in range(3):
                w, h = size
                array = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
                mask = np.zeros((h, w), dtype=bool)
                top, left = rng.integers(0, h - 8), rng.integers(0, w - 8)
                mask[top:top + 8, left:left + 6] = True
                array[mask] = 220
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / split / cls / f"img{i}.png")
                if masks and (split, cls, i) != skip_mask:
                    (root / "masks" / split / cls).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / split / cls / f"img{i}.png")
                expected[(split, cls, i)] = mask
    return expected


def test_image_folder_reads_the_parallel_masks_tree(tmp_path):
    expected = _write_folder(tmp_path)
    data = load_dataset("image_folder", tmp_path)
    for split in ("train", "test"):
        ds = data[split]
        assert ds.masks is not None and ds.masks.shape == (6, 18, 24) and ds.masks.dtype == torch.bool
        for row, (cls, i) in enumerate([(c, i) for c in ("cat", "dog") for i in range(3)]):
            assert np.array_equal(ds.masks[row].numpy(), expected[(split, cls, i)])
            # The mask is the bright object in the image.
            assert bool((ds.images[row, 0][ds.masks[row]] == 220).all())


def test_masks_follow_the_images_resize_and_crop(tmp_path):
    _write_folder(tmp_path)
    ds = load_dataset("image_folder", tmp_path, image_size=12)["test"]
    assert ds.masks.shape == (6, 12, 12)
    bright = ds.images[:, 0] > 130  # the resized object
    agree = (bright == ds.masks).float().mean()
    assert float(agree) > 0.95


def test_image_folder_without_masks_has_none_and_incomplete_trees_are_errors(tmp_path):
    _write_folder(tmp_path / "plain", masks=False)
    assert load_dataset("image_folder", tmp_path / "plain")["test"].masks is None
    _write_folder(tmp_path / "holes", skip_mask=("test", "dog", 1))
    with pytest.raises(FileNotFoundError, match=r"dog/img1\.png"):
        load_dataset("image_folder", tmp_path / "holes")


def test_a_mask_of_the_wrong_size_is_an_error(tmp_path):
    _write_folder(tmp_path)
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(tmp_path / "masks" / "train" / "cat" / "img0.png")
    with pytest.raises(ValueError, match="masks must have their image's size"):
        load_dataset("image_folder", tmp_path)


def _write_pets(root):
    """torchvision's on-disk layout of Oxford-IIIT Pet, with 3 tiny images per split."""
    base = root / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(1)
    # image id, class id (1-based), species (1 cat, 2 dog), breed id
    rows = {"trainval": [("Abyssinian_1", 1, 1, 1), ("american_bulldog_3", 2, 2, 1), ("Abyssinian_7", 1, 1, 1)],
            "test": [("Abyssinian_2", 1, 1, 1), ("american_bulldog_9", 2, 2, 1), ("american_bulldog_4", 2, 2, 1)]}
    trimaps = {}
    for split, entries in rows.items():
        with open(base / "annotations" / f"{split}.txt", "w") as handle:
            for image_id, label, species, breed in entries:
                handle.write(f"{image_id} {label} {species} {breed}\n")
                h, w = rng.integers(20, 30, 2)
                trimap = np.full((h, w), 2, dtype=np.uint8)  # background
                trimap[4:h - 4, 5:w - 5] = 3  # boundary band
                trimap[6:h - 6, 7:w - 7] = 1  # pet
                Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(base / "images" / f"{image_id}.jpg")
                Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{image_id}.png")
                trimaps[image_id] = trimap
    return rows, trimaps


def test_oxford_pet_loader_reads_torchvisions_layout_with_trimaps_as_masks(tmp_path):
    rows, trimaps = _write_pets(tmp_path)
    data = load_dataset("oxford_iiit_pet", tmp_path, download=True, image_size=16)  # present: no download
    assert data["train"].classes == ["Abyssinian", "American Bulldog"]
    for split, theirs in (("train", "trainval"), ("test", "test")):
        ds = data[split]
        assert ds.images.shape == (3, 3, 16, 16) and ds.masks.shape == (3, 16, 16)
        assert ds.labels.tolist() == [0 if label == 1 else 1 for _, label, _, _ in rows[theirs]]
        for row, (image_id, *_rest) in enumerate(rows[theirs]):
            # Pet and boundary (1, 3) are object; the mask went through the images' resize-and-crop.
            trimap = torch.from_numpy((trimaps[image_id] != 2).astype(np.float32))[None, None]
            from auglens.data.transforms import resize_keep_aspect

            assert torch.equal(ds.masks[row], resize_keep_aspect(trimap, 16)[0, 0] >= 0.5)


def test_oxford_pet_without_files_or_network_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="oxford-iiit-pet"):
        load_dataset("oxford_iiit_pet", tmp_path, download=False, image_size=16)


def test_synthetic_masks_are_the_bright_squares_and_survive_subsets_and_splits():
    spec = DataSpec("synthetic", train_subset=40, test_subset=12)
    data = prepare_data(spec)
    for ds in (data.train, data.validation, data.test):
        assert ds.masks is not None and ds.masks.shape == (len(ds), 16, 16)
        assert bool((ds.masks.flatten(1).sum(1) == 25).all())
        assert bool((ds.images[:, 0][ds.masks] >= 200).all()) and bool((ds.images[:, 0][~ds.masks] < 61).all())
