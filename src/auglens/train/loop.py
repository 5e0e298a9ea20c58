"""Train one model under the thesis's controls and keep its best-validation-accuracy weights.

This module holds what defines a trained model (:class:`TrainSpec`, the shared initial weights, the
optimizer, the loss) and the one-model :class:`~auglens.train.epochs.Trainee` that
:func:`auglens.train.epochs.run_epochs` trains: the controls themselves (data order, augmentation keys,
reseeding, learning rate, checkpoint choice, snapshots) live in that epoch loop, shared with the stacked
trainer of :mod:`auglens.train.stacked`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from auglens.data.prepared import PreparedData, model_input, normalised_with
from auglens.metrics.performance import classification_report
from auglens.models import build_model
from auglens.train.spec import TrainSpec
from auglens.train.epochs import (
    DEVICE_RESIDENT_BYTES,
    Batch,
    TrainResult,
    check_checkpoint,
    learning_rate,
    run_epochs,
)

# Defined in the epoch loop, imported from here too.
__all__ = ["DEVICE_RESIDENT_BYTES", "TrainResult", "TrainSpec", "check_checkpoint",
           "cross_entropy_pair", "evaluate", "initial_model", "learning_rate", "mixed_cross_entropy",
           "predict_logits", "train_model"]


def initial_model(spec: TrainSpec, num_classes: int, in_channels: int, pretrained: bool = True) -> torch.nn.Module:
    """The shared starting point: same architecture, same ``init_seed`` -> the same weights for every model.

    With ``spec.pretrained_sha256`` every weight but the classifier head is then copied from the pretrained
    file (:func:`auglens.models.pretrained.start_from_pretrained`), whose SHA-256 must still be the planned
    one; the head keeps the draw of ``init_seed``. ``pretrained=False``: the architecture alone, for weights
    loaded next (a trained checkpoint) or for counting its parameters.
    """
    torch.manual_seed(spec.init_seed)
    model = build_model(spec.architecture, num_classes=num_classes, in_channels=in_channels,
                        **dict(spec.architecture_params))
    if pretrained and spec.pretrained_sha256 is not None:
        from auglens.errors import UserError
        from auglens.models.pretrained import pretrained_sha256, read_pretrained_state, start_from_pretrained

        path = spec.pretrained_path
        if path is None or not Path(path).is_file():
            raise UserError(f"model.pretrained: weights file {path} not found (this training starts from it; it "
                            "must be readable wherever the training runs)")
        if pretrained_sha256(path) != spec.pretrained_sha256:
            raise UserError(f"model.pretrained: {path} changed since the study was planned (its SHA-256 differs); "
                            "rerun the command to start from the file as it is now")
        start_from_pretrained(model, read_pretrained_state(path))
    return model


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


class _OneModel:
    """:func:`train_model`'s trainee: one module, optionally compiled or in bf16, and its optimizer."""

    def __init__(self, spec: TrainSpec, data: PreparedData, device: torch.device):
        self.specs, self.device = (spec,), device
        model = initial_model(spec, data.num_classes, data.in_channels).to(device)
        if spec.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = _optimizer(spec, model.parameters())
        self.forward = torch.compile(model) if spec.compile else model
        bf16 = spec.precision == "bf16" or (spec.precision == "auto" and device.type == "cuda")
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def train(self) -> None:
        self.model.train()

    def step(self, batches: Sequence[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
        ((x, labels, partner, lam),) = batches
        with self.autocast:
            logits = self.forward(x).float()
        loss_a, loss_b = cross_entropy_pair(logits, labels, partner)
        loss = (lam * loss_a + (1 - lam) * loss_b).mean()  # as mixed_cross_entropy, keeping both terms
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        majority = torch.where(lam >= 0.5, loss_a, loss_b).detach().sum()
        return loss.detach().reshape(1), majority.reshape(1)

    def validation_logits(self, data: PreparedData) -> torch.Tensor:
        spec = self.specs[0]
        return predict_logits(self.model, data.validation.images, data.mean, data.std, spec.input_size,
                              spec.eval_batch_size, self.device)[None]

    def weights(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def snapshot(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return copy.deepcopy(self.model.state_dict()), self.optimizer.state_dict()

    def resume(self, models: Sequence[dict[str, Any]], optimizers: Sequence[dict[str, Any]]) -> None:
        ((model,), (optimizer,)) = models, optimizers
        self.model.load_state_dict(model)
        self.optimizer.load_state_dict(optimizer)

    def module(self, i: int) -> torch.nn.Module:
        return self.model


def train_model(spec: TrainSpec, data: PreparedData, device: torch.device | str = "cpu",
                progress: Callable[[int], None] | None = None,
                snapshot: dict[str, Any] | None = None,
                on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
                on_epoch_trained: Callable[[torch.nn.Module, dict[str, float]], None] | None = None) -> TrainResult:
    """Train one model; resume from ``snapshot`` (as given to ``on_epoch_end``) when provided.

    ``progress(k)`` is called after each batch with the number of images processed. ``on_epoch_end`` receives
    a resume snapshot (:mod:`auglens.train.epochs` lists its fields) after every epoch but the last (the result
    holds the rest). ``on_epoch_trained(model, record)`` is called after every epoch, the last included, before
    ``on_epoch_end`` and outside the timed region: ``record`` is the epoch's history row plus
    ``train_seconds``, the cumulative time of the training steps alone (validation excluded). It may evaluate
    ``model`` (the one being trained) but must leave its weights alone. The model is fed ``data`` normalised
    as ``spec.normalisation`` says (:func:`~auglens.data.prepared.normalised_with`).
    """
    data = normalised_with(data, spec.normalisation)
    trainee = _OneModel(spec, data, torch.device(device))
    end = None if on_epoch_end is None else (lambda i, state: on_epoch_end(state))
    trained = None if on_epoch_trained is None else (lambda i, model, record: on_epoch_trained(model, record))
    (result,) = run_epochs(trainee, data, progress, None if snapshot is None else [snapshot], end, trained)
    return result
