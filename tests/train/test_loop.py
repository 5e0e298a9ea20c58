"""The training loop: what the model is trained on, which epoch is kept, and resuming from a snapshot."""

from __future__ import annotations

import copy

import pytest
import torch

from auglens.augment import build_augmentation, sample_keys
from auglens.data.prepared import DataSpec, model_input, prepare_data
from auglens.models import build_model
from auglens.train import TrainSpec, train_model, training_order
from tests.float_order import assert_within_float_order, record_steps, reduction_terms


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


@pytest.mark.parametrize(("every", "reshuffle"), [(False, False), (True, True)])
def test_augmented_copies_are_made_with_their_own_per_sample_keys(data, every, reshuffle):
    """Appendix B: copy i of epoch e is ``augmentation(image_i, key(seed, e, i))``, whatever the batch.

    ``every``: every position is an augmented copy (no originals); ``reshuffle``: a new order each epoch.
    """
    params = {"degrees": 40.0, "translate": 0.2}
    spec = TrainSpec("tiny_cnn", "affine", augmentation_params=tuple(params.items()), epochs=2, batch_size=24,
                     seed=3, input_size=None, augment_every_sample=every, reshuffle_each_epoch=reshuffle)
    model_type = type(build_model("tiny_cnn", num_classes=data.num_classes, in_channels=data.in_channels))
    seen = _record_training_inputs(model_type, lambda: train_model(spec, data))
    n = len(data.train)
    per_epoch = torch.cat(seen).split(n if every else 2 * n)
    assert len(per_epoch) == spec.epochs

    augmentation = build_augmentation("affine", **params)
    images = data.train.images.float() / 255.0
    copies_per_epoch = []
    for epoch, got in enumerate(per_epoch):
        order = training_order(n, not every, spec.sampling_seed, epoch, reshuffle)
        order = order + n if every else order
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
        copies_per_epoch.append(copies[source[is_copy].argsort()])
    assert not torch.allclose(copies_per_epoch[0], copies_per_epoch[1], atol=1e-3)


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


def test_the_kept_weights_are_those_of_the_first_epoch_with_the_best_validation_accuracy(peaked):
    result, snapshots = peaked
    accuracy = [row["val_accuracy"] for row in result.history]
    best = max(accuracy)
    assert accuracy[-1] < best, f"the recipe should peak before the last epoch, got {accuracy}"
    assert accuracy.count(best) >= 2, f"the recipe should tie for the best epoch, got {accuracy}"
    assert result.best_epoch == accuracy.index(best)
    assert [row["epoch"] for row in result.history] == list(range(PEAKED.epochs))
    assert len(snapshots) == PEAKED.epochs - 1  # none after the last epoch: the run is complete
    elapsed = [row["elapsed_seconds"] for row in result.history]
    assert 0 < elapsed[0] and all(a < b for a, b in zip(elapsed, elapsed[1:]))  # cumulative
    assert result.train_seconds == elapsed[-1]
    kept = snapshots[result.best_epoch]["model"]
    for key, value in result.state_dict.items():
        assert torch.equal(value, kept[key].cpu()), key


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


OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=3e-3, weight_decay=0.05),
    "adamw": lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=0.05),
    "sgd": lambda p: torch.optim.SGD(p, lr=3e-2, weight_decay=0.05, momentum=0.5),
}


@pytest.mark.parametrize(("augmentation", "optimizer"), [("none", "adam"), ("none", "adamw"), ("none", "sgd"),
                                                         ("cutmix", "adam")])
def test_one_epoch_matches_a_hand_written_training_loop(data, augmentation, optimizer):
    """An epoch is plain mini-batch training in the fixed order with the configured optimizer, on the loss
    ``mean(lam * CE(label) + (1 - lam) * CE(partner label))`` (plain CE for unmixed samples)."""
    size = 20 if optimizer == "sgd" else None  # the model input is resized for training and validation
    # Area-mixed labels, so the lambda weighting is exercised (the thesis's receiver label has lam = 1).
    params = (("label", "mixed"),) if augmentation == "cutmix" else ()
    spec = TrainSpec("tiny_cnn", augmentation, augmentation_params=params, epochs=1, batch_size=16,
                     input_size=size, optimizer=optimizer, lr=3e-2 if optimizer == "sgd" else 3e-3,
                     weight_decay=0.05, momentum=0.5, init_seed=5)
    progress = []
    result = train_model(spec, data, progress=progress.append)

    torch.manual_seed(spec.init_seed)
    model = build_model("tiny_cnn", num_classes=data.num_classes, in_channels=data.in_channels)
    opt = OPTIMIZERS[optimizer](model.parameters())
    aug = build_augmentation(augmentation, **dict(params))
    model.train()
    n = len(data.train)
    order = training_order(n, aug is not None, spec.sampling_seed, 0)
    total = 0.0
    for batch in order.split(spec.batch_size):
        source, is_copy = batch % n, batch >= n
        images, labels = data.train.images[source].float() / 255, data.train.labels[source]
        partner, lam = labels.clone(), torch.ones(len(batch))
        if aug is not None and is_copy.any():
            out = aug(images[is_copy], labels[is_copy], sample_keys(spec.seed, 0, source[is_copy]))
            images[is_copy], partner[is_copy], lam[is_copy] = out.images, out.partner_labels, out.lam.float()
        logits = model(model_input(images, data.mean, data.std, size))
        ce = torch.nn.functional.cross_entropy
        loss = (lam * ce(logits, labels, reduction="none") + (1 - lam) * ce(logits, partner, reduction="none")).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(batch)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(result.state_dict[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert result.history[0]["train_loss"] == pytest.approx(total / len(order), rel=1e-6)
    assert progress == [len(batch) for batch in order.split(spec.batch_size)]
    from auglens.train import evaluate

    val = evaluate(model, data.validation.images, data.validation.labels, data.mean, data.std, size, 64, "cpu",
                   data.num_classes)
    assert result.history[0]["val_accuracy"] == val["accuracy"]
    if aug is not None:
        assert lam.min() < 1  # some samples of the last batch were mixed, so the lambda weighting was exercised


def test_architecture_parameters_reach_the_model(data):
    spec = TrainSpec("small_cnn", "none", architecture_params=(("width", 4),), epochs=1, batch_size=64,
                     input_size=None)
    result = train_model(spec, data)
    assert result.state_dict["features.block1.0.weight"].shape[0] == 4


def test_evaluation_resizes_to_the_model_input_size(data):
    from auglens.metrics.performance import classification_report
    from auglens.train import evaluate

    trained = train_model(TrainSpec("tiny_cnn", "none", epochs=1, batch_size=16, input_size=None, lr=1e-2), data)
    model = build_model("tiny_cnn", num_classes=data.num_classes, in_channels=data.in_channels).eval()
    model.load_state_dict(trained.state_dict)
    images, labels = data.validation.images, data.validation.labels
    got = evaluate(model, images, labels, data.mean, data.std, 5, 7, "cpu", data.num_classes)
    with torch.no_grad():
        preds = model(model_input(images, data.mean, data.std, 5)).argmax(1)
    expected = classification_report(preds, labels, data.num_classes)
    assert got == {k: float(expected[k]) for k in got}
    native = evaluate(model, images, labels, data.mean, data.std, None, 7, "cpu", data.num_classes)
    assert native != got  # the size matters for this model, so the check above can tell the two apart


def test_each_epoch_and_starting_state_reseeds_other_randomness(data):
    """Dropout-like randomness: a fresh, reproducible stream per (starting state, epoch)."""
    model_type = type(build_model("tiny_cnn", num_classes=data.num_classes, in_channels=data.in_channels))
    draws: dict[tuple[int, int], list[float]] = {}

    def run(seed):
        spec = TrainSpec("tiny_cnn", "none", epochs=2, batch_size=len(data.train), input_size=None, seed=seed)
        calls = []

        def hook(module, args):
            if type(module) is model_type and module.training:
                calls.append(float(torch.rand(())))

        handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        try:
            train_model(spec, data)
        finally:
            handle.remove()
        return calls

    for seed in (1, 2, 4000):
        draws[seed] = run(seed)
        assert len(draws[seed]) == 2  # one batch per epoch
    assert run(2) == draws[2]
    values = [v for calls in draws.values() for v in calls]
    assert len(set(values)) == len(values), draws


def test_precision_and_memory_format_options(data):
    """``auto`` is fp32 on the CPU; ``bf16`` autocasts the forward pass; channels-last changes the float order
    of the convolutions only (plain SGD, so tests/float_order.py bounds the drift)."""
    def train(**options):
        spec = TrainSpec("tiny_cnn", "none", epochs=1, batch_size=32, input_size=None, optimizer="sgd",
                         momentum=0.0, lr=1e-2, **options)
        return train_model(spec, data).state_dict

    with record_steps() as log:
        fp32 = train(precision="fp32")
    auto, bf16, channels_last = train(precision="auto"), train(precision="bf16"), train(channels_last=True)
    for key in fp32:
        assert torch.equal(fp32[key], auto[key]), key
    side = data.train.images.shape[-1]
    terms = reduction_terms(build_model("tiny_cnn", num_classes=data.num_classes, in_channels=data.in_channels),
                            32, side)
    assert_within_float_order(channels_last, fp32, log, terms)
    assert not all(torch.equal(fp32[key], bf16[key]) for key in fp32)


def test_the_epoch_clocks_count_training_and_validation_cumulatively_across_a_resume(data, monkeypatch):
    """``elapsed_seconds`` (training and validation) and ``train_seconds`` (training steps alone) add up each
    epoch's own clock readings, and a resumed run goes on from the snapshot's totals.

    A fake clock advancing 10 s per reading makes the expected values exact: each epoch reads it at its start,
    after its training steps and after validation, so it adds 10 s of training and 20 s in all.
    """
    import types

    from auglens.train import epochs

    ticks = iter(range(0, 10_000, 10))
    monkeypatch.setattr(epochs, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    spec = TrainSpec("tiny_cnn", "none", epochs=3, batch_size=32, seed=1, input_size=None)
    trained, snapshots = [], []
    full = train_model(spec, data, on_epoch_end=lambda s: snapshots.append(copy.deepcopy(s)),
                       on_epoch_trained=lambda model, record: trained.append(record["train_seconds"]))
    assert [row["elapsed_seconds"] for row in full.history] == [20.0, 40.0, 60.0]
    assert trained == [10.0, 20.0, 30.0] and full.train_seconds == 60.0

    trained.clear()
    resumed = train_model(spec, data, snapshot=snapshots[0],
                          on_epoch_trained=lambda model, record: trained.append(record["train_seconds"]))
    assert [row["elapsed_seconds"] for row in resumed.history] == [20.0, 40.0, 60.0]
    assert trained == [20.0, 30.0] and resumed.train_seconds == 60.0


def test_random_masks_are_drawn_by_each_training_run_and_chosen_per_batch(data, monkeypatch):
    """The distortion paper, Section 3: "at the beginning of the training process three masks are randomly
    sampled from Fourier space. For each batch, one of the three is chosen uniformly at random." Two runs
    (starting states) of the same configuration train with different mask banks, each batch with one mask."""
    from auglens.augment.mixed import RandomMasks

    banks: dict[int, set] = {}
    masks_per_batch: list[int] = []
    mix = RandomMasks.mix
    run = {}

    def spy(self, images, partners, lam, keys):
        mixed, kept = mix(self, images, partners, lam, keys)
        bank = self.masks(*images.shape[-2:])
        banks.setdefault(run["seed"], set()).add(tuple(bank.flatten().tolist()))
        # which bank masks the batch used: the own-pixel share of each sample identifies its mask
        masks_per_batch.append(len(set(kept.tolist())))
        return mixed, kept

    monkeypatch.setattr(RandomMasks, "mix", spy)
    for seed in (3, 4):
        run["seed"] = seed
        spec = TrainSpec("tiny_cnn", "random_masks", epochs=1, batch_size=24, seed=seed, input_size=None,
                         augment_every_sample=True, checkpoint="last")
        train_model(spec, data)
    assert set(banks) == {3, 4} and all(len(b) == 1 for b in banks.values())
    assert banks[3] != banks[4]  # each run draws its own masks
    assert masks_per_batch and set(masks_per_batch) == {1}  # one mask per batch
