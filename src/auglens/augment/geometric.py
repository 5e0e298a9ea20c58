"""Geometric augmentations of the thesis: affine, elastic and random crop, batched with per-sample parameters.

All three resample the image through ``grid_sample`` (bilinear, zero fill), so a whole batch with
different parameters per image costs one kernel call. Parameter defaults are auglens's choice (the
thesis does not publish them) and are recorded in the shipped configs:

- ``affine``: rotation ±15°, translation ±10 % of the side, scale 0.9–1.1, shear ±10° (x only), as in
  torchvision's ``RandomAffine`` parameterisation.
- ``elastic``: displacement fields of uniform noise in [-1, 1] smoothed by a Gaussian of ``sigma`` pixels
  and scaled by ``alpha`` pixels, like torchvision's ``ElasticTransform`` (alpha 50, sigma 5 by default).
- ``random_crop``: a crop of ``size_fraction`` of each side at a uniformly random location, resized back
  to the full size (the thesis's "random location, resized back").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from auglens.augment import random as rnd
from auglens.augment.base import AUGMENTATIONS, Augmentation
from auglens.augment.filters import gaussian_kernels, separable_blur


def _resample(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@AUGMENTATIONS.register("affine")
class RandomAffine(Augmentation):
    """Random rotation, translation, scale and shear per image (zero fill)."""

    def __init__(self, degrees: float = 15.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1),
                 shear: float = 10.0):
        if degrees < 0 or shear < 0 or not 0 <= translate <= 1:
            raise ValueError("affine: degrees and shear must be >= 0 and translate in [0, 1]")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"affine: scale must be (min, max) with 0 < min <= max, got {scale}")
        self.degrees, self.translate, self.scale, self.shear = degrees, translate, tuple(scale), shear

    def transform(self, images, keys):
        n, _, h, w = images.shape
        angle = torch.deg2rad(rnd.uniform_range(keys, 1, -self.degrees, self.degrees).squeeze(1))
        shear = torch.deg2rad(rnd.uniform_range(keys, 2, -self.shear, self.shear).squeeze(1))
        scale = rnd.uniform_range(keys, 3, self.scale[0], self.scale[1]).squeeze(1)
        shift = rnd.uniform_range(keys, 4, -self.translate, self.translate, count=2) * 2.0  # normalised units
        # Forward map in pixel-proportional coordinates: x_out = T + R(angle) Sh(shear) S(scale) x_in.
        cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
        forward = torch.zeros(n, 2, 2, dtype=torch.float64, device=images.device)
        forward[:, 0, 0] = scale * cos
        forward[:, 0, 1] = scale * (cos * tan - sin)
        forward[:, 1, 0] = scale * sin
        forward[:, 1, 1] = scale * (sin * tan + cos)
        # grid_sample wants the inverse map (output -> input) in normalised coordinates; conjugating by the
        # half-sizes keeps rotations round on non-square images.
        half = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float64, device=images.device)
        inverse = torch.linalg.inv(forward)
        linear = inverse * half.view(1, 1, 2) / half.view(1, 2, 1)
        offset = -(linear @ shift.unsqueeze(2))
        return _resample(images, torch.cat([linear, offset], dim=2))


@AUGMENTATIONS.register("random_crop")
class RandomCrop(Augmentation):
    """A crop of ``size_fraction`` of each side at a random location, resized back to full size."""

    def __init__(self, size_fraction: float = 0.8):
        if not 0 < size_fraction <= 1:
            raise ValueError(f"random_crop: size_fraction must be in (0, 1], got {size_fraction}")
        self.size_fraction = size_fraction

    def transform(self, images, keys):
        s = self.size_fraction
        centre = rnd.uniform_range(keys, 1, -(1 - s), 1 - s, count=2)
        theta = torch.zeros(len(keys), 2, 3, dtype=torch.float64, device=images.device)
        theta[:, 0, 0] = s
        theta[:, 1, 1] = s
        theta[:, :, 2] = centre
        return _resample(images, theta)


@AUGMENTATIONS.register("elastic")
class ElasticTransform(Augmentation):
    """Elastic deformation: smoothed random displacement fields (alpha = strength, sigma = smoothness, pixels)."""

    def __init__(self, alpha: float = 50.0, sigma: float = 5.0):
        if alpha < 0 or sigma <= 0:
            raise ValueError(f"elastic: alpha must be >= 0 and sigma > 0, got alpha={alpha}, sigma={sigma}")
        self.alpha, self.sigma = alpha, sigma

    def transform(self, images, keys):
        n, _, h, w = images.shape
        noise = rnd.uniform_range(keys, 1, -1.0, 1.0, count=2 * h * w).view(n, 2, h, w).to(images.dtype)
        sigmas = torch.full((n,), self.sigma, dtype=torch.float64, device=images.device)
        radius = max(1, math.ceil(3 * self.sigma))
        smooth = separable_blur(noise, gaussian_kernels(sigmas, radius).to(images.dtype))
        # Displacement in pixels -> normalised grid units (2 / side).
        dx = smooth[:, 0] * self.alpha * 2.0 / w
        dy = smooth[:, 1] * self.alpha * 2.0 / h
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=images.device, dtype=images.dtype)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=images.device, dtype=images.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([grid_x + dx, grid_y + dy], dim=-1)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
