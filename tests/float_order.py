"""How far two float orders of the same training may drift: a tolerance from the steps taken, not from a run.

Training several models in lockstep (one ``vmap``-ed forward pass), with another thread count or another CPU
kernel (``ATEN_CPU_CAPABILITY``) computes the same sums in another order. Each order is exact up to rounding,
so the two trainings see the same gradients up to a relative error, and SGD turns a gradient error straight
into a parameter error: ``theta_k = theta_0 - sum_t lr_t * g_t``.

The argument, per parameter:

* A float32 sum of ``n`` terms in any order is within ``n * u * sum|terms|`` of the exact sum (Higham,
  *Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. 3.5; ``u = 2**-24``). Every gradient element
  of a small CNN is a sum over the batch and the output pixels of products that were themselves sums through
  the layers above; ``reduction_terms`` = batch x input pixels x weighted layers counts more terms than any of
  those chains has, so ``n * u`` bounds the relative error of every gradient element.
* The error of a step is then at most ``lr_t * n * u * G_t`` with ``G_t`` the step's largest gradient
  magnitude, recorded while the reference trains. With momentum ``mu`` an error keeps acting for
  ``1 / (1 - mu)`` steps in all.
* Errors made early are carried by later gradients, amplified at most by ``(1 + lr * L)`` per step (``L``: the
  gradient's Lipschitz constant). The tests that use this bound train few, small SGD steps (``lr * L`` well
  below 1 / steps), and a factor 2 covers that growth.

A wrong implementation (a member trained on another member's batch, augmented with another seed's draws,
started from other weights) moves a parameter by about ``lr * G`` in one step: ``1 / (n * u)`` times the bound,
a thousand times or more for the sizes used here. So the bound separates float order from a bug on any CPU,
which a tolerance read off one machine's run does not.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

#: float32's unit roundoff
UNIT_ROUNDOFF = 2.0 ** -24


def reduction_terms(model: torch.nn.Module, batch_size: int, image_side: int) -> int:
    """A count of terms larger than any chain of sums a gradient element of a small CNN goes through: batch x
    input pixels x the layers with weights (convolutions, normalisations, the classifier)."""
    weighted = sum(1 for m in model.modules() if any(True for _ in m.parameters(recurse=False)))
    return batch_size * image_side * image_side * weighted


class StepLog:
    """``lr_t * max|g_t|`` of every SGD step taken while :func:`record_steps` is active, per optimizer (one
    optimizer trains one model, or one lockstep group)."""

    def __init__(self) -> None:
        self.moves: dict[torch.optim.Optimizer, list[float]] = {}
        self.momentum = 0.0

    def __call__(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        if not isinstance(optimizer, torch.optim.SGD):
            raise AssertionError(f"the float-order bound holds for SGD, not {type(optimizer).__name__}")
        move = 0.0
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:  # SGD adds weight_decay * p to the gradient
                    largest = p.grad.abs().max() + group["weight_decay"] * p.detach().abs().max()
                    move = max(move, float(group["lr"]) * float(largest))
            self.momentum = max(self.momentum, float(group["momentum"]))
        self.moves.setdefault(optimizer, []).append(move)

    @property
    def steps(self) -> int:
        """The most steps any one optimizer took."""
        return max(map(len, self.moves.values()), default=0)

    def atol(self, terms: int) -> float:
        """The largest drift two float orders of one recorded training can show in one parameter (the largest
        over the trainings recorded)."""
        if not self.moves:
            raise AssertionError("no optimizer step was recorded")
        return 2.0 * terms * UNIT_ROUNDOFF * max(map(sum, self.moves.values())) / (1.0 - self.momentum)


@contextmanager
def record_steps() -> Iterator[StepLog]:
    """Record every optimizer step in this process (SGD only: Adam's step is not linear in the gradient)."""
    log = StepLog()
    handle = register_optimizer_step_pre_hook(log)
    try:
        yield log
    finally:
        handle.remove()


def assert_within_float_order(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], log: StepLog,
                              terms: int, label: str = "") -> None:
    """Weights of two float orders of the same SGD training: parameters within ``log``'s bound; batch-norm
    running statistics (averages of batch x pixel sums of the activations) within the relative error of such a
    sum, doubled for the drift of the weights that made the activations. Step counters exactly."""
    assert sorted(ours) == sorted(reference), label
    atol = log.atol(terms)
    for name, value in reference.items():
        if not value.is_floating_point():
            assert torch.equal(ours[name], value), f"{label} {name}"
        elif "running" in name:
            torch.testing.assert_close(ours[name], value, rtol=2 * terms * UNIT_ROUNDOFF, atol=0.0,
                                       msg=f"{label} {name}")
        else:
            torch.testing.assert_close(ours[name], value, rtol=0.0, atol=atol, msg=f"{label} {name}")
