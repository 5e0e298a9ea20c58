"""Train several models of a study in lockstep, as one stacked computation.

Every model of a study starts from the same weights and sees the same data order (Appendix B), so the
models that also share their batch layout (all augmented, or all baselines) can be trained together: their
parameters are stacked (``torch.func.stack_module_state``) and one ``vmap``-ed ``functional_call`` runs the
forward and backward passes of all of them at once. Each model still gets its own augmented copies (its
augmentation, its starting state's randomness), its own optimizer state and its own best-validation
checkpoint, and the result equals training it alone to float rounding: the loss is the sum of the models'
losses, so each model's gradient is its own, and Adam/SGD act elementwise, so one optimizer over stacked
tensors is one optimizer per model.

The group is a :class:`~auglens.train.epochs.Trainee` of :func:`auglens.train.epochs.run_epochs`, the epoch
loop that also trains one model: data order, learning rate, validation, checkpoints, snapshots and clocks
are that loop's. Snapshots are per model and in ``train_model``'s format, so a group interrupted
mid-training resumes as a group or model by model, and vice versa.

Randomness outside the augmentations: one model reseeds torch's global generator from (starting state, epoch)
at each epoch for its random layers (dropout, stochastic depth). One generator cannot follow the starting
states of a whole group, and need not: stacking refuses random layers (:func:`stacking_obstacle`; under
``vmap`` their draws would differ from one model's anyway), so a group's training draws nothing from it. The
loop reseeds it all the same, from the first model's starting state, so that what an ``on_epoch_trained``
hook draws never reaches the next epoch and a resumed group continues as an uninterrupted one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from auglens.augment.base import BASELINE
from auglens.data.prepared import PreparedData, model_input, normalised_with
from auglens.train.epochs import Batch, TrainResult, run_epochs
from auglens.train.loop import TrainSpec, _optimizer, initial_model

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
    model = initial_model(spec, num_classes, in_channels, pretrained=False)
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


class _Stacked:
    """:func:`train_stacked`'s trainee: the group's parameters and buffers stacked along a leading model
    dimension, one ``vmap``-ed forward pass over a weightless copy of the architecture, one optimizer."""

    def __init__(self, specs: Sequence[TrainSpec], data: PreparedData, device: torch.device):
        self.specs, self.device = list(specs), device
        models = [initial_model(spec, data.num_classes, data.in_channels) for spec in specs]
        _check_group(self.specs, models[0])
        # The models keep their own tensors (stacking copies them): module(i) lends them out to hooks.
        self.models = [model.to(device) for model in models]
        self.params, self.buffers = stack_module_state(self.models)
        self.skeleton = copy.deepcopy(models[0]).to("meta")
        self.optimizer = _optimizer(self.specs[0], list(self.params.values()))
        self._train_forward = vmap(self._forward)
        self._eval_forward = vmap(self._forward, in_dims=(0, 0, None))  # every model on the same images

    def _forward(self, p, b, x):
        return functional_call(self.skeleton, (p, b), (x,))

    def train(self) -> None:
        self.skeleton.train()

    def step(self, batches: Sequence[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
        m = len(batches)
        x, labels, partner, lam = (torch.stack(parts) for parts in zip(*batches))
        logits = self._train_forward(self.params, self.buffers, x).float()
        loss_a = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(m, -1)
        loss_b = F.cross_entropy(logits.flatten(0, 1), partner.flatten(), reduction="none").view(m, -1)
        losses = (lam * loss_a + (1 - lam) * loss_b).mean(dim=1)  # (m,): each model's own loss
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.optimizer.step()
        return losses.detach(), torch.where(lam >= 0.5, loss_a, loss_b).detach().sum(dim=1)

    @torch.no_grad()
    def validation_logits(self, data: PreparedData) -> torch.Tensor:
        spec = self.specs[0]
        self.skeleton.eval()
        logits = []
        for s in range(0, len(data.validation), spec.eval_batch_size):
            x = model_input(data.validation.images[s : s + spec.eval_batch_size].to(self.device), data.mean,
                            data.std, spec.input_size)
            logits.append(self._eval_forward(self.params, self.buffers, x).float())
        self.skeleton.train()
        return torch.cat(logits, dim=1)

    def weights(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in _model_state(self.params, self.buffers, i).items()}

    def snapshot(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return _model_state(self.params, self.buffers, i), _optimizer_state(self.optimizer, i)

    @torch.no_grad()
    def resume(self, models: Sequence[dict[str, Any]], optimizers: Sequence[dict[str, Any]]) -> None:
        stacked = {**self.params, **self.buffers}
        expected = {name: tuple(value.shape[1:]) for name, value in stacked.items()}
        for i, state in enumerate(models):
            got = {name: tuple(value.shape) for name, value in state.items()}
            if got != expected:
                differ = sorted(name for name in {*got, *expected} if got.get(name) != expected.get(name))
                raise ValueError(f"snapshot {i} does not hold a {self.specs[i].architecture} as its spec builds it: "
                                 f"{len(differ)} weights differ in name or shape, e.g. {differ[:3]}")
            for name, value in stacked.items():
                value[i].copy_(state[name])
        self.optimizer.load_state_dict(_stack_optimizer_states(optimizers))

    def module(self, i: int) -> torch.nn.Module:
        self.models[i].load_state_dict(_model_state(self.params, self.buffers, i))
        return self.models[i].train()


def train_stacked(specs: Sequence[TrainSpec], data: PreparedData, device: torch.device | str = "cpu",
                  progress: Callable[[int], None] | None = None,
                  snapshots: Sequence[dict[str, Any] | None] | None = None,
                  on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
                  on_epoch_trained: Callable[[int, torch.nn.Module, dict[str, float]], None] | None = None,
                  ) -> list[TrainResult]:
    """Train ``specs`` together; one :class:`TrainResult` per spec, equal to ``train_model`` on each.

    The clocks (``elapsed_seconds``, ``train_seconds``, the snapshots' ``elapsed`` and ``train_elapsed``) are
    the group's: every member reports the time of the whole group.

    Args:
        specs: models differing only in augmentation and starting state (see :func:`group_key`).
        data, device: as in ``train_model``.
        progress: called after each batch with the number of images processed (all models together).
        snapshots: per model, ``train_model``'s epoch snapshot to resume from, or None. Models resume only
            together: every snapshot must be of the same epoch (or all None).
        on_epoch_end: called as ``on_epoch_end(i, snapshot)`` for every model ``i`` after each epoch but the
            last, with ``train_model``'s snapshot format.
        on_epoch_trained: called as ``on_epoch_trained(i, model, record)`` for every model ``i`` after every
            epoch, the last included, as ``train_model``'s hook (``record``: the history row plus
            ``train_seconds``). ``model`` is a module holding model ``i``'s weights of that epoch, in training
            mode; it is a copy, so nothing done to it reaches the training.
    """
    data = normalised_with(data, specs[0].normalisation)  # one setting per group (group_key)
    trainee = _Stacked(specs, data, torch.device(device))
    return run_epochs(trainee, data, progress, snapshots, on_epoch_end, on_epoch_trained)
