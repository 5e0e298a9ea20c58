"""Data sets the distortion analyses derive from a data set, as hashable specs that training jobs carry.

A :class:`DerivedData` names a recipe and its parameters (and the :class:`~auglens.data.prepared.DataSpec`
it starts from); :func:`auglens.data.prepared.prepare_data` builds it through :meth:`DerivedData.prepare`,
so a :class:`~auglens.study.jobs.TrainJob` on derived data is keyed, resumed and run on any backend (a Ray
worker rebuilds the data from the spec) exactly like one on a plain data set.

- ``without_class``: the data without one class, the classes above it moving down one index, normalisation
  statistics recomputed (Table 6's retraining);
- ``stacked``: images of a simple data set stacked above class-matched images of a complex one (Section 4.1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from auglens.data.datasets import ImageSet, load_dataset
from auglens.data.prepared import DataSpec, PreparedData, prepare_data
from auglens.data.split import stratified_split, stratified_subset
from auglens.data.transforms import channel_stats
from auglens.distortion.simplicity import matched_pairs, pick_classes, random_pairs, stacked_set

__all__ = ["DerivedData", "stacked_data", "without_class"]


@dataclass(frozen=True)
class DerivedData:
    recipe: str  # "without_class" or "stacked"
    params: tuple[tuple[str, Any], ...]  # sorted (name, value) pairs; lists as tuples
    base: DataSpec | None = None

    def prepare(self) -> PreparedData:
        return _prepare(self)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.params)


def derived(recipe: str, base: DataSpec | None = None, **params: Any) -> DerivedData:
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))
    return DerivedData(recipe, frozen, base)


@functools.lru_cache(maxsize=8)
def _prepare(spec: DerivedData) -> PreparedData:
    if spec.recipe == "without_class":
        return without_class(prepare_data(spec.base), spec.options["removed"])
    if spec.recipe == "stacked":
        return stacked_data(spec)[0]
    raise ValueError(f"unknown derived data recipe {spec.recipe!r}; valid: without_class, stacked")


def without_class(data: PreparedData, removed: int) -> PreparedData:
    """The same data without one class; the classes above it move down by one (Table 6's retraining)."""
    def drop(images: ImageSet) -> ImageSet:
        keep = images.labels != removed
        labels = images.labels[keep]
        return ImageSet(images.images[keep], labels - (labels > removed).long(),
                        [name for i, name in enumerate(images.classes) if i != removed])

    train = drop(data.train)
    mean, std = channel_stats(train.images)
    return PreparedData(train, drop(data.validation), drop(data.test), mean, std)


@functools.lru_cache(maxsize=2)
def stacked_data(spec: DerivedData) -> tuple[PreparedData, ImageSet, torch.Tensor]:
    """(class-matched stacked data for training/validation/test, randomly recombined test set, its simple labels)."""
    o = spec.options
    simple = load_dataset(o["simple"], o["simple_root"], o["download"])
    complex_ = load_dataset(o["complex"], o["complex_root"], o["download"])
    simple = {k: pick_classes(v, _list(o["simple_classes"])) for k, v in simple.items()}
    complex_ = {k: pick_classes(v, _list(o["complex_classes"])) for k, v in complex_.items()}
    if simple["train"].num_classes != complex_["train"].num_classes:
        raise ValueError(f"simplicity: {o['simple']} has {simple['train'].num_classes} classes and {o['complex']} "
                         f"{complex_['train'].num_classes}; pick the same number with simple_classes/complex_classes")
    full = complex_["train"].subset(stratified_subset(complex_["train"].labels, o["train_subset"], 0))
    test = complex_["test"].subset(stratified_subset(complex_["test"].labels, o["test_subset"], 0))
    train_idx, val_idx = stratified_split(full.labels, o["validation_fraction"], o["split_seed"])
    sets = []
    for i, part in enumerate((full.subset(train_idx), full.subset(val_idx), test)):
        pairs = matched_pairs(simple["train" if i < 2 else "test"].labels, part.labels, o["pairing_seed"] + i)
        sets.append(stacked_set(simple["train" if i < 2 else "test"], part, pairs)[0])
    mean, std = channel_stats(sets[0].images)
    recombined, simple_labels = stacked_set(simple["test"], test,
                                            random_pairs(len(test), len(simple["test"]), o["pairing_seed"] + 3))
    return PreparedData(sets[0], sets[1], sets[2], mean, std), recombined, simple_labels


def _list(value):
    return None if value is None else list(value)
