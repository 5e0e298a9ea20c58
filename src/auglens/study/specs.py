"""The one builder of the specs every pipeline trains with: config sections -> :class:`DataSpec`, :class:`TrainSpec`.

Studies, architecture selection and the distortion analyses all build their data and training specs here,
field by field by name, so a setting added to a config section reaches the spec (and so the training and
the artifact key) in every pipeline at once, or fails ``tests/study/test_specs.py``: every field of a
training section is either a :class:`TrainSpec` field of the same name or listed in
:data:`TRAINING_FIELDS_NOT_IN_SPEC` with the reason it changes no trained weight.

Where a spec field takes its value from:

- ``architecture``, ``architecture_params``, ``input_size``, ``init_seed``: the model section
  (``architecture``, ``params`` frozen into sorted pairs, ``input_size``, ``init_seed``);
- ``pretrained_path``, ``pretrained_sha256``, ``normalisation``: the model section's ``pretrained`` and
  ``normalisation``, resolved (:func:`pretrained_start`); a section whose ``pretrained`` is not a string (the
  distortion analyses', where it means evaluating an ImageNet model, not starting from one) trains from scratch;
- ``sampling_seed``, ``reshuffle_each_epoch``: the split section;
- ``augmentation``, ``augmentation_params``, ``seed``: the model being planned;
- every other field: the training section's field of the same name (a spec field that no section has is
  an error, not a silent default);
- but a baseline's :data:`AUGMENTATION_ONLY_FIELDS` are their defaults: they say how augmented copies are made,
  a baseline has none, so its weights do not depend on them, and neither does its key (one baseline serves
  studies that differ only there).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from auglens.augment import BASELINE, frozen_params
from auglens.data.prepared import DataSpec
from auglens.train.loop import TrainSpec

__all__ = ["AUGMENTATION_ONLY_FIELDS", "TRAINING_FIELDS_NOT_IN_SPEC", "data_spec", "frozen", "pretrained_start",
           "train_spec"]

#: Training-section fields that are not :class:`TrainSpec` fields, and why no trained weight depends on them.
TRAINING_FIELDS_NOT_IN_SPEC: dict[str, str] = {
    "models_at_once": "how many trainings run together; the plan records it as the lockstep size, which is "
                      "part of the training key when above 1",
}

#: Spec fields that change only how the augmented copies are made: a baseline's are left at their defaults.
AUGMENTATION_ONLY_FIELDS = ("augmentation_copies", "augmentation_resolution")
#: Spec fields read from the model section, by spec field: the model section's field name.
_FROM_MODEL = {"architecture": "architecture", "input_size": "input_size", "init_seed": "init_seed"}
#: Spec fields read from the split section (the same name there).
_FROM_SPLIT = ("sampling_seed", "reshuffle_each_epoch")
#: Split-section fields that are :class:`DataSpec` fields, by data spec field.
_DATA_FROM_SPLIT = {"validation_fraction": "validation_fraction", "split_seed": "seed"}


def frozen(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Parameters as sorted (name, value) pairs, lists as tuples: hashable, as TrainSpec must be."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def pretrained_start(model: Any) -> dict[str, Any]:
    """The spec fields of a model section's starting weights and normalisation: ``pretrained_path`` and
    ``pretrained_sha256`` (None: from scratch), ``normalisation`` ("data" or "imagenet"; "auto" is "imagenet"
    with ``pretrained = "imagenet"``). Raises :class:`~auglens.errors.UserError` naming the file when it is
    missing."""
    from auglens.errors import UserError
    from auglens.models.pretrained import missing_file_message, pretrained_file, pretrained_sha256

    setting = getattr(model, "pretrained", None)
    setting = setting if isinstance(setting, str) else None
    normalisation = getattr(model, "normalisation", "auto")
    if normalisation == "auto":
        normalisation = "imagenet" if setting is not None and setting.lower() == "imagenet" else "data"
    path = pretrained_file(setting, model.architecture)
    if path is None:
        return {"pretrained_path": None, "pretrained_sha256": None, "normalisation": normalisation}
    if not path.is_file():
        raise UserError(missing_file_message(setting, model.architecture, path))
    return {"pretrained_path": str(path), "pretrained_sha256": pretrained_sha256(path),
            "normalisation": normalisation}


def data_spec(data: Any, split: Any) -> DataSpec:
    """The :class:`DataSpec` of a data section and a split section: every data spec field by name."""
    values = {}
    for f in dataclasses.fields(DataSpec):
        if f.name in _DATA_FROM_SPLIT:
            values[f.name] = getattr(split, _DATA_FROM_SPLIT[f.name])
        else:
            values[f.name] = getattr(data, f.name)
    return DataSpec(**values)


def train_spec(model: Any, training: Any, split: Any, augmentation: str, params: dict[str, Any], seed: int,
               run_offset: int = 0) -> TrainSpec:
    """The :class:`TrainSpec` of one model: the sections' settings, the augmentation and its starting state.

    ``model``, ``training``, ``split``: config sections (a study's or the distortion analyses'). ``params``: the
    augmentation's parameters (resolved with their defaults, so a default written out or left out is one
    training). ``run_offset`` is added to the initial-weight seed and the data-order seed: the distortion
    paper's runs are independent trainings, run ``s`` with offset ``s`` (every model type of a run shares
    them, so types are compared on paired runs); a study's models all share both (offset 0, Appendix B).
    """
    values: dict[str, Any] = {"augmentation": augmentation, "augmentation_params": frozen_params(augmentation, params),
                              "seed": seed, "architecture_params": frozen(model.params), **pretrained_start(model)}
    for f in dataclasses.fields(TrainSpec):
        if f.name in values:
            continue
        if f.name in _FROM_MODEL:
            value = getattr(model, _FROM_MODEL[f.name])
        elif f.name in _FROM_SPLIT:
            value = getattr(split, f.name)
        elif hasattr(training, f.name):
            value = getattr(training, f.name)
        else:
            raise TypeError(f"TrainSpec.{f.name} has no config field: add training.{f.name} to the training section")
        if isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    if augmentation == BASELINE:
        defaults = {f.name: f.default for f in dataclasses.fields(TrainSpec)}
        values.update({name: defaults[name] for name in AUGMENTATION_ONLY_FIELDS})
    values["init_seed"] += run_offset
    values["sampling_seed"] += run_offset
    return TrainSpec(**values)
