"""Stacked training (several models in lockstep) against training each model alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from auglens.data.datasets import ImageSet
from auglens.data.prepared import PreparedData
from auglens.train.loop import TrainSpec, initial_model, predict_logits, train_model
from auglens.train.stacked import group_key, train_stacked


def tiny_data(n: int = 80, side: int = 12) -> PreparedData:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 4
    images = torch.randint(0, 60, (n, 1, side, side), generator=g, dtype=torch.uint8)
    for k in range(4):  # a learnable signal: a bright quadrant per class
        rows, cols = divmod(k, 2)
        images[labels == k, :, rows * 6 : rows * 6 + 6, cols * 6 : cols * 6 + 6] += 150
    classes = [str(k) for k in range(4)]
    return PreparedData(ImageSet(images[:60], labels[:60], classes), ImageSet(images[60:70], labels[60:70], classes),
                        ImageSet(images[70:], labels[70:], classes), torch.tensor([0.3]), torch.tensor([0.3]))


def specs(**common) -> list[TrainSpec]:
    base = TrainSpec("tiny_cnn", "affine", batch_size=6, epochs=2, lr=3e-3, **common)
    return [base, dataclasses.replace(base, seed=2), dataclasses.replace(base, augmentation="cutmix"),
            dataclasses.replace(base, augmentation="gaussian_blur", seed=3)]


@pytest.mark.slow
def test_stacked_training_equals_one_model_at_a_time():
    data = tiny_data()
    group = specs()  # 120 images per epoch in batches of 6: 20 steps per epoch, 40 in all
    assert len({group_key(s) for s in group}) == 1
    together = train_stacked(group, data)
    for spec, result in zip(group, together):
        alone = train_model(spec, data)
        assert result.best_epoch == alone.best_epoch
        for name, value in alone.state_dict.items():
            torch.testing.assert_close(result.state_dict[name], value, rtol=0, atol=1e-4, msg=name)
        logits = []
        for state in (result.state_dict, alone.state_dict):
            model = initial_model(spec, data.num_classes, data.in_channels)
            model.load_state_dict(state)
            logits.append(predict_logits(model, data.test.images, data.mean, data.std, None, 64, torch.device("cpu")))
        assert torch.equal(logits[0].argmax(1), logits[1].argmax(1))
        assert [h["val_accuracy"] for h in result.history] == [h["val_accuracy"] for h in alone.history]


@pytest.mark.slow
def test_stacked_group_resumes_mid_training_from_per_model_snapshots():
    data = tiny_data()
    group = specs()
    saved: dict[int, dict] = {}
    uninterrupted = train_stacked(group, data, on_epoch_end=lambda i, snap: saved.setdefault(i, snap))
    assert sorted(saved) == [0, 1, 2, 3] and all(s["epoch"] == 0 for s in saved.values())
    resumed = train_stacked(group, data, snapshots=[saved[i] for i in range(4)])
    for a, b in zip(uninterrupted, resumed):
        for name in a.state_dict:
            torch.testing.assert_close(a.state_dict[name], b.state_dict[name], rtol=0, atol=0)
    # A group snapshot is train_model's format: one model resumes alone from it.
    alone = train_model(group[2], data, snapshot=saved[2])
    for name, value in alone.state_dict.items():
        torch.testing.assert_close(uninterrupted[2].state_dict[name], value, rtol=0, atol=1e-4)


def test_stacked_training_refuses_mixed_groups():
    data = tiny_data()
    with pytest.raises(ValueError, match="differ only"):
        train_stacked([TrainSpec("tiny_cnn", "none"), TrainSpec("tiny_cnn", "affine")], data)
    with pytest.raises(ValueError, match="differ only"):
        train_stacked([TrainSpec("tiny_cnn", "affine"), TrainSpec("tiny_cnn", "affine", lr=0.5)], data)
