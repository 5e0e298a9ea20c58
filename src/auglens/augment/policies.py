"""Automatic augmentation policies: RandAugment, TrivialAugment, AutoAugment and AugMix, per-sample seeded.

The recipes practitioners train with (timm's and torchvision's) rather than the thesis's single
augmentations. Parameters, operation sets and magnitude bins are torchvision's
(``torchvision.transforms.v2.RandAugment``, ``TrivialAugmentWide``, ``AutoAugment``, ``AugMix``); the
operations themselves are in :mod:`auglens.augment.ops`.

- ``randaugment`` (Cubuk et al., "RandAugment", CVPRW 2020): ``num_ops`` operations in a row, each drawn
  uniformly from 14 (Identity included), all at bin ``magnitude`` of ``num_magnitude_bins``; signed
  magnitudes flip sign with probability 1/2.
- ``trivial_augment`` (Müller & Hutter, "TrivialAugment", ICCV 2021; torchvision's "wide" space): one
  operation drawn uniformly from 14, at a uniformly drawn bin.
- ``autoaugment`` (Cubuk et al., "AutoAugment", CVPR 2019): one of the 25 learned sub-policies of
  ``policy`` (imagenet, cifar10 or svhn) drawn uniformly; each of its two steps applies its operation with
  its probability at its magnitude bin (of 10).
- ``augmix`` (Hendrycks et al., "AugMix", ICLR 2020): ``mixture_width`` chains of ``chain_depth``
  operations (1-3 at random when negative), magnitude bin uniform below ``severity`` (of 10), mixed as
  m * x + (1 - m) * sum_i w_i chain_i(x) with m ~ Beta(alpha, alpha), w ~ Dirichlet(alpha, ...). Only the
  images are mixed (torchvision's transform); AugMix's Jensen-Shannon consistency loss is not part of it.

Every choice is a pure function of the sample's key (:mod:`auglens.augment.random`), drawn for the whole
batch at once; :meth:`plan` exposes the drawn operations and magnitudes, so tests can replay them through
torchvision's functional ops and count their frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from auglens.augment import random as rnd
from auglens.augment.base import AUGMENTATIONS, Augmentation
from auglens.augment.ops import (
    INTERPOLATIONS, Interpolation, Op, apply_ops, linear, magnitude_table, posterize_bits, solarize_thresholds,
)

__all__ = ["AUGMIX_OPS", "AUTOAUGMENT_OPS", "AUTOAUGMENT_POLICIES", "AugMix", "AugMixPlan", "AutoAugment",
           "OpDraw", "RANDAUGMENT_OPS", "RandAugment", "TRIVIAL_AUGMENT_OPS", "TrivialAugment"]

# Random streams (see auglens.augment.random); each operation slot j of a policy uses base + 10 * j + offset.
_RANDAUGMENT, _TRIVIAL, _AUTOAUGMENT, _AUGMIX = 4_000, 5_000, 6_000, 7_000


# ---------------------------------------------------------------------------------------------- operation spaces

def _translate_fraction(axis: int, fraction: float):
    return lambda n, h, w: torch.linspace(0.0, fraction * (w if axis == 0 else h), n)


RANDAUGMENT_OPS: tuple[Op, ...] = (
    Op("Identity"),
    Op("ShearX", linear(0.3), True),
    Op("ShearY", linear(0.3), True),
    Op("TranslateX", _translate_fraction(0, 150.0 / 331.0), True),  # 150 px on 331-px images, scaled
    Op("TranslateY", _translate_fraction(1, 150.0 / 331.0), True),
    Op("Rotate", linear(30.0), True),
    Op("Brightness", linear(0.9), True),
    Op("Color", linear(0.9), True),
    Op("Contrast", linear(0.9), True),
    Op("Sharpness", linear(0.9), True),
    Op("Posterize", posterize_bits(8, 4)),
    Op("Solarize", solarize_thresholds),
    Op("AutoContrast"),
    Op("Equalize"),
)

AUTOAUGMENT_OPS: tuple[Op, ...] = (*RANDAUGMENT_OPS[1:], Op("Invert"))

TRIVIAL_AUGMENT_OPS: tuple[Op, ...] = (
    Op("Identity"),
    Op("ShearX", linear(0.99), True),
    Op("ShearY", linear(0.99), True),
    Op("TranslateX", linear(32.0), True),  # pixels, whatever the image size
    Op("TranslateY", linear(32.0), True),
    Op("Rotate", linear(135.0), True),
    Op("Brightness", linear(0.99), True),
    Op("Color", linear(0.99), True),
    Op("Contrast", linear(0.99), True),
    Op("Sharpness", linear(0.99), True),
    Op("Posterize", posterize_bits(8, 6)),
    Op("Solarize", solarize_thresholds),
    Op("AutoContrast"),
    Op("Equalize"),
)

#: AugMix's operations; the first nine are its ``all_ops = false`` set (no colour-space operations, which
#: overlap with ImageNet-C's corruptions).
AUGMIX_OPS: tuple[Op, ...] = (
    Op("ShearX", linear(0.3), True),
    Op("ShearY", linear(0.3), True),
    Op("TranslateX", _translate_fraction(0, 1.0 / 3.0), True),
    Op("TranslateY", _translate_fraction(1, 1.0 / 3.0), True),
    Op("Rotate", linear(30.0), True),
    Op("Posterize", posterize_bits(4, 4)),
    Op("Solarize", solarize_thresholds),
    Op("AutoContrast"),
    Op("Equalize"),
    Op("Brightness", linear(0.9), True),
    Op("Color", linear(0.9), True),
    Op("Contrast", linear(0.9), True),
    Op("Sharpness", linear(0.9), True),
)
_AUGMIX_PARTIAL = 9


def _parse_policy(text: str) -> tuple[tuple[tuple[str, float, int | None], ...], ...]:
    """Sub-policies written one per line as ``Op probability bin, Op probability bin`` (bin ``-``: none)."""
    policy = []
    for line in text.strip().splitlines():
        steps = []
        for step in line.split(","):
            name, probability, magnitude = step.split()
            steps.append((name, float(probability), None if magnitude == "-" else int(magnitude)))
        policy.append(tuple(steps))
    return tuple(policy)


# The learned sub-policies of the AutoAugment paper (its appendix), as torchvision ships them.
AUTOAUGMENT_POLICIES = {
    "imagenet": _parse_policy("""
        Posterize 0.4 8, Rotate 0.6 9
        Solarize 0.6 5, AutoContrast 0.6 -
        Equalize 0.8 -, Equalize 0.6 -
        Posterize 0.6 7, Posterize 0.6 6
        Equalize 0.4 -, Solarize 0.2 4
        Equalize 0.4 -, Rotate 0.8 8
        Solarize 0.6 3, Equalize 0.6 -
        Posterize 0.8 5, Equalize 1.0 -
        Rotate 0.2 3, Solarize 0.6 8
        Equalize 0.6 -, Posterize 0.4 6
        Rotate 0.8 8, Color 0.4 0
        Rotate 0.4 9, Equalize 0.6 -
        Equalize 0.0 -, Equalize 0.8 -
        Invert 0.6 -, Equalize 1.0 -
        Color 0.6 4, Contrast 1.0 8
        Rotate 0.8 8, Color 1.0 2
        Color 0.8 8, Solarize 0.8 7
        Sharpness 0.4 7, Invert 0.6 -
        ShearX 0.6 5, Equalize 1.0 -
        Color 0.4 0, Equalize 0.6 -
        Equalize 0.4 -, Solarize 0.2 4
        Solarize 0.6 5, AutoContrast 0.6 -
        Invert 0.6 -, Equalize 1.0 -
        Color 0.6 4, Contrast 1.0 8
        Equalize 0.8 -, Equalize 0.6 -
    """),
    "cifar10": _parse_policy("""
        Invert 0.1 -, Contrast 0.2 6
        Rotate 0.7 2, TranslateX 0.3 9
        Sharpness 0.8 1, Sharpness 0.9 3
        ShearY 0.5 8, TranslateY 0.7 9
        AutoContrast 0.5 -, Equalize 0.9 -
        ShearY 0.2 7, Posterize 0.3 7
        Color 0.4 3, Brightness 0.6 7
        Sharpness 0.3 9, Brightness 0.7 9
        Equalize 0.6 -, Equalize 0.5 -
        Contrast 0.6 7, Sharpness 0.6 5
        Color 0.7 7, TranslateX 0.5 8
        Equalize 0.3 -, AutoContrast 0.4 -
        TranslateY 0.4 3, Sharpness 0.2 6
        Brightness 0.9 6, Color 0.2 8
        Solarize 0.5 2, Invert 0.0 -
        Equalize 0.2 -, AutoContrast 0.6 -
        Equalize 0.2 -, Equalize 0.6 -
        Color 0.9 9, Equalize 0.6 -
        AutoContrast 0.8 -, Solarize 0.2 8
        Brightness 0.1 3, Color 0.7 0
        Solarize 0.4 5, AutoContrast 0.9 -
        TranslateY 0.9 9, TranslateY 0.7 9
        AutoContrast 0.9 -, Solarize 0.8 3
        Equalize 0.8 -, Invert 0.1 -
        TranslateY 0.7 9, AutoContrast 0.9 -
    """),
    "svhn": _parse_policy("""
        ShearX 0.9 4, Invert 0.2 -
        ShearY 0.9 8, Invert 0.7 -
        Equalize 0.6 -, Solarize 0.6 6
        Invert 0.9 -, Equalize 0.6 -
        Equalize 0.6 -, Rotate 0.9 3
        ShearX 0.9 4, AutoContrast 0.8 -
        ShearY 0.9 8, Invert 0.4 -
        ShearY 0.9 5, Solarize 0.2 6
        Invert 0.9 -, AutoContrast 0.8 -
        Equalize 0.6 -, Rotate 0.9 3
        ShearX 0.9 4, Solarize 0.3 3
        ShearY 0.8 8, Invert 0.7 -
        Equalize 0.9 -, TranslateY 0.6 6
        Invert 0.9 -, Equalize 0.6 -
        Contrast 0.3 3, Rotate 0.8 4
        Invert 0.8 -, TranslateY 0.0 2
        ShearY 0.7 6, Solarize 0.4 8
        Invert 0.6 -, Rotate 0.8 4
        ShearY 0.3 7, TranslateX 0.9 3
        ShearX 0.1 6, Invert 0.6 -
        Solarize 0.7 2, TranslateY 0.6 7
        ShearY 0.8 4, Invert 0.8 -
        ShearX 0.7 9, TranslateY 0.8 3
        ShearY 0.8 5, AutoContrast 0.7 -
        ShearX 0.7 2, Invert 0.1 -
    """),
}


# ---------------------------------------------------------------------------------------------- draws

@dataclass
class OpDraw:
    """One operation per sample: ``index`` (N,) int64 into ``ops`` (-1: skipped), ``magnitude`` (N,) float64
    (signed; 0 for operations without one)."""

    ops: tuple[Op, ...]
    index: torch.Tensor
    magnitude: torch.Tensor

    def names(self) -> list[str]:
        """Operation name per sample ("Identity" where skipped)."""
        return [self.ops[i].name if i >= 0 else "Identity" for i in self.index.tolist()]

    def apply(self, images: torch.Tensor, interpolation: Interpolation) -> torch.Tensor:
        return apply_ops(images, self.ops, self.index, self.magnitude, interpolation)


def _signed(table: torch.Tensor, signed: torch.Tensor, index: torch.Tensor, bin_: torch.Tensor | int,
            keys: torch.Tensor, stream: int) -> torch.Tensor:
    """Magnitude of bin ``bin_`` of each sample's operation, negated with probability 1/2 where signed."""
    magnitude = table[index, bin_]
    flip = rnd.bernoulli(keys, stream) & signed[index]
    return torch.where(flip, -magnitude, magnitude)


def _check_interpolation(name: str, interpolation: str) -> None:
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"{name}: interpolation must be one of {', '.join(map(repr, INTERPOLATIONS))}, "
                         f"got {interpolation!r}")


def _check_bins(name: str, num_magnitude_bins: int) -> None:
    if not isinstance(num_magnitude_bins, int) or num_magnitude_bins < 2:
        raise ValueError(f"{name}: num_magnitude_bins must be an integer >= 2, got {num_magnitude_bins!r}")


class _OpSequence(Augmentation):
    """A policy that applies a list of per-sample operation draws in order."""

    interpolation: Interpolation

    def plan(self, keys: torch.Tensor, height: int, width: int) -> list[OpDraw]:
        """The operations each sample gets, in order of application (keys (N,) -> draws of (N,))."""
        raise NotImplementedError

    def transform(self, images, keys):
        for draw in self.plan(keys, images.shape[-2], images.shape[-1]):
            images = draw.apply(images, self.interpolation)
        return images


# ---------------------------------------------------------------------------------------------- policies

@AUGMENTATIONS.register("randaugment")
class RandAugment(_OpSequence):
    """RandAugment: num_ops uniformly drawn operations per image at one magnitude bin (Cubuk et al. 2020)."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                 interpolation: Interpolation = "nearest"):
        if not isinstance(num_ops, int) or num_ops < 0:
            raise ValueError(f"randaugment: num_ops must be an integer >= 0, got {num_ops!r}")
        _check_bins("randaugment", num_magnitude_bins)
        if not isinstance(magnitude, int) or not 0 <= magnitude < num_magnitude_bins:
            raise ValueError(f"randaugment: magnitude is a bin index in [0, num_magnitude_bins - 1] = "
                             f"[0, {num_magnitude_bins - 1}], got {magnitude!r}")
        _check_interpolation("randaugment", interpolation)
        self.num_ops, self.magnitude, self.num_magnitude_bins = num_ops, magnitude, num_magnitude_bins
        self.interpolation = interpolation

    def plan(self, keys, height, width):
        table, signed = magnitude_table(RANDAUGMENT_OPS, self.num_magnitude_bins, height, width, keys.device)
        draws = []
        for j in range(self.num_ops):
            stream = _RANDAUGMENT + 10 * j
            index = rnd.randint(keys, stream, len(RANDAUGMENT_OPS))
            magnitude = _signed(table, signed, index, self.magnitude, keys, stream + 1)
            draws.append(OpDraw(RANDAUGMENT_OPS, index, magnitude))
        return draws


@AUGMENTATIONS.register("trivial_augment")
class TrivialAugment(_OpSequence):
    """TrivialAugment (wide): one uniformly drawn operation at a uniformly drawn magnitude (Müller & Hutter 2021)."""

    def __init__(self, num_magnitude_bins: int = 31, interpolation: Interpolation = "nearest"):
        _check_bins("trivial_augment", num_magnitude_bins)
        _check_interpolation("trivial_augment", interpolation)
        self.num_magnitude_bins, self.interpolation = num_magnitude_bins, interpolation

    def plan(self, keys, height, width):
        table, signed = magnitude_table(TRIVIAL_AUGMENT_OPS, self.num_magnitude_bins, height, width, keys.device)
        index = rnd.randint(keys, _TRIVIAL, len(TRIVIAL_AUGMENT_OPS))
        bins = rnd.randint(keys, _TRIVIAL + 1, self.num_magnitude_bins)
        return [OpDraw(TRIVIAL_AUGMENT_OPS, index, _signed(table, signed, index, bins, keys, _TRIVIAL + 2))]


@AUGMENTATIONS.register("autoaugment")
class AutoAugment(_OpSequence):
    """AutoAugment: a uniformly drawn learned sub-policy of two (operation, probability, bin) steps (Cubuk et al. 2019)."""

    def __init__(self, policy: Literal["imagenet", "cifar10", "svhn"] = "imagenet",
                 interpolation: Interpolation = "nearest"):
        if policy not in AUTOAUGMENT_POLICIES:
            raise ValueError(f"autoaugment: policy must be one of {', '.join(map(repr, AUTOAUGMENT_POLICIES))}, "
                             f"got {policy!r}")
        _check_interpolation("autoaugment", interpolation)
        self.policy, self.interpolation = policy, interpolation
        names = [op.name for op in AUTOAUGMENT_OPS]
        sub_policies = AUTOAUGMENT_POLICIES[policy]
        # (S, 2) tables: operation index, probability, magnitude bin (0 where the operation has none).
        self._op = torch.tensor([[names.index(name) for name, _, _ in sub] for sub in sub_policies])
        self._probability = torch.tensor([[p for _, p, _ in sub] for sub in sub_policies], dtype=torch.float64)
        self._bin = torch.tensor([[b or 0 for _, _, b in sub] for sub in sub_policies])

    def __repr__(self) -> str:
        return f"AutoAugment(policy={self.policy!r}, interpolation={self.interpolation!r})"

    def plan(self, keys, height, width):
        device = keys.device
        table, signed = magnitude_table(AUTOAUGMENT_OPS, 10, height, width, device)
        sub = rnd.randint(keys, _AUTOAUGMENT, len(self._op)).to(device)
        draws = []
        for step in range(2):
            stream = _AUTOAUGMENT + 10 * (step + 1)
            index = self._op.to(device)[sub, step]
            applied = rnd.uniform(keys, stream).squeeze(1) < self._probability.to(device)[sub, step]
            magnitude = _signed(table, signed, index, self._bin.to(device)[sub, step], keys, stream + 1)
            draws.append(OpDraw(AUTOAUGMENT_OPS, torch.where(applied, index, -1), magnitude))
        return draws


@dataclass
class AugMixPlan:
    """AugMix's draws: ``weights`` (N, 1 + width) float64 — the original's weight m, then each chain's
    (1 - m) * w_i — and ``chains[i][d]`` the d-th operation of chain i (index -1 beyond the sample's depth)."""

    weights: torch.Tensor
    chains: list[list[OpDraw]]


@AUGMENTATIONS.register("augmix")
class AugMix(Augmentation):
    """AugMix: convex mix of the image with mixture_width chains of random operations (Hendrycks et al. 2020)."""

    def __init__(self, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1, alpha: float = 1.0,
                 all_ops: bool = True, interpolation: Interpolation = "bilinear"):
        if not isinstance(severity, int) or not 1 <= severity <= 10:
            raise ValueError(f"augmix: severity must be an integer in [1, 10], got {severity!r}")
        if not isinstance(mixture_width, int) or mixture_width < 1:
            raise ValueError(f"augmix: mixture_width must be an integer >= 1, got {mixture_width!r}")
        if not isinstance(chain_depth, int) or chain_depth == 0:
            raise ValueError(f"augmix: chain_depth must be a positive integer, or negative for a depth drawn "
                             f"from 1-3 per chain, got {chain_depth!r}")
        if alpha <= 0:
            raise ValueError(f"augmix: alpha must be > 0, got {alpha}")
        _check_interpolation("augmix", interpolation)
        self.severity, self.mixture_width, self.chain_depth, self.alpha = severity, mixture_width, chain_depth, alpha
        self.all_ops, self.interpolation = all_ops, interpolation

    @property
    def ops(self) -> tuple[Op, ...]:
        return AUGMIX_OPS if self.all_ops else AUGMIX_OPS[:_AUGMIX_PARTIAL]

    def plan(self, keys: torch.Tensor, height: int, width: int) -> AugMixPlan:
        ops = self.ops
        table, signed = magnitude_table(ops, 10, height, width, keys.device)
        original = rnd.dirichlet(keys, _AUGMIX, self.alpha, 2)  # Beta(alpha, alpha) as a 2-part Dirichlet
        chain_weights = rnd.dirichlet(keys, _AUGMIX + 2, self.alpha, self.mixture_width) * original[:, 1:2]
        weights = torch.cat([original[:, :1], chain_weights], dim=1)
        max_depth = self.chain_depth if self.chain_depth > 0 else 3
        chains = []
        for i in range(self.mixture_width):
            base = _AUGMIX + 100 * (i + 1)
            if self.chain_depth > 0:
                depth = torch.full_like(keys, self.chain_depth)
            else:
                depth = 1 + rnd.randint(keys, base, 3)
            chain = []
            for d in range(max_depth):
                stream = base + 10 * (d + 1)
                index = rnd.randint(keys, stream, len(ops))
                bins = rnd.randint(keys, stream + 1, self.severity)
                magnitude = _signed(table, signed, index, bins, keys, stream + 2)
                chain.append(OpDraw(ops, torch.where(d < depth, index, -1), magnitude))
            chains.append(chain)
        return AugMixPlan(weights, chains)

    def transform(self, images, keys):
        plan = self.plan(keys, images.shape[-2], images.shape[-1])
        weights = plan.weights.to(device=images.device, dtype=images.dtype)
        mixed = weights[:, 0].view(-1, 1, 1, 1) * images
        for i, chain in enumerate(plan.chains):
            augmented = images
            for draw in chain:
                augmented = draw.apply(augmented, self.interpolation)
            mixed = mixed + weights[:, i + 1].view(-1, 1, 1, 1) * augmented
        return mixed
