"""The epoch loop of the thesis's controlled training (Appendix B), for one model or a group in lockstep.

What the loop trains is a :class:`Trainee`: one model (:func:`auglens.train.loop.train_model`) or a group of
models that differ only in augmentation and starting state, stacked into one computation
(:func:`auglens.train.stacked.train_stacked`). The trainee runs the forward and backward passes; everything
else happens here, once for both:

- identical data order: :func:`auglens.train.order.training_order`, independent of augmentation and seed;
- augmented copy i is made from image i, with randomness from (starting state, epoch, i) only: each model
  of a group gets its own copies in the same positions. ``augmentation_copies = "fixed"`` drops the epoch
  (:func:`copy_keys`): each copy is drawn once, the first epoch's, and seen again in every epoch;
- other randomness (dropout, stochastic depth) is reseeded from (starting state, epoch) at each epoch, so a
  run resumed from an epoch snapshot continues exactly as an uninterrupted one;
- the learning rate is a pure function of (epoch, share of the epoch done), set before every batch;
- the epoch with the highest validation accuracy is kept (the earliest on ties), or the last epoch
  (``checkpoint = "last"``, the usual protocol when training on the full training set, without validation).

Each epoch's history row records the mean training loss (the objective: lam-weighted cross-entropy of both
labels) and the mean cross-entropy against the label of the majority image of each sample (``lam >= 0.5``:
the first) -- the distortion paper's MixDiversity and Diversity when read at the final epoch -- the
validation metrics and ``elapsed_seconds``, the cumulative time of training and validation.

An epoch snapshot, per model, holds ``model`` and ``optimizer`` (one model's state dicts), ``history``,
``best_accuracy``, ``best_epoch``, ``best_state``, ``epoch`` (the last one done), ``elapsed`` and
``train_elapsed`` (the cumulative time of the training steps alone): the same for a model trained alone and a
member of a group, so either resumes from the other's snapshots.

``standard_augmentation`` (the distortion paper's random crop and flip, :mod:`auglens.augment.standard`)
applies to every training image of the batch before the augmentation, so a mixing augmentation mixes the
cropped images, as the authors' trainer does; validation and test images are never augmented.

Augmentations run on [0, 1] images before normalisation: at the data set's native resolution before
resizing (``augmentation_resolution = "native"``, cheaper, and the same as augmenting the stored images), or
after resizing to the model's input size (``"model_input"``, :func:`augmentation_input`). The standard
augmentation runs at native resolution either way: its 4-pixel padding is the distortion paper's, on
32-pixel images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from auglens.augment import build_augmentation, sample_keys
from auglens.augment.random import mix64
from auglens.augment.standard import standard_augmentation
from auglens.data.prepared import PreparedData, model_input
from auglens.data.transforms import resize_keep_aspect
from auglens.metrics.performance import classification_report
from auglens.train.order import training_order
from auglens.train.spec import TrainSpec


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0


#: Training sets up to this size (uint8 bytes) are moved to the GPU once, so no batch crosses PCIe.
DEVICE_RESIDENT_BYTES = 4 << 30

#: One-cycle shape: (share of training, share of lr) knots; linear in between.
ONE_CYCLE_KNOTS = ((0.0, 0.1), (0.2, 1.0), (1.0, 0.0))


def learning_rate(spec: TrainSpec, epoch: int, progress: float = 0.0) -> float:
    """The learning rate at ``progress`` (share in [0, 1)) of ``epoch``; a pure function, so resumes match.

    ``step``: ``lr * gamma ** (milestones passed)``, constant within an epoch. ``one_cycle`` (Smith & Topin,
    "Super-convergence", 2017, in its linear form): from ``lr / 10`` up to ``lr`` over the first 20 % of the
    batches, then linearly down to 0 at the end, which lets a few epochs reach the accuracy of many.
    """
    if spec.lr_schedule == "one_cycle":
        t = (epoch + progress) / spec.epochs
        for (t0, f0), (t1, f1) in zip(ONE_CYCLE_KNOTS, ONE_CYCLE_KNOTS[1:]):
            if t <= t1:
                return spec.lr * (f0 + (f1 - f0) * (t - t0) / (t1 - t0))
        return 0.0
    return spec.lr * spec.lr_gamma ** sum(1 for m in spec.lr_milestones if epoch >= m)


def _epoch_seed(seed: int, epoch: int) -> int:
    value = int(mix64(torch.tensor([seed * 7919 + epoch], dtype=torch.int64)).item())
    return value & 0x7FFF_FFFF_FFFF_FFFF


def check_checkpoint(spec: TrainSpec, data: PreparedData) -> bool:
    """Whether there is a validation set to evaluate; raises before any training when ``spec.checkpoint``
    cannot be kept with the data given."""
    if spec.checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {spec.checkpoint!r}")
    validate = len(data.validation) > 0
    if spec.checkpoint == "best" and not validate:
        raise ValueError("checkpoint = 'best' needs a validation set, but it is empty; set a validation fraction "
                         "> 0 or keep the last epoch (checkpoint = 'last')")
    return validate


#: ``TrainSpec.augmentation_copies``: a new copy of each image every epoch, or one copy for all epochs.
AUGMENTATION_COPIES = ("per_epoch", "fixed")
#: ``TrainSpec.augmentation_resolution``: augment the stored images, or the images resized for the model.
AUGMENTATION_RESOLUTIONS = ("native", "model_input")
#: The epoch whose copies ``augmentation_copies = "fixed"`` keeps: a fixed run sees a per-epoch run's first copies.
FIXED_COPY_EPOCH = 0


def copy_keys(seed: int, epoch: int, images: torch.Tensor, copies: str) -> torch.Tensor:
    """The per-sample keys of the augmented copies of training images ``images`` (indices) in ``epoch``;
    (N,) int -> (N,) int64.

    ``"per_epoch"``: from (starting state, epoch, image), a new copy every epoch. ``"fixed"``: from (starting
    state, image) alone -- the keys of epoch :data:`FIXED_COPY_EPOCH` -- so every epoch draws the same
    parameters for image i, and the copy, a pure function of the key and the image, is the same (a mixing
    partner is another image of the batch, so it stays the same too while the order does: see
    docs/methodology.md).
    """
    if copies not in AUGMENTATION_COPIES:
        raise ValueError(f"augmentation_copies must be one of {', '.join(AUGMENTATION_COPIES)}, got {copies!r}")
    return sample_keys(seed, epoch if copies == "per_epoch" else FIXED_COPY_EPOCH, images)


def augmentation_input(images: torch.Tensor, resolution: str, input_size: int | None) -> torch.Tensor:
    """[0, 1] training images as the augmentation receives them: as stored (``"native"``) or resized to the
    model's input size as :func:`~auglens.data.prepared.model_input` resizes (``"model_input"``; unchanged
    when ``input_size`` is None); (N, C, H, W) -> (N, C, H, W) or (N, C, S, S).

    Resized first, the images pass through ``model_input``'s resize unchanged (it skips images already of
    the input size), so each image is resized exactly once either way.
    """
    if resolution not in AUGMENTATION_RESOLUTIONS:
        raise ValueError(f"augmentation_resolution must be one of {', '.join(AUGMENTATION_RESOLUTIONS)}, "
                         f"got {resolution!r}")
    if resolution == "native" or input_size is None:
        return images
    return resize_keep_aspect(images, input_size)


def gather_batch(data, train_images, train_labels, positions, device):
    """The batch's images ([0, 1] float) and labels gathered by order position (positions >= N are copies of
    image position - N), with the mixing defaults: (source, images, labels, partner labels, lambda, is_copy)."""
    n = len(data.train)
    source = torch.where(positions >= n, positions - n, positions)
    index = source.to(train_images.device)
    images = train_images[index].to(device).float().div_(255.0)
    labels = train_labels[index].to(device)
    partner = labels.clone()
    lam = torch.ones(len(source), device=device)
    is_copy = (positions >= n).to(device)
    return source, images, labels, partner, lam, is_copy


def augment_copies(spec, epoch, augmentation, source, images, labels, partner, lam, is_copy, device) -> None:
    """Replace the batch's copies (in place) by their augmented versions, with their partner labels and lambda."""
    keys = copy_keys(spec.seed, epoch, source[is_copy.cpu()], spec.augmentation_copies).to(device)
    out = augmentation(images[is_copy], labels[is_copy], keys)
    images[is_copy] = out.images.to(images.dtype)
    partner[is_copy] = out.partner_labels
    lam[is_copy] = out.lam.to(lam.dtype)


def batch_input(spec, data, images):
    """The model's input of the batch's [0, 1] images: resized, normalised, in the spec's memory format."""
    x = model_input(images, data.mean, data.std, spec.input_size)
    return x.contiguous(memory_format=torch.channels_last) if spec.channels_last else x


def _batch(spec, data, train_images, train_labels, positions, epoch, augmentation, device):
    """Images (normalised), first labels, second labels and lambda for one batch of order positions."""
    source, images, labels, partner, lam, is_copy = gather_batch(data, train_images, train_labels, positions, device)
    if spec.standard_augmentation != "none":
        # Every training image, originals and copies, baseline included, before any mixing: the order of the
        # distortion paper's trainer. Keyed by order position, so an original and its copy differ.
        images = standard_augmentation(spec.standard_augmentation, images,
                                       sample_keys(spec.seed, epoch, positions).to(device))
    images = augmentation_input(images, spec.augmentation_resolution, spec.input_size)
    if augmentation is not None and bool(is_copy.any()):
        augment_copies(spec, epoch, augmentation, source, images, labels, partner, lam, is_copy, device)
    return batch_input(spec, data, images), labels, partner, lam


#: One model's batch: normalised images, first labels, second labels and lambda; (N, C, H, W), (N,), (N,), (N,).
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class Trainee(Protocol):
    """``m`` models (one, or a stacked group) as :func:`run_epochs` trains them; model ``i`` is ``specs[i]``'s."""

    specs: Sequence[TrainSpec]  # equal but for augmentation, its parameters and the starting state
    device: torch.device
    optimizer: torch.optim.Optimizer  # the loop sets its learning rate before every batch

    def train(self) -> None:
        """Put the models in training mode (at the start of every epoch)."""

    def step(self, batches: Sequence[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step, model i on ``batches[i]``; its mean objective and its sum of majority-label
        cross-entropies, detached on the device: -> (m,), (m,)."""

    def validation_logits(self, data: PreparedData) -> torch.Tensor:
        """Every model's logits of the validation images in eval mode, the training mode restored after;
        -> (m, N, K) float32."""

    def weights(self, i: int) -> dict[str, torch.Tensor]:
        """A CPU copy of model i's state dict: a kept checkpoint."""

    def snapshot(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Copies of model i's state dict and of its one-model optimizer state dict, for a resume snapshot."""

    def resume(self, models: Sequence[dict[str, Any]], optimizers: Sequence[dict[str, Any]]) -> None:
        """Load every model's weights and optimizer state from the state dicts of :meth:`snapshot`."""

    def module(self, i: int) -> torch.nn.Module:
        """Model i as a module with its current weights, in training mode, for ``on_epoch_trained``."""


def _validation_metrics(predictions: torch.Tensor, data: PreparedData) -> dict[str, float]:
    report = classification_report(predictions, data.validation.labels.cpu(), data.num_classes)
    return {k: float(report[k]) for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro")}


def run_epochs(trainee: Trainee, data: PreparedData, progress: Callable[[int], None] | None = None,
               snapshots: Sequence[dict[str, Any] | None] | None = None,
               on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
               on_epoch_trained: Callable[[int, torch.nn.Module, dict[str, float]], None] | None = None,
               ) -> list[TrainResult]:
    """Train ``trainee`` for ``specs[0].epochs`` epochs, or the rest of them after ``snapshots``; one result per
    model.

    Args:
        progress: called after each batch with the number of images processed (all models together).
        snapshots: per model, the epoch snapshot to resume from (see the module docstring), or None. Models
            resume only together: every snapshot must be of the same epoch (or all None).
        on_epoch_end: ``on_epoch_end(i, snapshot)`` for every model after every epoch but the last (the
            results hold the rest).
        on_epoch_trained: ``on_epoch_trained(i, model, record)`` for every model after every epoch, the last
            included, before ``on_epoch_end`` and outside the timed region: ``record`` is the epoch's history
            row plus ``train_seconds``, the cumulative time of the training steps alone (validation excluded).
            It may evaluate ``model`` (:meth:`Trainee.module`) but must leave its weights alone.
    """
    specs = list(trainee.specs)
    spec, m, device = specs[0], len(specs), trainee.device
    validate = check_checkpoint(spec, data)
    snapshots = list(snapshots) if snapshots is not None else [None] * m
    if len(snapshots) != m:
        raise ValueError(f"one snapshot (or None) per model: got {len(snapshots)} for {m} models")
    epochs_done = {None if s is None else s["epoch"] for s in snapshots}
    if len(epochs_done) != 1:
        raise ValueError(f"models resumed together must be at the same epoch, got snapshots of epochs {epochs_done}")

    history: list[list[dict[str, float]]] = [[] for _ in specs]
    best_accuracy, best_epoch, best_state = [-1.0] * m, [-1] * m, [None] * m
    start_epoch, elapsed, train_elapsed = 0, 0.0, 0.0
    if snapshots[0] is not None:
        trainee.resume([s["model"] for s in snapshots], [s["optimizer"] for s in snapshots])
        for i, s in enumerate(snapshots):
            history[i], best_accuracy[i], best_epoch[i] = list(s["history"]), s["best_accuracy"], s["best_epoch"]
            best_state[i] = s["best_state"]
        start_epoch, elapsed = snapshots[0]["epoch"] + 1, snapshots[0]["elapsed"]
        # Snapshots taken before the training-only clock existed count all their time as training.
        train_elapsed = snapshots[0].get("train_elapsed", elapsed)

    train_images, train_labels = data.train.images, data.train.labels
    if device.type == "cuda" and train_images.numel() <= DEVICE_RESIDENT_BYTES:
        train_images, train_labels = train_images.to(device), train_labels.to(device)
    augmentations = [build_augmentation(s.augmentation, run_seed=s.seed, **dict(s.augmentation_params))
                     for s in specs]
    # A group shares its batch layout (auglens.train.stacked.group_key): all baselines or all augmented.
    augmented = augmentations[0] is not None
    every = augmented and spec.augment_every_sample

    for epoch in range(start_epoch, spec.epochs):
        started = time.perf_counter()
        # For random layers. A group, which has none, reseeds from its first model's starting state: why that
        # is enough is in auglens.train.stacked's docstring.
        torch.manual_seed(_epoch_seed(spec.seed, epoch))
        order = training_order(len(data.train), augmented and not every, spec.sampling_seed, epoch,
                               spec.reshuffle_each_epoch)
        if every:
            order = order + len(data.train)  # positions >= N are augmented copies: here, all of them
        trainee.train()
        total_loss, seen = torch.zeros(m, dtype=torch.float64, device=device), 0
        majority_loss = torch.zeros(m, dtype=torch.float64, device=device)
        for start in range(0, len(order), spec.batch_size):
            for group in trainee.optimizer.param_groups:
                group["lr"] = learning_rate(spec, epoch, start / len(order))
            positions = order[start : start + spec.batch_size]
            # Augmented copies are keyed by (starting state, epoch or not, image): each model gets its own.
            batches = [_batch(s, data, train_images, train_labels, positions, epoch, augmentation, device)
                       for s, augmentation in zip(specs, augmentations)]
            losses, majority = trainee.step(batches)
            total_loss += losses * len(positions)  # summed in float64 and on the device: no sync per batch
            majority_loss += majority
            seen += len(positions)
            if progress is not None:
                progress(len(positions) * m)
        if on_epoch_trained is not None and device.type == "cuda":
            torch.cuda.synchronize(device)  # the clock must not stop while kernels are still queued
        train_elapsed += time.perf_counter() - started
        predictions = trainee.validation_logits(data).argmax(2).cpu() if validate else None
        vals = [_validation_metrics(predictions[i], data) if validate else {} for i in range(m)]
        elapsed += time.perf_counter() - started
        for i, val in enumerate(vals):
            history[i].append({"epoch": epoch, "train_loss": float(total_loss[i]) / max(seen, 1),
                               **{f"val_{k}": v for k, v in val.items()}, "elapsed_seconds": elapsed,
                               "train_loss_majority": float(majority_loss[i]) / max(seen, 1)})
            if spec.checkpoint == "last":
                best_epoch[i] = epoch  # the state is taken once, after the last epoch
            elif val["accuracy"] > best_accuracy[i]:
                best_accuracy[i], best_epoch[i] = val["accuracy"], epoch
                best_state[i] = trainee.weights(i)
        if on_epoch_trained is not None:
            for i in range(m):
                on_epoch_trained(i, trainee.module(i), {**history[i][-1], "train_seconds": train_elapsed})
        if on_epoch_end is not None and epoch < spec.epochs - 1:
            for i in range(m):
                model_state, optimizer_state = trainee.snapshot(i)
                on_epoch_end(i, {"model": model_state, "optimizer": optimizer_state, "history": history[i],
                                 "best_accuracy": best_accuracy[i], "best_epoch": best_epoch[i],
                                 "best_state": best_state[i], "epoch": epoch, "elapsed": elapsed,
                                 "train_elapsed": train_elapsed})
    if spec.checkpoint == "last":
        best_state = [trainee.weights(i) for i in range(m)]
    return [TrainResult(best_state[i], best_epoch[i], history[i], elapsed) for i in range(m)]
