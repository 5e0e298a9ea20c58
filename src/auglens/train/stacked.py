"""Train several models of a study in lockstep, as one stacked computation.

Every model of a study starts from the same weights and sees the same data order (Appendix B), so the
models that also share their batch layout (all augmented, or all baselines) can be trained together: their
parameters are stacked (``torch.func.stack_module_state``) and one ``vmap``-ed ``functional_call`` runs the
forward and backward passes of all of them at once. Each model still gets its own augmented copies (its
augmentation, its starting state's randomness), its own optimizer state and its own best-validation
checkpoint, and the result equals training it alone to float rounding: the loss is the sum of the models'
losses, so each model's gradient is its own, and Adam/SGD act elementwise, so one optimizer over stacked
tensors is one optimizer per model.

Snapshots are per model and in :func:`auglens.train.loop.train_model`'s format, so a group interrupted
mid-training resumes as a group or model by model, and vice versa.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from auglens.augment import build_augmentation
from auglens.augment.base import BASELINE
from auglens.data.prepared import PreparedData, model_input
from auglens.metrics.performance import classification_report
from auglens.train.loop import (
    DEVICE_RESIDENT_BYTES,
    TrainResult,
    TrainSpec,
    _batch,
    _optimizer,
    check_checkpoint,
    initial_model,
    learning_rate,
)
from auglens.train.order import training_order

__all__ = ["AUTO_MAX_MODELS", "AUTO_MAX_PARAMETERS", "auto_models_at_once", "group_key", "stacking_obstacle",
           "train_stacked"]

#: TrainSpec fields that may differ within a group; everything else must be equal.
_PER_MODEL_FIELDS = ("augmentation", "augmentation_params", "seed")


def group_key(spec: TrainSpec) -> tuple:
    """Models with equal keys can be trained together: same everything but augmentation and starting state,
    and the same batch layout (baseline: originals only; augmented: originals plus copies)."""
    shared = {k: v for k, v in vars(spec).items() if k not in _PER_MODEL_FIELDS}
    layout = "all" if spec.augment_every_sample and spec.augmentation != BASELINE else (
        "originals" if spec.augmentation == BASELINE else "originals+copies")
    return (layout, tuple(sorted(shared.items())))


def stacking_obstacle(spec: TrainSpec, model: torch.nn.Module) -> str | None:
    """Why models of ``spec``'s kind cannot be trained in lockstep, or None when they can."""
    if spec.compile or spec.precision == "bf16":
        return "stacked training runs in fp32 without torch.compile"
    stochastic = sorted({type(m).__name__ for m in model.modules()
                         if isinstance(m, torch.nn.modules.dropout._DropoutNd) or "StochasticDepth" in type(m).__name__})
    if stochastic:
        return (f"{spec.architecture} has random layers ({', '.join(stochastic)}), whose draws under vmap would "
                "differ from training one model at a time")
    return None


def _check_group(specs: Sequence[TrainSpec], model: torch.nn.Module) -> None:
    keys = {group_key(spec) for spec in specs}
    if len(keys) != 1:
        raise ValueError("models trained together must differ only in augmentation and starting state, and be "
                         f"all baselines or all augmented; got {len(keys)} different settings")
    obstacle = stacking_obstacle(specs[0], model)
    if obstacle:
        raise ValueError(f"{obstacle}; set training.models_at_once = 1")


#: ``models_at_once = "auto"`` on CUDA: at most this many models per group, of at most AUTO_MAX_PARAMETERS each.
AUTO_MAX_MODELS = 8
AUTO_MAX_PARAMETERS = 5_000_000


def auto_models_at_once(spec: TrainSpec, device_type: str, num_classes: int, in_channels: int) -> int:
    """What ``training.models_at_once = "auto"`` means for models of ``spec``'s kind on ``device_type``.

    CPUs: 1. Stacking turns each convolution into a grouped one, which CPU kernels run slower than the
    separate convolutions (``bench/stacked_training.py``: 0.82x on 2 cores). CUDA: small models leave most
    of the GPU idle, so up to :data:`AUTO_MAX_MODELS` of at most :data:`AUTO_MAX_PARAMETERS` parameters run
    together; larger ones, mixed precision, compile and random layers run one at a time. Under ``precision =
    "auto"`` CUDA means bf16, so stacking is off there too.
    """
    if device_type != "cuda":
        return 1
    if spec.precision == "auto":  # bf16 on CUDA
        return 1
    model = initial_model(spec, num_classes, in_channels)
    if stacking_obstacle(spec, model) or sum(p.numel() for p in model.parameters()) > AUTO_MAX_PARAMETERS:
        return 1
    return AUTO_MAX_MODELS


def _model_state(params: dict, buffers: dict, i: int) -> dict[str, torch.Tensor]:
    return {name: value[i].detach().clone() for name, value in {**params, **buffers}.items()}


def _optimizer_state(optimizer: torch.optim.Optimizer, i: int) -> dict[str, Any]:
    """Model ``i``'s slice of the stacked optimizer, as a one-model optimizer's ``state_dict``."""
    full = optimizer.state_dict()
    state = {index: {k: v.clone() if k == "step" else v[i].clone() for k, v in value.items()}
             for index, value in full["state"].items()}
    return {"state": state, "param_groups": full["param_groups"]}


def _stack_optimizer_states(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    stacked = {}
    for index, value in states[0]["state"].items():
        stacked[index] = {k: (torch.stack([s["state"][index][k] for s in states]) if k != "step" else v.clone())
                          for k, v in value.items()}
    return {"state": stacked, "param_groups": states[0]["param_groups"]}


def train_stacked(specs: Sequence[TrainSpec], data: PreparedData, device: torch.device | str = "cpu",
                  progress: Callable[[int], None] | None = None,
                  snapshots: Sequence[dict[str, Any] | None] | None = None,
                  on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None) -> list[TrainResult]:
    """Train ``specs`` together; one :class:`TrainResult` per spec, equal to ``train_model`` on each.

    Args:
        specs: models differing only in augmentation and starting state (see :func:`group_key`).
        data, device: as in ``train_model``.
        progress: called after each batch with the number of images processed (all models together).
        snapshots: per model, ``train_model``'s epoch snapshot to resume from, or None. Models resume only
            together: every snapshot must be of the same epoch (or all None).
        on_epoch_end: called as ``on_epoch_end(i, snapshot)`` for every model ``i`` after each epoch but the
            last, with ``train_model``'s snapshot format.
    """
    device = torch.device(device)
    specs = list(specs)
    m = len(specs)
    models = [initial_model(spec, data.num_classes, data.in_channels) for spec in specs]
    _check_group(specs, models[0])
    spec0 = specs[0]
    validate = check_checkpoint(spec0, data)
    snapshots = list(snapshots) if snapshots is not None else [None] * m
    epochs_done = {None if s is None else s["epoch"] for s in snapshots}
    if len(epochs_done) != 1:
        raise ValueError(f"models resumed together must be at the same epoch, got snapshots of epochs {epochs_done}")
    for model, snapshot in zip(models, snapshots):
        if snapshot is not None:
            model.load_state_dict(snapshot["model"])
    params, buffers = stack_module_state([model.to(device) for model in models])
    skeleton = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        return functional_call(skeleton, (p, b), (x,))

    optimizer = _optimizer(spec0, list(params.values()))
    history: list[list[dict[str, float]]] = [[] for _ in specs]
    best_accuracy, best_epoch, best_state = [-1.0] * m, [-1] * m, [None] * m
    start_epoch, elapsed = 0, 0.0
    if snapshots[0] is not None:
        optimizer.load_state_dict(_stack_optimizer_states([s["optimizer"] for s in snapshots]))
        for i, s in enumerate(snapshots):
            history[i], best_accuracy[i], best_epoch[i] = list(s["history"]), s["best_accuracy"], s["best_epoch"]
            best_state[i] = s["best_state"]
        start_epoch, elapsed = snapshots[0]["epoch"] + 1, snapshots[0]["elapsed"]

    train_images, train_labels = data.train.images, data.train.labels
    if device.type == "cuda" and train_images.numel() <= DEVICE_RESIDENT_BYTES:
        train_images, train_labels = train_images.to(device), train_labels.to(device)
    augmentations = [build_augmentation(spec.augmentation, run_seed=spec.seed, **dict(spec.augmentation_params))
                     for spec in specs]
    augmented = augmentations[0] is not None
    every = augmented and spec0.augment_every_sample
    train_forward = vmap(forward)
    eval_forward = vmap(forward, in_dims=(0, 0, None))

    for epoch in range(start_epoch, spec0.epochs):
        started = time.perf_counter()
        order = training_order(len(data.train), augmented and not every, spec0.sampling_seed, epoch,
                               spec0.reshuffle_each_epoch)
        if every:
            order = order + len(data.train)
        skeleton.train()
        total_loss, seen = torch.zeros(m, dtype=torch.float64, device=device), 0
        majority_loss = torch.zeros(m, dtype=torch.float64, device=device)
        for start in range(0, len(order), spec0.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(spec0, epoch, start / len(order))
            positions = order[start : start + spec0.batch_size]
            batches = []
            for spec, augmentation in zip(specs, augmentations):
                # Augmented copies are keyed by (starting state, epoch, image): each model gets its own.
                batches.append(_batch(spec, data, train_images, train_labels, positions, epoch, augmentation, device))
            x, labels, partner, lam = (torch.stack(parts) for parts in zip(*batches))
            logits = train_forward(params, buffers, x).float()
            loss_a = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(m, -1)
            loss_b = F.cross_entropy(logits.flatten(0, 1), partner.flatten(), reduction="none").view(m, -1)
            losses = (lam * loss_a + (1 - lam) * loss_b).mean(dim=1)  # (m,): each model's own loss
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            total_loss += losses.detach() * len(positions)
            majority_loss += torch.where(lam >= 0.5, loss_a, loss_b).detach().sum(dim=1)
            seen += len(positions)
            if progress is not None:
                progress(len(positions) * m)
        skeleton.eval()
        val_logits = []
        with torch.no_grad():
            for s in range(0, len(data.validation), spec0.eval_batch_size):
                x = model_input(data.validation.images[s : s + spec0.eval_batch_size].to(device), data.mean,
                                data.std, spec0.input_size)
                val_logits.append(eval_forward(params, buffers, x).float())
        elapsed += time.perf_counter() - started
        predictions = torch.cat(val_logits, dim=1).argmax(2).cpu() if validate else None
        for i in range(m):
            val = {}
            if validate:
                report = classification_report(predictions[i],
                                               data.validation.labels.cpu(), data.num_classes)
                val = {k: float(report[k]) for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro")}
            history[i].append({"epoch": epoch, "train_loss": float(total_loss[i]) / max(seen, 1),
                               **{f"val_{k}": v for k, v in val.items()}, "elapsed_seconds": elapsed,
                               "train_loss_majority": float(majority_loss[i]) / max(seen, 1)})
            if spec0.checkpoint == "last":
                best_epoch[i] = epoch  # the state is taken once, after the last epoch
            elif val["accuracy"] > best_accuracy[i]:
                best_accuracy[i], best_epoch[i] = val["accuracy"], epoch
                best_state[i] = {k: v.cpu() for k, v in _model_state(params, buffers, i).items()}
        if on_epoch_end is not None and epoch < spec0.epochs - 1:
            for i in range(m):
                on_epoch_end(i, {"model": _model_state(params, buffers, i),
                                 "optimizer": _optimizer_state(optimizer, i), "history": history[i],
                                 "best_accuracy": best_accuracy[i], "best_epoch": best_epoch[i],
                                 "best_state": best_state[i], "epoch": epoch, "elapsed": elapsed})
    if spec0.checkpoint == "last":
        best_state = [{k: v.cpu() for k, v in _model_state(params, buffers, i).items()} for i in range(m)]
    return [TrainResult(best_state[i], best_epoch[i], history[i], elapsed) for i in range(m)]
