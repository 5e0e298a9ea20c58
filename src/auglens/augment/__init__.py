"""Batched augmentations with per-sample seeded randomness, registered by name.

Each family lives in its own module; importing them here (explicitly, not by ``import *``) fills the
``AUGMENTATIONS`` registry.
"""

from auglens.augment import compose, filters, geometric, mixed, mixing, policies  # noqa: F401  (registration)
from auglens.augment.base import (AUGMENTATIONS, BASELINE, AugmentedBatch, Augmentation, build_augmentation,
                                  frozen_params, resolved_params)
from auglens.augment.random import sample_keys

THESIS_AUGMENTATIONS = ("affine", "cutmix", "color_jitter", "elastic", "equalize", "gaussian_blur", "random_crop")

__all__ = [
    "AUGMENTATIONS",
    "BASELINE",
    "AugmentedBatch",
    "Augmentation",
    "THESIS_AUGMENTATIONS",
    "build_augmentation",
    "frozen_params",
    "resolved_params",
    "sample_keys",
]
