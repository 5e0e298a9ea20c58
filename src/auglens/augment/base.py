"""The augmentation interface and the registry every augmentation family registers into.

An augmentation is a batched, pure function of (images, labels, per-sample keys). Images are float
(N, C, H, W) in [0, 1] at the data set's native resolution, on any device. Each sample's random
parameters come from its key (see :mod:`auglens.augment.random`), so the output for sample i does not
depend on which other samples share its batch — except for mixing augmentations, whose partner is
another sample of the batch by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from auglens.registry import Registry


@dataclass
class AugmentedBatch:
    """Augmented images with the targets to train them on.

    ``images`` (N, C, H, W); ``labels`` (N,) the first label; ``partner_labels`` (N,) the second label of
    a mixed sample (equal to ``labels`` for unmixed ones); ``lam`` (N,) the weight of ``labels`` in the
    loss: loss = lam * CE(labels) + (1 - lam) * CE(partner_labels).
    """

    images: torch.Tensor
    labels: torch.Tensor
    partner_labels: torch.Tensor
    lam: torch.Tensor


class Augmentation:
    """Base class. Subclasses implement :meth:`transform` (image-only) or override :meth:`__call__` (mixing)."""

    #: True when the augmentation combines two samples and their labels (CutMix, MixUp, ...).
    mixes_samples: bool = False

    def transform(self, images: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1], (N,) int64 keys -> (N, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, keys: torch.Tensor) -> AugmentedBatch:
        out = self.transform(images, keys).clamp_(0.0, 1.0)
        ones = torch.ones(len(labels), dtype=images.dtype, device=images.device)
        return AugmentedBatch(out, labels, labels, ones)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")

#: The augmentation name of the baseline model, trained without augmentation: the one place it is written.
BASELINE = "none"


def resolved_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with every parameter left out set to its default: what a training with augmentation ``name``
    depends on. Artifact keys are made from these, so two spellings of the same augmentation (a default left
    out or written) share their artifacts, and a changed default gives new keys instead of reusing models
    trained under the old one. The baseline (:data:`BASELINE`) has none."""
    if name == BASELINE:
        return dict(params)
    defaults = {key: parameter.default for key, parameter in AUGMENTATIONS.parameters(name).items()
                if parameter.default is not parameter.empty}
    return {**defaults, **params}


def frozen_params(name: str, params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """:func:`resolved_params` as a training's key holds them: sorted ``(name, value)`` pairs, lists as tuples
    (hashable, as ``TrainSpec`` must be), None values left out."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                        for k, v in resolved_params(name, params).items() if v is not None))


def build_augmentation(name: str, run_seed: int | None = None, **params) -> Augmentation | None:
    """Build a registered augmentation; :data:`BASELINE` (``"none"``) gives None.

    ``run_seed``: the starting state of the training run the augmentation serves (``TrainSpec.seed``). An
    augmentation that draws something once per training run (Random Masks' mask bank) draws it from this.
    """
    if name == BASELINE:
        return None
    augmentation = AUGMENTATIONS.build(name, **params)
    if run_seed is not None and hasattr(augmentation, "start_run"):
        augmentation.start_run(run_seed)
    return augmentation
