"""A study's data, prepared once: subsets, the fixed stratified split and the normalisation statistics.

Everything here is a pure function of :class:`DataSpec`, so every model of a study — and every worker
of a distributed run — sees the same training, validation and test images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from auglens.data.datasets import ImageSet, load_dataset
from auglens.data.split import stratified_split, stratified_subset
from auglens.data.transforms import channel_stats, normalize, resize_keep_aspect


@dataclass(frozen=True)
class DataSpec:
    name: str
    root: str | None = None
    download: bool = True
    image_size: int | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    subset_seed: int = 0
    validation_fraction: float = 0.1
    split_seed: int = 0


@dataclass
class PreparedData:
    train: ImageSet
    validation: ImageSet
    test: ImageSet
    mean: torch.Tensor  # (C,) of the training images in [0, 1]
    std: torch.Tensor  # (C,)

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]


def prepare_data(spec: DataSpec) -> PreparedData:
    """Load, subset, split and compute the normalisation statistics (cached per process).

    A spec that is not a :class:`DataSpec` is a derived data set bringing its own ``prepare()`` (e.g. the
    distortion analyses' class-removed or stacked data), so jobs and workers handle both alike.
    """
    if not isinstance(spec, DataSpec):
        return spec.prepare()
    return _prepare(spec)


@functools.lru_cache(maxsize=4)
def _prepare(spec: DataSpec) -> PreparedData:
    splits = load_dataset(spec.name, spec.root, spec.download, spec.image_size)
    full_train, test = splits["train"], splits["test"]
    full_train = full_train.subset(stratified_subset(full_train.labels, spec.train_subset, spec.subset_seed))
    test = test.subset(stratified_subset(test.labels, spec.test_subset, spec.subset_seed))
    train_idx, val_idx = stratified_split(full_train.labels, spec.validation_fraction, spec.split_seed)
    train, validation = full_train.subset(train_idx), full_train.subset(val_idx)
    # Normalisation statistics from the training images only, so nothing of validation/test leaks in.
    mean, std = channel_stats(train.images)
    return PreparedData(train, validation, test, mean, std)


def model_input(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, input_size: int | None) -> torch.Tensor:
    """uint8 or [0, 1] float images -> resized, normalised float32 model input; (N, C, H, W) -> (N, C, S, S)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if input_size is not None:
        x = resize_keep_aspect(x, input_size)
    return normalize(x, mean, std)
