"""Train one model under the thesis's controls and keep its best-validation-accuracy weights.

Controls (thesis Appendix B, and what we add to make them hold on any device):
- identical initial weights: the model is built under ``torch.manual_seed(init_seed)`` for every model;
- identical data order: :func:`auglens.train.order.training_order`, independent of augmentation and seed;
- augmented copy i is made from image i, with randomness from (starting state, epoch, i) only;
- other randomness (dropout, stochastic depth) is reseeded from (starting state, epoch) at each epoch, so
  a run resumed from an epoch snapshot continues exactly as an uninterrupted one;
- the epoch with the highest validation accuracy is kept (the earliest on ties), or the last epoch
  (``checkpoint = "last"``, the usual protocol when training on the full training set, without validation).

Each epoch's history records the mean training loss (the objective: lam-weighted cross-entropy of both
labels) and the mean cross-entropy against the label of the majority image of each sample (``lam >= 0.5``:
the first) — the distortion paper's MixDiversity and Diversity when read at the final epoch.

Augmentations run at the data set's native resolution on [0, 1] images, before resizing and
normalisation, which is cheaper and matches applying them to the stored images.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from auglens.augment import build_augmentation, sample_keys
from auglens.augment.random import mix64
from auglens.data.prepared import PreparedData, model_input
from auglens.metrics.performance import classification_report
from auglens.models import build_model
from auglens.train.order import training_order


@dataclass(frozen=True)
class TrainSpec:
    """Everything that determines one trained model (hashable; the study keys artifacts on it)."""

    architecture: str
    augmentation: str
    architecture_params: tuple[tuple[str, Any], ...] = ()
    augmentation_params: tuple[tuple[str, Any], ...] = ()
    seed: int = 1  # the starting state
    init_seed: int = 0
    input_size: int | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-5
    momentum: float = 0.9
    batch_size: int = 32
    eval_batch_size: int = 256
    epochs: int = 30
    sampling_seed: int = 1234
    reshuffle_each_epoch: bool = False
    precision: str = "fp32"  # "bf16": autocast the forward pass (changes numerics); "auto": bf16 on CUDA only
    channels_last: bool = False
    compile: bool = False
    augment_every_sample: bool = False  # True: every sample augmented each epoch (the usual recipe), no originals
    lr_milestones: tuple[int, ...] = ()  # epochs at which the learning rate is multiplied by lr_gamma
    lr_gamma: float = 0.1
    lr_schedule: str = "step"  # "step": lr_milestones / lr_gamma; "one_cycle": warm-up then linear decay, per batch
    checkpoint: str = "best"  # "best": highest validation accuracy; "last": the final epoch


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0


def _epoch_seed(seed: int, epoch: int) -> int:
    value = int(mix64(torch.tensor([seed * 7919 + epoch], dtype=torch.int64)).item())
    return value & 0x7FFF_FFFF_FFFF_FFFF


def initial_model(spec: TrainSpec, num_classes: int, in_channels: int) -> torch.nn.Module:
    """The shared starting point: same architecture, same ``init_seed`` -> the same weights for every model."""
    torch.manual_seed(spec.init_seed)
    return build_model(spec.architecture, num_classes=num_classes, in_channels=in_channels,
                       **dict(spec.architecture_params))


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


def _optimizer(spec: TrainSpec, params) -> torch.optim.Optimizer:
    # foreach: one multi-tensor update for all parameters instead of a loop over them (torch's default on
    # CUDA only). The same elementwise arithmetic, so the same bits (tested); on a CPU it saves about 4 % of a
    # small CNN's step.
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay, foreach=True)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay, foreach=True)
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, weight_decay=spec.weight_decay, momentum=spec.momentum,
                               foreach=True)
    raise ValueError(f"unknown optimizer {spec.optimizer!r}; valid: adam, adamw, sgd")


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


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                   input_size: int | None, batch_size: int, device: torch.device) -> torch.Tensor:
    """Logits of uint8 images in eval mode, in chunks; (N, C, H, W) uint8 -> (N, K) float32 on ``device``."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = model_input(images[start : start + batch_size].to(device), mean, std, input_size)
        out.append(model(x).float())
    model.train(was_training)
    return torch.cat(out)


def evaluate(model, images, labels, mean, std, input_size, batch_size, device, num_classes) -> dict[str, float]:
    logits = predict_logits(model, images, mean, std, input_size, batch_size, device)
    report = classification_report(logits.argmax(1).cpu(), labels.cpu(), num_classes)
    return {k: float(report[k]) for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro")}


#: Training sets up to this size (uint8 bytes) are moved to the GPU once, so no batch crosses PCIe.
DEVICE_RESIDENT_BYTES = 4 << 30


def mixed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, partner_labels: torch.Tensor,
                        lam: torch.Tensor) -> torch.Tensor:
    """Mean of lam * CE(labels) + (1 - lam) * CE(partner_labels): plain CE where lam = 1 (unmixed samples,
    CutMix with the receiver's label); (N, K), (N,), (N,), (N,) -> scalar."""
    loss_a, loss_b = cross_entropy_pair(logits, labels, partner_labels)
    return (lam * loss_a + (1 - lam) * loss_b).mean()


def cross_entropy_pair(logits: torch.Tensor, labels: torch.Tensor,
                       partner_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy on the first and on the second label; (N, K), (N,), (N,) -> (N,), (N,)."""
    return (F.cross_entropy(logits, labels, reduction="none"),
            F.cross_entropy(logits, partner_labels, reduction="none"))


def _batch(spec, data, train_images, train_labels, positions, epoch, augmentation, device):
    """Images (normalised), first labels, second labels and lambda for one batch of order positions."""
    n = len(data.train)
    source = torch.where(positions >= n, positions - n, positions)
    index = source.to(train_images.device)
    images = train_images[index].to(device).float().div_(255.0)
    labels = train_labels[index].to(device)
    partner = labels.clone()
    lam = torch.ones(len(source), device=device)
    is_copy = (positions >= n).to(device)
    if augmentation is not None and bool(is_copy.any()):
        keys = sample_keys(spec.seed, epoch, source[is_copy.cpu()]).to(device)
        out = augmentation(images[is_copy], labels[is_copy], keys)
        images[is_copy] = out.images.to(images.dtype)
        partner[is_copy] = out.partner_labels
        lam[is_copy] = out.lam.to(lam.dtype)
    x = model_input(images, data.mean, data.std, spec.input_size)
    if spec.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, labels, partner, lam


def train_model(spec: TrainSpec, data: PreparedData, device: torch.device | str = "cpu",
                progress: Callable[[int], None] | None = None,
                snapshot: dict[str, Any] | None = None,
                on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
                on_epoch_trained: Callable[[torch.nn.Module, dict[str, float]], None] | None = None) -> TrainResult:
    """Train one model; resume from ``snapshot`` (as given to ``on_epoch_end``) when provided.

    ``progress(k)`` is called after each batch with the number of images processed. ``on_epoch_end`` receives
    a resume snapshot after every epoch but the last (the result holds the rest). ``on_epoch_trained(model,
    record)`` is called after every epoch, the last included, before ``on_epoch_end`` and outside the timed
    region: ``record`` is the epoch's history row plus ``train_seconds``, the cumulative time of the training
    steps alone (validation excluded). It may evaluate ``model`` but must leave its weights alone.
    """
    device = torch.device(device)
    validate = check_checkpoint(spec, data)
    model = initial_model(spec, data.num_classes, data.in_channels).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(spec, model.parameters())
    forward = torch.compile(model) if spec.compile else model
    bf16 = spec.precision == "bf16" or (spec.precision == "auto" and device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    train_images, train_labels = data.train.images, data.train.labels
    if device.type == "cuda" and train_images.numel() <= DEVICE_RESIDENT_BYTES:
        train_images, train_labels = train_images.to(device), train_labels.to(device)
    augmentation = build_augmentation(spec.augmentation, run_seed=spec.seed, **dict(spec.augmentation_params))
    history: list[dict[str, float]] = []
    best_accuracy, best_epoch, best_state = -1.0, -1, None
    start_epoch, elapsed, train_elapsed = 0, 0.0, 0.0
    if snapshot is not None:
        model.load_state_dict(snapshot["model"])
        optimizer.load_state_dict(snapshot["optimizer"])
        history = list(snapshot["history"])
        best_accuracy, best_epoch = snapshot["best_accuracy"], snapshot["best_epoch"]
        best_state = snapshot["best_state"]
        start_epoch, elapsed = snapshot["epoch"] + 1, snapshot["elapsed"]
        train_elapsed = snapshot.get("train_elapsed", elapsed)

    for epoch in range(start_epoch, spec.epochs):
        started = time.perf_counter()
        torch.manual_seed(_epoch_seed(spec.seed, epoch))
        every = augmentation is not None and spec.augment_every_sample
        order = training_order(len(data.train), augmentation is not None and not every, spec.sampling_seed,
                               epoch, spec.reshuffle_each_epoch)
        if every:
            order = order + len(data.train)  # positions >= N are augmented copies: here, all of them
        model.train()
        total_loss, seen = torch.zeros((), dtype=torch.float64, device=device), 0
        majority_loss = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, len(order), spec.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(spec, epoch, start / len(order))
            positions = order[start : start + spec.batch_size]
            x, labels, partner, lam = _batch(spec, data, train_images, train_labels, positions, epoch,
                                             augmentation, device)
            with autocast:
                logits = forward(x).float()
            loss_a, loss_b = cross_entropy_pair(logits, labels, partner)
            loss = (lam * loss_a + (1 - lam) * loss_b).mean()  # as mixed_cross_entropy, keeping both terms
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach() * len(positions)  # stays on the device: no sync per batch
            majority_loss += torch.where(lam >= 0.5, loss_a, loss_b).detach().sum()
            seen += len(positions)
            if progress is not None:
                progress(len(positions))
        if on_epoch_trained is not None and device.type == "cuda":
            torch.cuda.synchronize(device)  # the clock must not stop while kernels are still queued
        train_elapsed += time.perf_counter() - started
        val = evaluate(model, data.validation.images, data.validation.labels, data.mean, data.std,
                       spec.input_size, spec.eval_batch_size, device, data.num_classes) if validate else {}
        elapsed += time.perf_counter() - started
        history.append({"epoch": epoch, "train_loss": float(total_loss) / max(seen, 1),
                        **{f"val_{k}": v for k, v in val.items()}, "elapsed_seconds": elapsed,
                        "train_loss_majority": float(majority_loss) / max(seen, 1)})
        if spec.checkpoint == "last":
            best_epoch = epoch  # the state is taken once, after the last epoch
        elif val["accuracy"] > best_accuracy:
            best_accuracy, best_epoch = val["accuracy"], epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if on_epoch_trained is not None:
            on_epoch_trained(model, {**history[-1], "train_seconds": train_elapsed})
        if on_epoch_end is not None and epoch < spec.epochs - 1:
            on_epoch_end({"model": copy.deepcopy(model.state_dict()), "optimizer": optimizer.state_dict(),
                          "history": history, "best_accuracy": best_accuracy, "best_epoch": best_epoch,
                          "best_state": best_state, "epoch": epoch, "elapsed": elapsed,
                          "train_elapsed": train_elapsed})
    if spec.checkpoint == "last":
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return TrainResult(best_state, best_epoch, history, elapsed)
