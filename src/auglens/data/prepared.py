"""A study's data, prepared once: subsets, the fixed stratified split and the normalisation statistics.

Everything here is a pure function of :class:`DataSpec`, so every model of a study — and every worker
of a distributed run — sees the same training, validation and test images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import torch

from auglens.data.datasets import ImageSet, load_dataset
from auglens.data.split import stratified_split, stratified_subset
from auglens.data.transforms import IMAGENET_MEAN, IMAGENET_STD, channel_stats, normalize, resize_keep_aspect


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


def normalised_with(data: PreparedData, normalisation: str) -> PreparedData:
    """``data`` with the normalisation statistics a model is fed with (``TrainSpec.normalisation``).

    "data": the training images' own (``data`` unchanged); "imagenet": :data:`IMAGENET_MEAN` and
    :data:`IMAGENET_STD`, as pretrained ImageNet weights expect; 1-channel data gets the average of the three
    channels' values (auglens's choice: the first convolution of pretrained weights is summed over its input
    channels on such data, which is feeding the grey image on every channel).
    """
    if normalisation == "data":
        return data
    if normalisation != "imagenet":
        raise ValueError(f"normalisation: 'data' or 'imagenet', got {normalisation!r}")
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    if data.in_channels == 1:
        mean, std = mean.mean().reshape(1), std.mean().reshape(1)
    elif data.in_channels != 3:
        raise ValueError(f"normalisation 'imagenet' needs 1- or 3-channel images, the data has {data.in_channels}")
    return replace(data, mean=mean, std=std)


def model_input(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, input_size: int | None) -> torch.Tensor:
    """uint8 or [0, 1] float images -> resized, normalised float32 model input; (N, C, H, W) -> (N, C, S, S)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if input_size is not None:
        x = resize_keep_aspect(x, input_size)
    return normalize(x, mean, std)
