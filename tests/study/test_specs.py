"""One spec builder for every pipeline: each training setting reaches the spec by name, in every pipeline."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from auglens import config as cfg
from auglens.distortion.config import DistortionConfig
from auglens.distortion.runner import Runner
from auglens.study.architectures import architecture_jobs
from auglens.study.plan import plan_study
from auglens.study.runtime import ComputeSpec
from auglens.study.specs import TRAINING_FIELDS_NOT_IN_SPEC, data_spec, train_spec
from auglens.train.loop import TrainSpec

CPU = ComputeSpec("cpu", 1, True)
SPEC_FIELDS = {f.name for f in dataclasses.fields(TrainSpec)}


def _study(**training) -> cfg.Config:
    return cfg.from_dict({"data": {"name": "synthetic"}, "model": {"architecture": "tiny_cnn", "input_size": 16},
                          "training": {"epochs": 1, **training}, "study": {"seeds": [1, 2]},
                          "augmentations": [{"name": "affine"}, {"name": "cutmix"}], "runtime": {"device": "cpu"}})


def _distortion(**training) -> DistortionConfig:
    # A validation set, so that either checkpoint rule is valid.
    return DistortionConfig.from_dict({"data": {"name": "synthetic", "train_subset": 64, "test_subset": 16},
                                       "split": {"validation_fraction": 0.25},
                                       "model": {"architecture": "tiny_cnn", "input_size": 16},
                                       "training": {"epochs": 1, "optimizer": "adam", "lr": 3e-3, **training},
                                       "runs": {"seeds": [1]}, "analyses": ["affinity"],
                                       "runtime": {"device": "cpu", "num_threads": 1, "progress": False}})


@pytest.mark.parametrize("section", [cfg.TrainingConfig, type(DistortionConfig().training)])
def test_every_training_field_reaches_the_spec_or_is_listed_as_not_changing_weights(section):
    fields = {f.name for f in dataclasses.fields(section)}
    missing = fields - SPEC_FIELDS - set(TRAINING_FIELDS_NOT_IN_SPEC)
    assert not missing, f"training fields that reach no TrainSpec field and are not listed: {sorted(missing)}"
    assert set(TRAINING_FIELDS_NOT_IN_SPEC) <= fields  # the list names only real fields


def _other_value(section, name: str):
    """A valid value of the training field ``name`` that differs from its default."""
    default = getattr(section, name)
    hint = typing.get_type_hints(type(section))[name]
    if typing.get_origin(hint) is typing.Literal:
        return next(choice for choice in typing.get_args(hint) if choice != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default / 2
    if isinstance(default, list):
        return [*default, 7]
    raise AssertionError(f"no other value for training.{name} = {default!r}")


@pytest.mark.parametrize("kind", ["study", "distortion"])
@pytest.mark.parametrize("name", sorted(f.name for f in dataclasses.fields(cfg.TrainingConfig)
                                        if f.name not in TRAINING_FIELDS_NOT_IN_SPEC))
def test_changing_a_training_field_changes_that_spec_field_alone(kind, name):
    config = _study() if kind == "study" else _distortion()
    value = _other_value(config.training, name)
    changed = _study(**{name: value}) if kind == "study" else _distortion(**{name: value})
    before = train_spec(config.model, config.training, config.split, "affine", {}, 1)
    after = train_spec(changed.model, changed.training, changed.split, "affine", {}, 1)
    differing = [f for f in SPEC_FIELDS if getattr(before, f) != getattr(after, f)]
    assert differing == [name]
    assert getattr(after, name) == (tuple(value) if isinstance(value, list) else value)


def test_model_and_split_settings_reach_the_spec_and_the_run_offset_moves_both_seeds():
    config = cfg.from_dict({"data": {"name": "synthetic"},
                            "model": {"architecture": "small_cnn", "params": {"width": 8, "convs_per_block": [1, 1, 2]},
                                      "input_size": 20, "init_seed": 5},
                            "split": {"sampling_seed": 99, "reshuffle_each_epoch": True}})
    spec = train_spec(config.model, config.training, config.split, "cutmix", {"alpha": 0.5}, 3)
    assert (spec.architecture, spec.input_size, spec.init_seed, spec.sampling_seed) == ("small_cnn", 20, 5, 99)
    assert spec.architecture_params == (("convs_per_block", (1, 1, 2)), ("width", 8))
    assert spec.reshuffle_each_epoch and spec.seed == 3 and spec.augmentation == "cutmix"
    assert dict(spec.augmentation_params)["alpha"] == 0.5 and "label" in dict(spec.augmentation_params)  # resolved
    moved = train_spec(config.model, config.training, config.split, "cutmix", {"alpha": 0.5}, 3, run_offset=3)
    assert (moved.init_seed, moved.sampling_seed) == (8, 102)
    assert dataclasses.replace(moved, init_seed=5, sampling_seed=99) == spec


def test_the_data_spec_takes_every_field_from_the_data_and_split_sections():
    config = cfg.from_dict({"data": {"name": "synthetic", "image_size": 12, "train_subset": 50, "test_subset": 20,
                                     "subset_seed": 4, "download": False},
                            "split": {"validation_fraction": 0.2, "seed": 6}})
    spec = data_spec(config.data, config.split)
    assert (spec.name, spec.image_size, spec.train_subset, spec.test_subset, spec.subset_seed, spec.download) == (
        "synthetic", 12, 50, 20, 4, False)
    assert (spec.validation_fraction, spec.split_seed) == (0.2, 6)


def test_every_pipeline_trains_with_the_builders_spec(tmp_path):
    study = _study(lr_schedule="one_cycle", optimizer="sgd", checkpoint="last")
    plan = plan_study(study, CPU)
    for job in plan.train_jobs:
        spec = job.spec
        assert spec == train_spec(study.model, study.training, study.split, spec.augmentation,
                                  dict(spec.augmentation_params), spec.seed)
        assert job.data == data_spec(study.data, study.split)
    (candidate,) = architecture_jobs(study, ["small_cnn"], CPU)
    built = train_spec(dataclasses.replace(study.model, architecture="small_cnn", params={}), study.training,
                       study.split, "none", {}, 1)
    assert candidate.spec == built

    distortion = _distortion(lr_schedule="one_cycle")
    runner = Runner(distortion, tmp_path)
    spec = runner.train_spec("fmix", {}, 1)
    assert spec == train_spec(distortion.model, distortion.training, distortion.split, "fmix", {}, 1, run_offset=1)
    assert spec.lr_schedule == "one_cycle" and spec.checkpoint == "last"
    assert runner.data_spec == data_spec(distortion.data, distortion.split)


def test_the_learning_rate_schedule_of_a_distortion_config_changes_the_weights_and_the_key(tmp_path):
    import torch

    trained = {}
    for schedule in ("step", "one_cycle"):
        runner = Runner(_distortion(lr_schedule=schedule), tmp_path / schedule)
        data, key = runner.data()
        model = runner.model(runner.train_spec("none", {}, 1), data, key)
        trained[schedule] = (model.key, model.network.state_dict())
    (step_key, step), (cycle_key, cycle) = trained["step"], trained["one_cycle"]
    assert step_key != cycle_key
    assert any(not torch.equal(step[name], cycle[name]) for name in step)
