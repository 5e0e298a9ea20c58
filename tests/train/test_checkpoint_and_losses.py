"""Checkpoint selection (best validation epoch or last epoch, training without validation) and the per-epoch
training losses recorded in the history (objective and majority-label cross-entropy)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from auglens.augment import build_augmentation, sample_keys
from auglens.data.prepared import DataSpec, model_input, prepare_data
from auglens.train.loop import TrainSpec, cross_entropy_pair, mixed_cross_entropy, train_model
from auglens.train.order import training_order
from train_testing import LOSS_OFFSET, expected_epoch_losses, tiny_data  # tests/train is on sys.path


def linear_model(num_classes: int, in_channels: int) -> nn.Module:
    """No batch statistics: the loss of a sample does not depend on its batch."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 16 * 16, num_classes))


def _data(validation_fraction: float):
    return prepare_data(DataSpec("synthetic", train_subset=64, test_subset=16, image_size=16,
                                 validation_fraction=validation_fraction))


SPEC = TrainSpec("tiny_cnn", "none", optimizer="sgd", lr=0.05, batch_size=16, epochs=2, reshuffle_each_epoch=True)


def test_last_checkpoint_is_the_final_epochs_weights():
    data = _data(0.25)
    snapshots = []
    two = train_model(dataclasses.replace(SPEC, checkpoint="last"), data, on_epoch_end=snapshots.append)
    one = train_model(dataclasses.replace(SPEC, epochs=1, checkpoint="last"), data)
    assert two.best_epoch == 1 and one.best_epoch == 0
    for name, value in one.state_dict.items():  # 1 epoch "last" == the 2-epoch run after its first epoch
        assert torch.equal(value, snapshots[0]["model"][name].cpu()), name
    assert any(not torch.equal(one.state_dict[k], two.state_dict[k]) for k in one.state_dict)


def test_training_without_validation_needs_the_last_checkpoint():
    data = _data(0.0)
    assert len(data.validation) == 0
    result = train_model(dataclasses.replace(SPEC, checkpoint="last"), data)
    assert result.best_epoch == 1 and "val_accuracy" not in result.history[-1]
    with pytest.raises(ValueError, match="checkpoint = 'last'"):
        train_model(SPEC, data)


@pytest.mark.parametrize("name", ["none", "mixup", "fmix"])
def test_history_losses_are_the_objective_and_the_majority_label_cross_entropy(name):
    # lr = 0 and a model without batch statistics: the losses are those of the initial model on the
    # augmented samples, which we rebuild here from the (documented) order and keys in one batch.
    data = _data(0.25)
    spec = TrainSpec(f"{__name__}:linear_model", name, lr=0.0, optimizer="sgd", momentum=0.0, weight_decay=0.0,
                     batch_size=len(data.train), epochs=1, augment_every_sample=True, checkpoint="last")
    history = train_model(spec, data).history[0]
    order = training_order(len(data.train), False, spec.sampling_seed)
    images = data.train.images[order].float() / 255.0
    labels = data.train.labels[order]
    augmentation = build_augmentation(name)
    if augmentation is None:
        first, second, lam = labels, labels, torch.ones(len(labels))
    else:
        batch = augmentation(images, labels, sample_keys(spec.seed, 0, order))
        images, first, second, lam = batch.images, batch.labels, batch.partner_labels, batch.lam.float()
    torch.manual_seed(spec.init_seed)
    model = linear_model(data.num_classes, data.in_channels)
    with torch.no_grad():
        logits = model(model_input(images, data.mean, data.std, None)).double()
    ce_first = F.cross_entropy(logits, first, reduction="none")
    ce_second = F.cross_entropy(logits, second, reduction="none")
    objective = (lam * ce_first + (1 - lam) * ce_second).mean()
    majority = torch.where(lam >= 0.5, ce_first, ce_second).mean()
    assert history["train_loss"] == pytest.approx(float(objective), rel=1e-5)
    assert history["train_loss_majority"] == pytest.approx(float(majority), rel=1e-5)
    if name != "none":
        assert abs(float(objective) - float(majority)) > 1e-4  # the two readings differ once samples are mixed


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_multi_tensor_optimizer_updates_give_the_bits_of_the_per_parameter_loop(optimizer, monkeypatch):
    """The training loop's optimizers update all parameters at once (foreach); the weights must be those of
    torch's per-parameter loop, bit for bit, or every earlier result would silently move."""
    from auglens.train import loop

    data = tiny_data()
    spec = loop.TrainSpec("tiny_cnn", "affine", batch_size=6, epochs=2, lr=3e-3, optimizer=optimizer)
    multi = loop.train_model(spec, data).state_dict
    build = loop._optimizer

    def per_parameter(spec, params):
        optim = build(spec, params)
        for group in optim.param_groups:
            group["foreach"] = False
        return optim

    monkeypatch.setattr(loop, "_optimizer", per_parameter)
    single = loop.train_model(spec, data).state_dict
    assert all(torch.equal(multi[k], single[k]) for k in multi)


def test_mixed_cross_entropy_by_hand():
    """mean(lam * CE(label) + (1 - lam) * CE(partner)), with CE(k) = log(sum exp(logits)) - logits[k]."""
    import math

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    labels, partners, lam = torch.tensor([0, 2]), torch.tensor([1, 1]), torch.tensor([0.75, 0.25])
    logsumexp = [math.log(sum(math.exp(v) for v in row)) for row in logits.tolist()]
    ce = [[logsumexp[i] - logits[i, k].item() for k in range(3)] for i in range(2)]
    expected = (0.75 * ce[0][0] + 0.25 * ce[0][1] + 0.25 * ce[1][2] + 0.75 * ce[1][1]) / 2
    assert float(mixed_cross_entropy(logits, labels, partners, lam)) == pytest.approx(expected, rel=1e-6)
    first, second = cross_entropy_pair(logits, labels, partners)
    assert first.tolist() == pytest.approx([ce[0][0], ce[1][2]], rel=1e-6)
    assert second.tolist() == pytest.approx([ce[0][1], ce[1][1]], rel=1e-6)


def test_the_logged_epoch_losses_are_summed_in_double_precision(monkeypatch):
    from auglens.train import loop

    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def offset_pair(logits, labels, partner):
        loss_a, loss_b = cross_entropy_pair(logits, labels, partner)
        pairs.append(((loss_a + LOSS_OFFSET).detach(), (loss_b + LOSS_OFFSET).detach()))
        return loss_a + LOSS_OFFSET, loss_b + LOSS_OFFSET

    monkeypatch.setattr(loop, "cross_entropy_pair", offset_pair)
    spec = dataclasses.replace(SPEC, epochs=1, batch_size=5)  # 13 batches, the last one short
    result = train_model(dataclasses.replace(spec, checkpoint="last"), _data(0.0))
    loss, majority = expected_epoch_losses(pairs)
    assert loss != pytest.approx(LOSS_OFFSET, rel=1e-9)  # the real losses are still in it
    assert result.history[0]["train_loss"] == pytest.approx(loss, rel=1e-15, abs=0)
    assert result.history[0]["train_loss_majority"] == pytest.approx(majority, rel=1e-15, abs=0)
