"""Appendix B's ordering control: position k holds the same source image in every augmented model."""

import pytest
import torch

from auglens.train import training_order


def test_order_is_a_permutation_shared_by_every_augmentation():
    order = training_order(100, augmented=True, sampling_seed=5)
    assert sorted(order.tolist()) == list(range(200))
    assert torch.equal(order, training_order(100, augmented=True, sampling_seed=5))
    assert not torch.equal(order, training_order(100, augmented=True, sampling_seed=6))


def test_order_is_fixed_across_epochs_unless_reshuffling():
    assert torch.equal(training_order(50, True, 1, epoch=0), training_order(50, True, 1, epoch=3))
    assert not torch.equal(training_order(50, True, 1, 0, True), training_order(50, True, 1, 3, True))


def test_baseline_order_covers_originals_only():
    assert sorted(training_order(30, augmented=False, sampling_seed=2).tolist()) == list(range(30))


def test_learning_rate_steps_at_the_milestones():
    from auglens.train.loop import TrainSpec, learning_rate

    spec = TrainSpec("tiny_cnn", "none", lr=0.1, lr_milestones=(2, 4), lr_gamma=0.5)
    assert [learning_rate(spec, e) for e in range(6)] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert learning_rate(TrainSpec("tiny_cnn", "none", lr=0.1), 99) == 0.1


def test_one_cycle_learning_rate_warms_up_then_decays_to_zero():
    from auglens.train.loop import TrainSpec, learning_rate

    spec = TrainSpec("tiny_cnn", "none", lr=0.1, epochs=5, lr_schedule="one_cycle")
    assert learning_rate(spec, 0, 0.0) == pytest.approx(0.01)  # lr / 10 at the start
    assert learning_rate(spec, 1, 0.0) == pytest.approx(0.1)  # the peak at 20 % of training
    assert learning_rate(spec, 0, 0.5) == pytest.approx(0.01 + 0.09 * 0.5)  # linear warm-up
    assert learning_rate(spec, 3, 0.0) == pytest.approx(0.1 * (1 - 0.6) / 0.8)  # linear decay
    assert learning_rate(spec, 4, 0.999) == pytest.approx(0.1 * 0.001 / 5 / 0.8)
    rates = [learning_rate(spec, e, f / 10) for e in range(5) for f in range(10)]
    peak = rates.index(max(rates))
    assert all(a < b for a, b in zip(rates[:peak], rates[1 : peak + 1]))
    assert all(a > b for a, b in zip(rates[peak:], rates[peak + 1 :]))
