"""Shared fixtures: tiny studies that run in seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_STUDY = """
name = "tiny"
[data]
name = "synthetic"
[split]
validation_fraction = 0.1
[model]
architecture = "tiny_cnn"
input_size = 16
[training]
batch_size = 32
epochs = 2
[study]
seeds = [1, 2]
[[augmentations]]
name = "affine"
[[augmentations]]
name = "cutmix"
[cam]
method = "gradcam"
[metrics]
batch_size = 40
[runtime]
device = "cpu"
progress = false
report = false
"""


@pytest.fixture
def tiny_config_path(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_STUDY)
    return path
