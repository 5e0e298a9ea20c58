"""Stacked training (several models in lockstep) against training each model alone."""

from __future__ import annotations

import copy
import dataclasses
import time

import pytest
import torch

from auglens.augment import build_augmentation, sample_keys
from auglens.data.datasets import ImageSet
from auglens.data.prepared import PreparedData
from auglens.train import stacked
from auglens.train.loop import TrainSpec, _optimizer, initial_model, predict_logits, train_model
from auglens.train.stacked import (AUTO_MAX_MODELS, AUTO_MAX_PARAMETERS, auto_models_at_once, group_key,
                                   stacking_obstacle, train_stacked)
from tests.float_order import assert_within_float_order, record_steps, reduction_terms
from train_testing import LOSS_OFFSET, expected_epoch_losses, tiny_data  # tests/train is on sys.path


#: Plain SGD wherever a group is compared with its models trained alone: the two are the same sums in another
#: float order, and SGD's step is linear in the gradient, so tests/float_order.py bounds their distance.
SGD = {"optimizer": "sgd", "momentum": 0.0}


def specs(**common) -> list[TrainSpec]:
    base = TrainSpec("tiny_cnn", "affine", batch_size=6, epochs=2, lr=1e-2, **{**SGD, **common})
    return [base, dataclasses.replace(base, seed=2), dataclasses.replace(base, augmentation="cutmix"),
            dataclasses.replace(base, augmentation="gaussian_blur", seed=3)]


def terms(spec: TrainSpec, data: PreparedData) -> int:
    side = spec.input_size or data.train.images.shape[-1]
    return reduction_terms(initial_model(spec, data.num_classes, data.in_channels), spec.batch_size, side)


def assert_as_trained_alone(group, data, together):
    """Each result of a group equals ``train_model`` on its spec: weights (up to float order), kept epoch,
    every history value but the timings, and the number of images reported to ``progress``."""
    for spec, result in zip(group, together):
        counted = []
        with record_steps() as log:
            alone = train_model(spec, data, progress=counted.append)
        assert result.best_epoch == alone.best_epoch
        assert_within_float_order(result.state_dict, alone.state_dict, log, terms(spec, data), spec.augmentation)
        assert len(result.history) == len(alone.history) == spec.epochs
        for row, expected in zip(result.history, alone.history):
            assert sorted(row) == sorted(expected)
            for key, value in expected.items():
                if key != "elapsed_seconds":
                    assert row[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    return sum(counted)


@pytest.mark.slow
def test_stacked_training_equals_one_model_at_a_time():
    data = tiny_data()
    group = specs()  # 120 images per epoch in batches of 6: 20 steps per epoch, 40 in all
    assert len({group_key(s) for s in group}) == 1
    together = train_stacked(group, data)
    for spec, result in zip(group, together):
        with record_steps() as log:
            alone = train_model(spec, data)
        assert result.best_epoch == alone.best_epoch
        assert_within_float_order(result.state_dict, alone.state_dict, log, terms(spec, data), spec.augmentation)
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
    # copied when taken, as a snapshot written to disk is (the history list goes on growing)
    uninterrupted = train_stacked(group, data, on_epoch_end=lambda i, snap: saved.setdefault(i, copy.deepcopy(snap)))
    assert sorted(saved) == [0, 1, 2, 3] and all(s["epoch"] == 0 for s in saved.values())
    resumed = train_stacked(group, data, snapshots=[saved[i] for i in range(4)])
    for a, b in zip(uninterrupted, resumed):
        for name in a.state_dict:
            torch.testing.assert_close(a.state_dict[name], b.state_dict[name], rtol=0, atol=0)
        # the kept weights may be the snapshot's own best: the histories show that the last epoch ran once
        assert b.best_epoch == a.best_epoch
        assert [h["epoch"] for h in b.history] == [0, 1]
        for row, expected in zip(b.history, a.history):
            assert {k: v for k, v in row.items() if k != "elapsed_seconds"} == {
                k: v for k, v in expected.items() if k != "elapsed_seconds"}
    # A group snapshot is train_model's format: one model resumes alone from it.
    with record_steps() as log:
        alone = train_model(group[2], data, snapshot=saved[2])
    assert_within_float_order(uninterrupted[2].state_dict, alone.state_dict, log, terms(group[2], data))


def test_group_of_one_resumes_like_train_model():
    data = tiny_data()
    spec = TrainSpec("tiny_cnn", "cutmix", batch_size=40, epochs=2, lr=1e-2, **SGD)
    saved = []
    (uninterrupted,) = train_stacked([spec], data, on_epoch_end=lambda i, snap: saved.append(snap))
    steps = [float(state["step"]) for state in saved[0]["optimizer"]["state"].values()]
    (resumed,) = train_stacked([spec], data, snapshots=[saved[0]])
    # resuming leaves the snapshot alone (torch's optimizer would count its steps on in the given tensor)
    assert [float(state["step"]) for state in saved[0]["optimizer"]["state"].values()] == steps
    with record_steps() as log:
        alone = train_model(spec, data, snapshot=saved[0])
    assert resumed.best_epoch == uninterrupted.best_epoch == alone.best_epoch
    for name, value in uninterrupted.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[name], value, rtol=0, atol=0, msg=name)
    assert_within_float_order(alone.state_dict, uninterrupted.state_dict, log, terms(spec, data))


def test_stacked_epoch_clocks_hooks_and_reseed_as_one_model_and_a_resume_changes_nothing(monkeypatch):
    """The group's epochs go through train_model's loop: ``on_epoch_trained`` once per model and epoch, with
    train_model's record fields and the training-only clock; snapshots carry that clock; the global generator
    is reseeded per epoch from the first model's starting state; a group resumed from its snapshots ends as
    the uninterrupted group, bit for bit (clocks included, under a fake clock).

    The fake clock advances 10 s per reading; each epoch reads it at its start, after its training steps and
    after validation (once for the whole group), so an epoch adds 10 s of training and 20 s in all.
    """
    import types

    from auglens.train import epochs

    ticks = iter(range(0, 10_000, 10))
    monkeypatch.setattr(epochs, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    data = tiny_data()
    base = TrainSpec("tiny_cnn", "affine", batch_size=20, epochs=3, lr=3e-3, seed=7)
    group = [base, dataclasses.replace(base, augmentation="cutmix", seed=2)]

    def train(snapshots=None):
        calls, saved = [], {}

        def trained(i, model, record):
            # a hook may draw random numbers and (here, a copy) change the model: neither reaches training
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            calls.append((i, record, weights, float(torch.rand(()))))
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.zero_()

        results = train_stacked(group, data, snapshots=snapshots, on_epoch_trained=trained,
                                on_epoch_end=lambda i, snap: saved.setdefault(i, []).append(copy.deepcopy(snap)))
        return results, calls, saved

    together, calls, saved = train(None)
    assert [(i, record["epoch"]) for i, record, _, _ in calls] == [(i, e) for e in range(3) for i in range(2)]
    assert [record["train_seconds"] for _, record, _, _ in calls] == [10.0, 10.0, 20.0, 20.0, 30.0, 30.0]
    for i, result in enumerate(together):
        assert [row["elapsed_seconds"] for row in result.history] == [20.0, 40.0, 60.0]
        assert result.train_seconds == 60.0
        assert [(s["elapsed"], s["train_elapsed"]) for s in saved[i]] == [(20.0, 10.0), (40.0, 20.0)]
        records = [record for j, record, _, _ in calls if j == i]
        for record, row in zip(records, result.history):
            assert record == {**row, "train_seconds": record["train_seconds"]}
        for snap, (_, _, weights, _) in zip(saved[i], [c for c in calls if c[0] == i]):
            assert all(torch.equal(snap["model"][k], weights[k]) for k in weights)
    # train_model's record has the same fields, and its hook draws what the group's first hook of each epoch
    # draws: one stream per epoch, seeded from the first model's starting state
    single = []
    train_model(group[0], data, on_epoch_trained=lambda model, record: single.append((record, float(torch.rand(())))))
    assert [sorted(record) for record, _ in single] == [sorted(c[1]) for c in calls[::2]]
    assert [draw for _, draw in single] == [c[3] for c in calls[::2]]

    resumed, resumed_calls, _ = train([saved[i][0] for i in range(2)])
    assert [(i, record["epoch"]) for i, record, _, _ in resumed_calls] == [(i, e) for e in (1, 2) for i in range(2)]
    assert [c[1] for c in resumed_calls] == [c[1] for c in calls[2:]]
    assert [c[3] for c in resumed_calls] == [c[3] for c in calls[2:]]
    for a, b in zip(together, resumed):
        assert a.best_epoch == b.best_epoch and a.history == b.history and a.train_seconds == b.train_seconds
        assert sorted(a.state_dict) == sorted(b.state_dict)
        assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_stacked_training_refuses_mixed_groups():
    data = tiny_data()
    with pytest.raises(ValueError, match="differ only"):
        train_stacked([TrainSpec("tiny_cnn", "none"), TrainSpec("tiny_cnn", "affine")], data)
    with pytest.raises(ValueError, match="differ only"):
        train_stacked([TrainSpec("tiny_cnn", "affine"), TrainSpec("tiny_cnn", "affine", lr=0.5)], data)


@pytest.mark.slow
def test_stacked_baselines_scheduled_kept_last_equal_one_at_a_time():
    """The baseline layout (originals only) reshuffled each epoch, a per-batch learning rate (one-cycle), the
    last epoch kept and validation in several chunks; ``progress`` counts every model's images."""
    data = tiny_data()
    base = TrainSpec("tiny_cnn", "none", batch_size=8, epochs=2, lr=1e-2, lr_schedule="one_cycle",
                     checkpoint="last", eval_batch_size=4, reshuffle_each_epoch=True, **SGD)
    group = [base, dataclasses.replace(base, seed=5)]
    counted, ticks, hooked, clock = [], [], [], []

    def count(images):
        counted.append(images)
        ticks.append(time.perf_counter() - started)

    def hook(i, snap):
        hooked.append((i, snap["epoch"]))
        clock.append(time.perf_counter() - started)

    started = time.perf_counter()
    together = train_stacked(group, data, progress=count, on_epoch_end=hook)
    wall = time.perf_counter() - started
    assert [r.best_epoch for r in together] == [1, 1]
    steps = len(ticks) // 2  # per epoch
    for result in together:  # cumulative seconds of each epoch's training and validation
        first, second = (row["elapsed_seconds"] for row in result.history)
        assert ticks[steps - 1] - ticks[0] <= first <= clock[0]
        assert ticks[-1] - ticks[steps] <= second - first <= wall - clock[-1]
        assert second == result.train_seconds
    assert hooked == [(0, 0), (1, 0)]  # after every epoch but the last, for every model
    alone = assert_as_trained_alone(group, data, together)
    assert sum(counted) == len(group) * alone == len(group) * 2 * len(data.train)
    assert counted[0] == len(group) * 8


@pytest.mark.slow
def test_stacked_every_sample_augmented_with_sgd_and_milestones_equal_one_at_a_time():
    """The all-copies layout (``augment_every_sample``) at a model input size of 20, augmentation parameters,
    SGD's momentum state and a step schedule. FMix from starting state 2 draws samples mixed exactly half and
    half, whose majority label is the first (lam >= 0.5)."""
    data = tiny_data()
    base = TrainSpec("tiny_cnn", "affine", batch_size=10, epochs=2, lr=5e-2, optimizer="sgd",
                     augment_every_sample=True, lr_milestones=(1,), lr_gamma=0.5, input_size=20)
    group = [dataclasses.replace(base, augmentation_params=(("degrees", 40.0), ("shear", 0.0))),
             dataclasses.replace(base, augmentation="fmix", seed=2)]
    halves = build_augmentation("fmix")(data.train.images.float() / 255, data.train.labels,
                                        sample_keys(2, 0, torch.arange(len(data.train)))).lam
    assert int((halves == 0.5).sum()) > 0
    counted = []
    together = train_stacked(group, data, progress=counted.append)
    alone = assert_as_trained_alone(group, data, together)
    assert sum(counted) == len(group) * alone == len(group) * 2 * len(data.train)  # copies only, no originals


def test_stacked_training_without_validation_keeps_the_last_epoch():
    data = tiny_data()
    data = PreparedData(data.train, ImageSet(data.validation.images[:0], data.validation.labels[:0],
                                             data.validation.classes), data.test, data.mean, data.std)
    base = TrainSpec("tiny_cnn", "none", batch_size=30, epochs=1, lr=1e-2, checkpoint="last", **SGD)
    (result,) = train_stacked([base], data)
    with record_steps() as log:
        alone = train_model(base, data)
    assert result.best_epoch == alone.best_epoch == 0
    assert "val_accuracy" not in result.history[0]
    assert_within_float_order(result.state_dict, alone.state_dict, log, terms(base, data))
    trained = []
    with pytest.raises(ValueError, match="needs a validation set.*checkpoint = 'last'"):
        train_stacked([dataclasses.replace(base, checkpoint="best")], data, progress=trained.append)
    assert trained == []  # refused before the first step, not after an epoch


def test_stacked_training_validates_on_a_single_image():
    data = tiny_data()
    data = PreparedData(data.train, ImageSet(data.validation.images[:1], data.validation.labels[:1],
                                             data.validation.classes), data.test, data.mean, data.std)
    # SGD: Adam's first steps move each weight by about lr whatever the gradient's size, so a gradient
    # near 0 whose sign differs in the last bit (the stacked sums run in another order, and with 2 CPU
    # threads in yet another) would move a weight by up to 2 lr apart.
    base = TrainSpec("tiny_cnn", "affine", batch_size=40, epochs=1, lr=1e-2, optimizer="sgd")
    group = [base, dataclasses.replace(base, augmentation="cutmix")]
    together = train_stacked(group, data)
    assert all(r.history[0]["val_accuracy"] in (0.0, 1.0) for r in together)
    assert_as_trained_alone(group, data, together)


def test_stacked_group_refuses_snapshots_of_different_epochs():
    data = tiny_data()
    group = [TrainSpec("tiny_cnn", "affine"), TrainSpec("tiny_cnn", "affine", seed=2)]
    with pytest.raises(ValueError, match="same epoch"):
        train_stacked(group, data, snapshots=[None, {"epoch": 0}])


def test_group_key_separates_settings_and_batch_layouts():
    base = TrainSpec("tiny_cnn", "affine")
    same = [base, dataclasses.replace(base, seed=9), dataclasses.replace(base, augmentation="cutmix"),
            dataclasses.replace(base, augmentation_params=(("degrees", 5.0),))]
    assert len({group_key(s) for s in same}) == 1
    baseline = dataclasses.replace(base, augmentation="none")
    every = dataclasses.replace(base, augment_every_sample=True)
    assert len({group_key(s) for s in (base, baseline, every, dataclasses.replace(base, lr=0.5))}) == 4
    assert group_key(baseline) == group_key(dataclasses.replace(baseline, seed=3))
    # augment_every_sample means nothing for a baseline, but keys differ only by the field itself
    assert group_key(every)[0] == "all" and group_key(base)[0] == "originals+copies"
    assert group_key(baseline)[0] == "originals"
    assert group_key(dataclasses.replace(baseline, augment_every_sample=True))[0] == "originals"


class StochasticDepth(torch.nn.Identity):
    """Named like torchvision's random layer."""


def dropout_net(num_classes: int, in_channels: int, drop: str = "dropout") -> torch.nn.Module:
    layers = {"dropout": [torch.nn.Dropout2d(0.1)], "depth": [StochasticDepth()],
              "both": [StochasticDepth(), torch.nn.Dropout(0.1), torch.nn.Dropout2d(0.1)]}[drop]
    return torch.nn.Sequential(torch.nn.Conv2d(in_channels, 2, 3), *layers, torch.nn.Flatten(),
                               torch.nn.LazyLinear(num_classes))


def test_stacking_obstacles_and_auto_group_sizes(monkeypatch):
    tiny = TrainSpec("tiny_cnn", "affine")
    model = initial_model(tiny, 4, 1)
    assert stacking_obstacle(tiny, model) is None
    assert stacking_obstacle(dataclasses.replace(tiny, precision="auto"), model) is None  # decided by the device
    for spec in (dataclasses.replace(tiny, compile=True), dataclasses.replace(tiny, precision="bf16")):
        assert "fp32 without torch.compile" in stacking_obstacle(spec, model)
    assert "Dropout2d" in stacking_obstacle(tiny, dropout_net(4, 1))
    assert "StochasticDepth" in stacking_obstacle(tiny, dropout_net(4, 1, drop="depth"))
    assert "(Dropout, Dropout2d, StochasticDepth)" in stacking_obstacle(tiny, dropout_net(4, 1, drop="both"))
    with pytest.raises(ValueError, match="models_at_once = 1"):
        train_stacked([dataclasses.replace(tiny, architecture=f"{__name__}:dropout_net")] * 2, tiny_data())
    with pytest.raises(ValueError, match="models_at_once = 1"):
        train_stacked([dataclasses.replace(tiny, precision="bf16")] * 2, tiny_data())
    # as documented (docs/configuration.md): on CUDA up to 8 models of at most 5M parameters, else 1
    assert (AUTO_MAX_MODELS, AUTO_MAX_PARAMETERS) == (8, 5_000_000)
    assert auto_models_at_once(tiny, "cuda", 4, 1) == 8
    assert auto_models_at_once(tiny, "cpu", 4, 1) == 1
    assert auto_models_at_once(dataclasses.replace(tiny, precision="auto"), "cuda", 4, 1) == 1
    assert auto_models_at_once(dataclasses.replace(tiny, precision="bf16"), "cuda", 4, 1) == 1
    assert auto_models_at_once(dataclasses.replace(tiny, architecture=f"{__name__}:dropout_net"), "cuda", 4, 1) == 1
    size = sum(p.numel() for p in model.parameters())
    monkeypatch.setattr(stacked, "AUTO_MAX_PARAMETERS", size)  # "at most": a model of exactly the limit stacks
    assert auto_models_at_once(tiny, "cuda", 4, 1) == 8
    monkeypatch.setattr(stacked, "AUTO_MAX_PARAMETERS", size - 1)
    assert auto_models_at_once(tiny, "cuda", 4, 1) == 1


def test_optimizer_state_slices_and_restacks():
    """Model i's slice of a stacked optimizer is a one-model optimizer's state; stacking the slices back
    gives the stacked state, and a slice shares no tensor with the live optimizer."""
    spec = TrainSpec("tiny_cnn", "affine")
    params = [torch.nn.Parameter(torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(k))) for k in range(2)]
    optimizer = _optimizer(spec, params)
    for _ in range(2):
        optimizer.zero_grad()
        sum((p ** 2).sum() * (1 + torch.arange(3.0).view(3, 1, 1)).sum() for p in params).backward()
        optimizer.step()
    full = optimizer.state_dict()
    slices = [stacked._optimizer_state(optimizer, i) for i in range(3)]
    for i, piece in enumerate(slices):
        assert piece["param_groups"] == full["param_groups"]
        assert sorted(piece["state"]) == sorted(full["state"]) == [0, 1]
        for index, value in full["state"].items():
            assert float(piece["state"][index]["step"]) == 2.0
            for key in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(piece["state"][index][key], value[key][i])
    # one model's optimizer accepts its slice
    alone = _optimizer(spec, [torch.nn.Parameter(p.detach()[1].clone()) for p in params])
    alone.load_state_dict(slices[1])
    restacked = stacked._stack_optimizer_states(slices)
    assert restacked["param_groups"] == full["param_groups"]
    for index, value in full["state"].items():
        for key, tensor in value.items():
            assert torch.equal(restacked["state"][index][key], tensor), key
    before = {k: v.clone() for k, v in slices[0]["state"][0].items()}
    optimizer.step()  # the live state moves on; the slice does not
    for key, tensor in before.items():
        assert torch.equal(slices[0]["state"][0][key], tensor), key


def test_model_state_is_a_detached_copy_of_one_model():
    params = {"w": torch.arange(6.0).view(3, 2).requires_grad_()}
    buffers = {"b": torch.tensor([[1], [2], [3]])}
    state = stacked._model_state(params, buffers, 2)
    assert sorted(state) == ["b", "w"]
    assert torch.equal(state["w"], torch.tensor([4.0, 5.0])) and torch.equal(state["b"], torch.tensor([3]))
    assert not state["w"].requires_grad
    with torch.no_grad():
        params["w"].add_(1)
    assert torch.equal(state["w"], torch.tensor([4.0, 5.0]))


def test_stacked_logged_epoch_losses_are_summed_in_double_precision(monkeypatch):
    """As ``train_model`` (tests/train/test_checkpoint_and_losses.py): an offset that changes no gradient
    makes float32 accumulation of the epoch's losses visible."""
    import types

    import torch.nn.functional as functional


    calls: list[torch.Tensor] = []

    def offset_cross_entropy(*args, **kwargs):
        loss = functional.cross_entropy(*args, **kwargs) + LOSS_OFFSET
        calls.append(loss.detach())
        return loss

    monkeypatch.setattr(stacked, "F", types.SimpleNamespace(cross_entropy=offset_cross_entropy))
    base = TrainSpec("tiny_cnn", "none", batch_size=7, epochs=1, lr=3e-3, checkpoint="last")
    group = [base, dataclasses.replace(base, seed=2)]
    results = train_stacked(group, tiny_data())
    m = len(group)
    pairs = [(a.view(m, -1), b.view(m, -1)) for a, b in zip(calls[0::2], calls[1::2])]  # 9 batches, one short
    for i, result in enumerate(results):
        loss, majority = expected_epoch_losses([(a[i], b[i]) for a, b in pairs])
        assert result.history[0]["train_loss"] == pytest.approx(loss, rel=1e-15, abs=0)
        assert result.history[0]["train_loss_majority"] == pytest.approx(majority, rel=1e-15, abs=0)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_one_optimizer_over_stacked_parameters_is_one_optimizer_per_model(optimizer):
    """Given the same gradients, the group's optimizer moves model i's slice as model i's own optimizer does.
    The update is elementwise (no sum over elements), so only how a kernel vectorises may differ: a few
    roundings of float32 per step, bounded by 8 units of roundoff of the parameter and of the step's size."""
    spec = TrainSpec("tiny_cnn", "affine", optimizer=optimizer, lr=1e-2, weight_decay=1e-3)
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 4, 5, generator=g), torch.randn(3, 7, generator=g)]
    grads = [[torch.randn(p.shape, generator=g) for p in start] for _ in range(5)]
    together = [torch.nn.Parameter(p.clone()) for p in start]
    alone = [[torch.nn.Parameter(p[i].clone()) for p in start] for i in range(3)]
    optimizers = [_optimizer(spec, together)] + [_optimizer(spec, params) for params in alone]
    for step in grads:
        for p, grad in zip(together, step):
            p.grad = grad.clone()
        for i, params in enumerate(alone):
            for p, grad in zip(params, step):
                p.grad = grad[i].clone()
        for opt in optimizers:
            opt.step()
    u = 2.0 ** -24
    for k, p in enumerate(together):
        for i, params in enumerate(alone):
            moved = (params[k].detach() - start[k][i]).abs()
            bound = 8 * u * len(grads) * (start[k][i].abs() + moved)
            assert bool(((p.detach()[i] - params[k].detach()).abs() <= bound).all()), (optimizer, k, i)
    # and a wrong slice is far outside that bound
    assert not bool(((together[0].detach()[0] - alone[1][0].detach()).abs() <= 1e-3).all())
