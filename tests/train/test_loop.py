"""The training loop: what the model is trained on, which epoch is kept, and resuming from a snapshot."""

from __future__ import annotations

import copy

import pytest
import torch

from auglens.augment import build_augmentation, sample_keys
from auglens.data.prepared import DataSpec, model_input, prepare_data
from auglens.models import build_model
from auglens.train import TrainSpec, train_model, training_order


@pytest.fixture(scope="module")
def data():
    return prepare_data(DataSpec("synthetic", train_subset=96, validation_fraction=0.25))


def _record_training_inputs(model_type: type, run):
    """Run ``run()`` and return every input the (training-mode) model of type ``model_type`` received."""
    seen: list[torch.Tensor] = []

    def hook(module, args):
        if type(module) is model_type and module.training:
            seen.append(args[0].detach().clone())

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        run()
    finally:
        handle.remove()
    return seen


@pytest.mark.slow
def test_augmented_copies_are_made_with_their_own_per_sample_keys(data):
    """Appendix B: copy i of epoch e is ``augmentation(image_i, key(seed, e, i))``, whatever the batch."""
    spec = TrainSpec("tiny_cnn", "affine", epochs=2, batch_size=24, seed=3, input_size=None)
    model_type = type(build_model("tiny_cnn", num_classes=data.num_classes, in_channels=data.in_channels))
    seen = _record_training_inputs(model_type, lambda: train_model(spec, data))
    n = len(data.train)
    per_epoch = torch.cat(seen).split(2 * n)
    assert len(per_epoch) == spec.epochs

    augmentation = build_augmentation("affine")
    images = data.train.images.float() / 255.0
    for epoch, got in enumerate(per_epoch):
        order = training_order(n, True, spec.sampling_seed, epoch)
        source, is_copy = order % n, order >= n
        expected = images[source].clone()
        keys = sample_keys(spec.seed, epoch, source[is_copy])
        expected[is_copy] = augmentation(images[source[is_copy]], data.train.labels[source[is_copy]], keys).images
        torch.testing.assert_close(got, model_input(expected, data.mean, data.std, None), rtol=0, atol=1e-5)

        copies = got[is_copy]
        # The copies differ from their originals and from one another: one key for a whole batch, or the
        # same key in every epoch, would give every copy the same rotation/shift/shear.
        assert not torch.allclose(copies, model_input(images[source[is_copy]], data.mean, data.std, None))
        one_key = augmentation(images[source[is_copy]], data.train.labels[source[is_copy]],
                               keys[:1].expand(len(keys)).clone()).images
        assert not torch.allclose(copies, model_input(one_key, data.mean, data.std, None), atol=1e-3)
    assert not torch.allclose(per_epoch[0][training_order(n, True, spec.sampling_seed, 0) >= n],
                              per_epoch[1][training_order(n, True, spec.sampling_seed, 1) >= n], atol=1e-3)


# An Adam step size of 30 in the last epoch wrecks the weights, so validation accuracy peaks early; the
# synthetic task is learnt to 1.0 in epochs 1 and 2, a tie for the best value.
PEAKED = TrainSpec("tiny_cnn", "none", epochs=4, batch_size=16, seed=1, input_size=None, lr=1e-2,
                   lr_milestones=(3,), lr_gamma=3000.0)


@pytest.fixture(scope="module")
def peaked(data):
    """An uninterrupted run and its epoch snapshots, deep-copied as the study's stored snapshots are."""
    snapshots = []
    result = train_model(PEAKED, data, on_epoch_end=lambda s: snapshots.append(copy.deepcopy(s)))
    return result, snapshots


@pytest.mark.slow
def test_the_kept_weights_are_those_of_the_first_epoch_with_the_best_validation_accuracy(peaked):
    result, snapshots = peaked
    accuracy = [row["val_accuracy"] for row in result.history]
    best = max(accuracy)
    assert accuracy[-1] < best, f"the recipe should peak before the last epoch, got {accuracy}"
    assert accuracy.count(best) >= 2, f"the recipe should tie for the best epoch, got {accuracy}"
    assert result.best_epoch == accuracy.index(best)
    kept = snapshots[result.best_epoch]["model"]
    for key, value in result.state_dict.items():
        assert torch.equal(value, kept[key].cpu()), key


@pytest.mark.slow
@pytest.mark.parametrize("resume_after", [0, 2])
def test_a_run_resumed_from_an_epoch_snapshot_is_bit_identical(data, peaked, resume_after):
    full, snapshots = peaked
    resumed = train_model(PEAKED, data, snapshot=snapshots[resume_after])
    assert resumed.best_epoch == full.best_epoch
    assert full.state_dict.keys() == resumed.state_dict.keys()
    for key in full.state_dict:
        assert torch.equal(full.state_dict[key], resumed.state_dict[key]), key

    def timeless(history):
        return [{k: v for k, v in row.items() if k != "elapsed_seconds"} for row in history]

    assert timeless(resumed.history) == timeless(full.history)
