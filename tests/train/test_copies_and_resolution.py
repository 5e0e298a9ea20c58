"""training.augmentation_copies and training.augmentation_resolution: the batches the model is fed, in the
one-model and the stacked loop, against copies and images made independently (torchvision for the blur and
the resize); the artifact keys they change, and those they leave alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from auglens import config as cfg
from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.config import ConfigError
from auglens.data.prepared import DataSpec
from auglens.distortion.config import DistortionConfig
from auglens.study.jobs import TrainJob
from auglens.study.plan import plan_study
from auglens.study.runtime import ComputeSpec
from auglens.study.specs import train_spec
from auglens.train import loop, stacked
from auglens.train.loop import TrainSpec, train_model
from auglens.train.order import training_order
from auglens.train.stacked import train_stacked
from train_testing import tiny_data  # tests/train is on sys.path

CPU = ComputeSpec("cpu", 1, True)


def fed_batches(monkeypatch, specs, data, together: bool):
    """What each model's training steps were fed, per model and epoch: the epoch's batches concatenated,
    (x, labels, partner labels, lam). ``together``: the specs trained as one stacked group, else one by one."""
    steps: list[list[tuple[torch.Tensor, ...]]] = []
    for trainee in (loop._OneModel, stacked._Stacked):
        def step(self, batches, original=trainee.step):
            steps.append([tuple(part.detach().clone() for part in batch) for batch in batches])
            return original(self, batches)
        monkeypatch.setattr(trainee, "step", step)
    if together:
        train_stacked(specs, data)
        per_model = [[step[i] for step in steps] for i in range(len(specs))]
    else:
        per_model = []
        for spec in specs:
            steps.clear()
            train_model(spec, data)
            per_model.append([only for (only,) in steps])
    out = []
    for spec, batches in zip(specs, per_model):
        per_epoch = len(batches) // spec.epochs
        out.append([tuple(torch.cat(parts) for parts in zip(*batches[e * per_epoch : (e + 1) * per_epoch]))
                    for e in range(spec.epochs)])
    return out


def _equal(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("together", [False, True], ids=["one_model", "stacked"])
@pytest.mark.parametrize("augmentation", ["affine", "cutmix"])
def test_fixed_copies_repeat_every_epoch_and_per_epoch_copies_do_not(monkeypatch, together, augmentation):
    data = tiny_data()
    n = len(data.train)
    fed = {}
    for copies in ("per_epoch", "fixed"):
        base = TrainSpec("tiny_cnn", augmentation, batch_size=16, epochs=3, lr=3e-3, input_size=None,
                         augmentation_copies=copies)
        fed[copies] = fed_batches(monkeypatch, [base, dataclasses.replace(base, seed=2)], data, together)
    is_copy = training_order(n, True, TrainSpec("tiny_cnn", "none").sampling_seed) >= n  # one order for all epochs
    for model in range(2):
        per_epoch, fixed = fed["per_epoch"][model], fed["fixed"][model]
        # Fixed: every epoch is fed the first epoch's batches exactly, images, labels, partners and weights
        # (for CutMix the partner is another image of the same batch, and the batches repeat).
        for epoch in range(1, 3):
            assert _equal(fixed[epoch], fixed[0])
        # The fixed copies are the ones a per-epoch run draws in its first epoch.
        assert _equal(fixed[0], per_epoch[0])
        for epoch in range(1, 3):
            x0, x = per_epoch[0][0], per_epoch[epoch][0]
            assert torch.equal(x[~is_copy], x0[~is_copy])  # the originals are the originals
            # A copy repeats only where both epochs draw a transform that changes nothing: for affine on noise
            # images essentially never, for CutMix a box of no pixel (lam > 0.97, about 3 %) both times.
            changed = (x[is_copy] != x0[is_copy]).flatten(1).any(dim=1).double().mean()
            assert changed > 0.5
    # Each starting state still draws its own copies.
    assert not torch.equal(fed["fixed"][0][0][0][is_copy], fed["fixed"][1][0][0][is_copy])


def test_fixed_copies_follow_the_image_when_the_order_is_reshuffled(monkeypatch):
    """Reshuffled, image i lands in another batch each epoch, and its (unmixed) fixed copy is still the same."""
    data = tiny_data()
    n = len(data.train)
    spec = TrainSpec("tiny_cnn", "affine", batch_size=16, epochs=3, input_size=None, reshuffle_each_epoch=True,
                     augmentation_copies="fixed")
    (epochs,) = fed_batches(monkeypatch, [spec], data, together=False)
    copies = []
    for epoch, (x, *_) in enumerate(epochs):
        order = training_order(n, True, spec.sampling_seed, epoch, True)
        by_image = torch.empty_like(x[:n])
        by_image[order[order >= n] - n] = x[order >= n]
        copies.append(by_image)
    first, second = (training_order(n, True, spec.sampling_seed, epoch, True) for epoch in (0, 1))
    assert not torch.equal(first, second)  # the copies did move between batches
    assert torch.equal(copies[1], copies[0]) and torch.equal(copies[2], copies[0])


def test_stacked_and_one_model_loops_feed_the_same_batches_under_both_settings(monkeypatch):
    data = tiny_data()
    base = TrainSpec("tiny_cnn", "gaussian_blur", batch_size=16, epochs=2, lr=3e-3, input_size=16,
                     augmentation_copies="fixed", augmentation_resolution="model_input")
    group = [base, dataclasses.replace(base, seed=2, augmentation="cutmix")]
    alone = fed_batches(monkeypatch, group, data, together=False)
    together = fed_batches(monkeypatch, group, data, together=True)
    for model in range(2):
        for epoch in range(2):
            assert _equal(together[model][epoch], alone[model][epoch])


# ---------------------------------------------------------------------------------------------- resolution

# Our resize, blur and normalisation run in float32 against a float64 reference: about 16 roundings of
# values <= 1 (4 bilinear taps, two 5-tap passes, the normalisation), 16 * 2**-24 ~ 1e-6, divided by the
# data's std (0.3): ~3e-6. 1e-5 leaves a factor 3.
ATOL = 1e-5


@pytest.mark.parametrize("together", [False, True], ids=["one_model", "stacked"])
def test_blur_runs_on_the_stored_or_on_the_resized_image_as_torchvision_would(monkeypatch, together):
    """native: blur, then upsample 12 -> 24 px; model_input: upsample, then blur (same kernel and sigma, in
    pixels of the image blurred). Originals are the upsampled images either way."""
    data = tiny_data()  # 12 x 12 training images
    n, size = len(data.train), 24
    order = training_order(n, True, TrainSpec("tiny_cnn", "none").sampling_seed)
    is_copy, source = order >= n, order % n
    images = data.train.images[source].double() / 255.0
    sigmas = AUGMENTATIONS.build("gaussian_blur").params(sample_keys(1, 0, source))["sigma"]

    def upsample(x):
        return TF.resize(x, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)

    def blur(x, sigma):
        return TF.gaussian_blur(x, [5, 5], [float(sigma)] * 2)

    def normalise(x):
        return (x - data.mean.double().view(1, -1, 1, 1)) / data.std.double().view(1, -1, 1, 1)

    expected = {
        "native": torch.stack([upsample(blur(x, s)) if c else upsample(x) for x, s, c in zip(images, sigmas, is_copy)]),
        "model_input": torch.stack([blur(upsample(x), s) if c else upsample(x)
                                    for x, s, c in zip(images, sigmas, is_copy)]),
    }
    # The two readings differ far beyond the tolerance, so the comparison below tells them apart.
    assert float((expected["native"] - expected["model_input"]).abs().max()) > 100 * ATOL
    for resolution, want in expected.items():
        spec = TrainSpec("tiny_cnn", "gaussian_blur", batch_size=16, epochs=1, lr=3e-3, input_size=size,
                         augmentation_resolution=resolution)
        group = [spec, dataclasses.replace(spec, seed=2)] if together else [spec]
        (x, *_), = fed_batches(monkeypatch, group, data, together)[0]
        torch.testing.assert_close(x.double(), normalise(want), rtol=0, atol=ATOL, msg=resolution)


def test_validation_images_are_resized_and_normalised_only(monkeypatch):
    data = tiny_data()
    spec = TrainSpec("tiny_cnn", "gaussian_blur", batch_size=16, epochs=1, input_size=24,
                     augmentation_resolution="model_input")
    seen = []
    original = loop.predict_logits

    def predict_logits(model, images, *args, **kwargs):
        seen.append(images.clone())
        return original(model, images, *args, **kwargs)

    monkeypatch.setattr(loop, "predict_logits", predict_logits)
    train_model(spec, data)
    (images,) = seen
    assert torch.equal(images, data.validation.images)  # uint8, as stored: model_input only resizes and normalises


# ---------------------------------------------------------------------------------------------- keys

# Keys of trainings made before either setting existed (tests/train/test_standard_augmentation.py wrote them
# down): at their defaults the settings stay out of the key, so stored models are reused.
KEYS_BEFORE = {"mixup": "be1822cc613c0774", "none": "83b9fd7211c9e9cd"}


def test_default_keys_are_unchanged_and_each_setting_gives_its_own_key():
    spec = TrainSpec("preact_resnet18", "mixup", augmentation_params=(("alpha", 1.0),))
    job = TrainJob(DataSpec("cifar10"), spec, ComputeSpec("cpu", 2, True))
    assert job.key == KEYS_BEFORE["mixup"]
    baseline = TrainJob(DataSpec("cifar10"), TrainSpec("preact_resnet18", "none"), ComputeSpec("cpu", 2, True))
    assert baseline.key == KEYS_BEFORE["none"]
    changes = [{"augmentation_copies": "fixed"}, {"augmentation_resolution": "model_input"},
               {"augmentation_copies": "fixed", "augmentation_resolution": "model_input"}]
    keys = [dataclasses.replace(job, spec=dataclasses.replace(spec, **change)).key for change in changes]
    assert len({job.key, *keys}) == 4


def _study(**training) -> cfg.Config:
    return cfg.from_dict({"data": {"name": "synthetic"}, "model": {"architecture": "tiny_cnn", "input_size": 24},
                          "training": {"epochs": 1, **training}, "study": {"seeds": [1, 2]},
                          "augmentations": [{"name": "affine"}, {"name": "cutmix"}], "runtime": {"device": "cpu"}})


@pytest.mark.parametrize("training", [{"augmentation_copies": "fixed"}, {"augmentation_resolution": "model_input"}])
def test_a_study_setting_reaches_the_augmented_models_and_leaves_the_baseline_shared(training):
    (name, value), = training.items()
    default_value = getattr(TrainSpec("tiny_cnn", "none"), name)
    before, after = ({(job.spec.augmentation, job.spec.seed): job for job in plan_study(config, CPU).train_jobs}
                     for config in (_study(), _study(**training)))
    assert before.keys() == after.keys() and {name for name, _ in after} == {"none", "affine", "cutmix"}
    for model, job in after.items():
        if model[0] == "none":  # no copies to make: its weights, and so its key, do not depend on the setting
            assert getattr(job.spec, name) == default_value and job.key == before[model].key
        else:
            assert getattr(job.spec, name) == value and job.key != before[model].key


def test_both_configs_read_the_settings_and_reject_unknown_values():
    distortion = DistortionConfig.from_dict({"data": {"name": "synthetic"}, "runs": {"seeds": [1]},
                                             "training": {"augmentation_copies": "fixed",
                                                          "augmentation_resolution": "model_input"}})
    spec = train_spec(distortion.model, distortion.training, distortion.split, "mixup", {}, 1)
    assert (spec.augmentation_copies, spec.augmentation_resolution) == ("fixed", "model_input")
    with pytest.raises(ConfigError) as error:
        _study(augmentation_copies="once", augmentation_resolution="224")
    message = str(error.value)
    assert "training.augmentation_copies" in message and "per_epoch" in message and "fixed" in message
    assert "training.augmentation_resolution" in message and "model_input" in message
