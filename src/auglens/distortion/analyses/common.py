"""Helpers shared by the distortion analyses: summaries over runs, occluder fills, chunked mixing, subsets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from auglens.augment import random as rnd
from auglens.augment.base import AugmentedBatch
from auglens.augment.mixed import conform_images, foreign_images
from auglens.data.prepared import PreparedData

if TYPE_CHECKING:
    from auglens.distortion.runner import Runner

__all__ = ["RESULT_VERSION", "TRAIN_OFFSET", "accuracy", "augment_in_chunks", "check_occluder", "occluder_fill",
           "floats", "index_subsets", "summarise"]

#: Bump to invalidate cached per-run results when their computation changes.
RESULT_VERSION = 2
TRAIN_OFFSET = 1 << 40  # training images get distortion keys apart from the test images'
_OCCLUDER_STREAM = 410


def summarise(frame: pd.DataFrame, by: list[str], values: list[str]) -> pd.DataFrame:
    """Mean and sample std (ddof = 1; NaN for one run) of ``values`` per group, NaNs skipped.

    ``runs`` counts the runs with a value of the first (headline) measure, e.g. iOcclusion is undefined for
    a run without generalisation gap.
    """
    grouped = frame.groupby(by, sort=False)
    out = grouped[values].agg(["mean", "std"])
    out.columns = [f"{value}_{stat}" for value, stat in out.columns]
    out["runs"] = grouped[values[0]].count()
    return out.reset_index()


def floats(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images -> float [0, 1] on ``device``."""
    return images.to(device).float().div_(255.0)


def accuracy(preds: torch.Tensor, labels: torch.Tensor) -> float:
    return float((preds == labels.cpu()).double().mean())


def occluder_fill(runner: Runner, occluder: str, dataset: str | None, images: torch.Tensor, keys: torch.Tensor,
         data: PreparedData):
    """What occluded pixels become: 0 (black), the training mean colour, or another data set's images."""
    if occluder == "black":
        return 0.0
    if occluder == "mean":
        return data.mean.to(images.device)
    pool = foreign_images(dataset, runner.config.data.root)
    index = rnd.randint(keys, _OCCLUDER_STREAM, len(pool)).cpu()
    _, c, h, w = images.shape
    return conform_images(pool[index], c, h, w).to(images.device).float().div_(255.0)


def augment_in_chunks(augmentation, images: torch.Tensor, labels: torch.Tensor, keys: torch.Tensor,
                      chunk: int) -> AugmentedBatch:
    """Apply a (mixing) augmentation chunk by chunk: partners are drawn within each chunk."""
    parts = [augmentation(images[s : s + chunk], labels[s : s + chunk], keys[s : s + chunk])
             for s in range(0, len(images), chunk)]
    return AugmentedBatch(*(torch.cat([getattr(p, f.name) for p in parts])
                            for f in dataclasses.fields(AugmentedBatch)))


def index_subsets(files: dict[str, str], data: PreparedData) -> dict[str, dict[str, torch.Tensor]]:
    """Named subsets from JSON files ``{"train": [indices], "test": [indices]}`` (either may be absent).

    Indices point into the prepared training and test sets — the data set's own order when
    ``data.train_subset``/``test_subset`` are unset and ``split.validation_fraction = 0`` (the defaults).
    """
    out = {}
    for name, path in files.items():
        raw = json.loads(Path(path).read_text())
        out[name] = {}
        for part, images in (("train", data.train), ("test", data.test)):
            if part not in raw:
                continue
            index = torch.as_tensor(raw[part], dtype=torch.int64)
            if len(index) == 0 or int(index.min()) < 0 or int(index.max()) >= len(images):
                raise ValueError(f"subset {name!r} ({path}): {part} indices must lie in 0..{len(images) - 1} "
                                 f"(the prepared {part} set), got {len(index)} indices")
            out[name][part] = index
    return out


def check_occluder(section: str, occluders: list[str], dataset: str | None, errors: list[str]) -> None:
    from auglens.data import DATASETS

    if "images" in occluders and not dataset:
        errors.append(f"{section}.occluder_dataset: occluding with 'images' needs a data set to cut patches from")
    if dataset is not None and dataset not in DATASETS:
        errors.append(f"{section}.occluder_dataset: {DATASETS.unknown_message(dataset)}")


def check_subsets(section: str, files: dict[str, str], errors: list[str]) -> None:
    for name, path in files.items():
        if not Path(path).is_file():
            errors.append(f"{section}.subsets.{name}: {path} is not a file; give a JSON file "
                          f"{{\"train\": [indices], \"test\": [indices]}}")
