"""Weights files for the comparison tests: tiny CNNs of different initial weights, saved as safetensors."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from auglens.models import build_model


def save_tiny_weights(folder: Path, count: int, stem: str = "model") -> list[Path]:
    """``count`` tiny_cnn state dicts (4 classes, grey) drawn from seeds 0, 1, ..., as ``<stem><seed>.safetensors``."""
    paths = []
    for seed in range(count):
        torch.manual_seed(seed)
        paths.append(Path(folder) / f"{stem}{seed}.safetensors")
        save_file(build_model("tiny_cnn", 4, 1).state_dict(), paths[-1])
    return paths
