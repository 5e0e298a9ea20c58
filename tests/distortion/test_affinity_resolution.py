"""The affinity analysis augments test images where the augmented model's training augmented them."""

from __future__ import annotations

import pytest

from auglens.distortion import run_analysis
from auglens.distortion.analyses import affinity


@pytest.mark.parametrize(("resolution", "side"), [("native", 16), ("model_input", 24)])
def test_affinity_augments_test_images_at_the_training_resolution(tmp_path, monkeypatch, resolution, side):
    sides = []
    original = affinity.augment_in_chunks

    def augment_in_chunks(augmentation, images, *args):
        sides.append(tuple(images.shape[-2:]))
        return original(augmentation, images, *args)

    monkeypatch.setattr(affinity, "augment_in_chunks", augment_in_chunks)
    config = {"data": {"name": "synthetic", "train_subset": 40, "test_subset": 12},  # 16 x 16 images
              "model": {"architecture": "tiny_cnn", "input_size": 24},
              "training": {"epochs": 1, "optimizer": "adam", "lr": 3e-3, "augmentation_resolution": resolution},
              "runs": {"seeds": [1]}, "analyses": ["affinity"], "augmentations": [{"name": "gaussian_blur"}],
              "runtime": {"device": "cpu", "num_threads": 1, "progress": False}}
    tables = run_analysis("affinity", config, tmp_path)
    assert sides == [(side, side)]
    assert len(tables["affinity_runs"]) == 1
