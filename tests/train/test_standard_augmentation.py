"""training.standard_augmentation: every training image cropped and flipped before the augmentation mixes
it, validation images untouched, and the artifact keys of trainings without it unchanged."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from auglens.augment import build_augmentation, sample_keys
from auglens.augment.standard import standard_augmentation
from auglens.data.prepared import DataSpec, model_input, prepare_data
from auglens.models import build_model
from auglens.study.jobs import TrainJob
from auglens.study.runtime import ComputeSpec
from auglens.train import TrainSpec, train_model, training_order


@pytest.fixture(scope="module")
def data():
    return prepare_data(DataSpec("synthetic", train_subset=64, validation_fraction=0.25))


def _inputs(spec, data):
    """Every input of the model, (training mode, eval mode)."""
    model_type = type(build_model(spec.architecture, num_classes=data.num_classes, in_channels=data.in_channels))
    seen: dict[bool, list[torch.Tensor]] = {True: [], False: []}

    def hook(module, args):
        if type(module) is model_type:
            seen[module.training].append(args[0].detach().clone())

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        train_model(spec, data)
    finally:
        handle.remove()
    return seen[True], seen[False]


@pytest.mark.parametrize(("augmentation", "every"), [("none", False), ("affine", False), ("mixup", True)])
def test_every_training_image_is_cropped_and_flipped_before_the_augmentation(data, augmentation, every):
    """Baseline, originals with copies, every sample mixed: the model sees augmentation(crop_flip(image))."""
    spec = TrainSpec("tiny_cnn", augmentation, epochs=2, batch_size=16, seed=3, input_size=None,
                     augment_every_sample=every, standard_augmentation="crop_flip")
    training, evaluation = _inputs(spec, data)
    n = len(data.train)
    images = data.train.images.float() / 255.0
    mixing = build_augmentation(augmentation, run_seed=spec.seed)
    got = iter(training)
    for epoch in range(spec.epochs):
        order = training_order(n, augmentation != "none" and not every, spec.sampling_seed, epoch, False)
        order = order + n if every else order
        for start in range(0, len(order), spec.batch_size):
            positions = order[start : start + spec.batch_size]
            source, is_copy = positions % n, positions >= n
            expected = standard_augmentation("crop_flip", images[source], sample_keys(spec.seed, epoch, positions))
            if mixing is not None and bool(is_copy.any()):
                # The mixing receives the cropped images: its partners are cropped too.
                expected[is_copy] = mixing(expected[is_copy], data.train.labels[source[is_copy]],
                                           sample_keys(spec.seed, epoch, source[is_copy])).images
            torch.testing.assert_close(next(got), model_input(expected, data.mean, data.std, None), rtol=0, atol=1e-5)
    assert next(got, None) is None
    # Validation images are never augmented.
    validation = model_input(data.validation.images.float() / 255.0, data.mean, data.std, None)
    for batch in evaluation:
        torch.testing.assert_close(batch, validation[: len(batch)], rtol=0, atol=1e-6)


def test_crop_flip_changes_the_training_images(data):
    spec = TrainSpec("tiny_cnn", "none", epochs=1, batch_size=64, input_size=None)
    plain, _ = _inputs(spec, data)
    cropped, _ = _inputs(dataclasses.replace(spec, standard_augmentation="crop_flip"), data)
    assert not torch.allclose(torch.cat(plain), torch.cat(cropped))


# Keys of trainings made before training.standard_augmentation existed (written down then): with the option
# off they must not change, so stored models are reused.
KEYS_BEFORE = {"mixup": "be1822cc613c0774", "none": "83b9fd7211c9e9cd"}


@pytest.mark.parametrize("augmentation", sorted(KEYS_BEFORE))
def test_keys_without_the_standard_augmentation_are_unchanged(augmentation):
    params = (("alpha", 1.0),) if augmentation == "mixup" else ()
    spec = TrainSpec("preact_resnet18", augmentation, augmentation_params=params)
    job = TrainJob(DataSpec("cifar10"), spec, ComputeSpec("cpu", 2, True))
    assert job.key == KEYS_BEFORE[augmentation]
    cropped = dataclasses.replace(job, spec=dataclasses.replace(spec, standard_augmentation="crop_flip"))
    assert cropped.key != job.key
    assert "standard_augmentation" in cropped.spec.key_fields() and "standard_augmentation" not in spec.key_fields()
    # Fields added after keys were pinned are left out at their defaults too (pinned in
    # tests/train/test_copies_and_resolution.py), and the weights file's path is never keyed.
    assert dataclasses.asdict(spec).keys() - spec.key_fields().keys() == {
        "standard_augmentation", "augmentation_copies", "augmentation_resolution", "pretrained_sha256",
        "pretrained_path", "normalisation"}
    # The class itself lists every field: the spec builder and equality see it.
    assert "standard_augmentation" in {f.name for f in dataclasses.fields(TrainSpec)}
    assert spec != cropped.spec and dataclasses.replace(cropped.spec, standard_augmentation="none") == spec
