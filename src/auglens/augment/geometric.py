"""Geometric augmentations of the thesis: affine, elastic and random (resized) crop, batched per sample.

The thesis used torchvision's transforms, so each parameter here means what it means in torchvision
(``torchvision.transforms.v2``): for the same parameters the functional ops below give torchvision's
functional ops' image (tested to float rounding), and each class draws its parameters from the same
distributions as torchvision's transform — but per sample, from the sample's key, for a whole batch at once.

- ``affine`` (``RandomAffine``): angle ~ U(-degrees, degrees); translation ~ U(-t·W, t·W) × U(-t·H, t·H)
  pixels, rounded to whole pixels; scale ~ U(scale); x shear ~ U(-shear, shear) degrees (a 4-tuple also
  shears y); about the image centre; nearest-neighbour resampling (torchvision's default), zero fill.
- ``elastic`` (``ElasticTransform``): uniform noise in [-1, 1] per pixel and axis, blurred by a Gaussian of
  ``sigma`` pixels (kernel ``int(8 sigma + 1)``, made odd, truncated to the image where it is wider — there
  torchvision raises; reflect padding), scaled by ``alpha / side`` in
  grid units (-1..1), i.e. a displacement of ``alpha / 2`` pixels per unit of smoothed noise; bilinear,
  zero fill. ``convention = "simard"`` scales by ``alpha`` pixels instead (Simard et al. 2003, and
  auglens before it followed torchvision): twice the displacement for the same alpha.
- ``random_crop`` (``RandomResizedCrop``): a crop of area ~ U(scale) × H·W and aspect ratio w/h
  log-uniform in ``ratio`` (10 tries, then torchvision's centre-crop fallback) at a uniformly random whole-
  pixel position, resized back to H×W (bilinear). ``size_fraction = s`` instead crops round(s·H) ×
  round(s·W) pixels (``RandomCrop`` then ``Resize``), the narrower reading of the thesis's "crops the input
  image at a random location and resizes the cropped area".

Zero fill follows torchvision's implementation for fill = 0: with bilinear resampling a border pixel is
the zero-padded sample times the sampled in-image mask, so edges fade slightly more than a plain
``grid_sample`` would make them.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from auglens.augment import random as rnd
from auglens.augment.base import AUGMENTATIONS, Augmentation
from auglens.augment.filters import gaussian_kernels, separable_blur

Interpolation = Literal["nearest", "bilinear"]


def _pair(value, name: str, centre: float = 0.0) -> tuple[float, float]:
    """torchvision's reading of a range: a number v is (centre - v, centre + v), a pair is itself."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name}: a single number must be >= 0, got {value}")
        return (centre - float(value), centre + float(value))
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"{name}: expected a number or (min, max) with min <= max, got {value}")
    return (float(value[0]), float(value[1]))


# ---------------------------------------------------------------------------------------------- functional

def grid_transform(images: torch.Tensor, grid: torch.Tensor, interpolation: Interpolation) -> torch.Tensor:
    """Resample (N, C, H, W) at grid (N, H', W', 2) (normalised, align_corners=False), zero fill as torchvision.

    torchvision fills by resampling a ones channel with the image; for fill = 0 and bilinear resampling that
    multiplies the image's sample by the mask's sample, which we reproduce so images match.
    """
    if interpolation == "nearest":
        return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    ones = torch.ones_like(images[:, :1])
    sampled = F.grid_sample(torch.cat([images, ones], dim=1), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
    return sampled[:, :-1] * sampled[:, -1:]


def affine(images: torch.Tensor, angle: torch.Tensor, translate: torch.Tensor, scale: torch.Tensor,
           shear: torch.Tensor, interpolation: Interpolation = "nearest") -> torch.Tensor:
    """torchvision's ``affine`` about the image centre, one parameter set per image.

    (N, C, H, W), angle (N,) degrees, translate (N, 2) pixels (x, y), scale (N,), shear (N, 2) degrees
    (x, y) -> (N, C, H, W). Same inverse matrix as ``torchvision.transforms.v2.functional.affine``.
    """
    n, _, h, w = images.shape
    dtype = images.dtype
    rot = torch.deg2rad(angle.to(torch.float64))
    sx, sy = torch.deg2rad(shear.to(torch.float64)).unbind(1)
    scale = scale.to(torch.float64)
    tx, ty = translate.to(torch.float64).unbind(1)
    # RotateScaleShear = R(angle) S(scale) SHy(sy) SHx(sx); its inverse maps output pixels to input pixels.
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -(a * torch.tan(sx) + torch.sin(rot))
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = torch.cos(rot) - c * torch.tan(sx)
    m0, m1, m3, m4 = d / scale, -b / scale, -c / scale, a / scale
    m2 = -m0 * tx - m1 * ty
    m5 = -m3 * tx - m4 * ty
    theta = torch.stack([m0, m1, m2, m3, m4, m5], dim=1).view(n, 2, 3).to(images.device, dtype)
    # Pixel-centred output coordinates -> input coordinates -> normalised grid units.
    base = torch.empty(1, h, w, 3, dtype=dtype, device=images.device)
    base[..., 0] = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, dtype=dtype, device=images.device)
    base[..., 1] = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, dtype=dtype,
                                  device=images.device).unsqueeze(-1)
    base[..., 2] = 1.0
    half = torch.tensor([0.5 * w, 0.5 * h], dtype=dtype, device=images.device)
    rescaled = theta.transpose(1, 2) / half
    grid = base.view(1, h * w, 3).expand(n, -1, -1).bmm(rescaled).view(n, h, w, 2)
    return grid_transform(images, grid, interpolation)


def identity_grid(height: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Pixel centres in normalised units, (1, H, W, 2) (x, y), as torchvision's elastic uses."""
    xs = torch.linspace((1.0 - width) / width, (width - 1.0) / width, width, dtype=dtype, device=device)
    ys = torch.linspace((1.0 - height) / height, (height - 1.0) / height, height, dtype=dtype, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0)


def elastic(images: torch.Tensor, displacement: torch.Tensor, interpolation: Interpolation = "bilinear") -> torch.Tensor:
    """torchvision's ``elastic``: resample at identity + displacement; (N, C, H, W), (N, H, W, 2) -> (N, C, H, W).

    ``displacement`` is in normalised grid units (2 / side per pixel), x then y, as torchvision's.
    """
    _, _, h, w = images.shape
    grid = identity_grid(h, w, images.dtype, images.device) + displacement.to(images.device, images.dtype)
    return grid_transform(images, grid, interpolation)


def _bilinear_weights(start: torch.Tensor, length: torch.Tensor, size: int) -> torch.Tensor:
    """Row-stochastic (N, size, size): output index -> weights over input indices, resizing the segment
    [start, start + length) of each row to ``size`` samples (bilinear, align_corners=False, as
    ``F.interpolate``; never shrinking, so antialiasing changes nothing)."""
    n = len(start)
    device = start.device
    length_f = length.to(torch.float64).unsqueeze(1)
    src = ((torch.arange(size, dtype=torch.float64, device=device) + 0.5) * (length_f / size) - 0.5).clamp_min(0.0)
    low = src.floor().to(torch.int64).minimum(length.unsqueeze(1) - 1)
    high = (low + 1).minimum(length.unsqueeze(1) - 1)
    frac = (src - low.to(torch.float64)).clamp(0.0, 1.0)
    weights = torch.zeros(n, size, size, dtype=torch.float64, device=device)
    offset = start.unsqueeze(1)
    weights.scatter_add_(2, (offset + low).unsqueeze(2), (1.0 - frac).unsqueeze(2))
    weights.scatter_add_(2, (offset + high).unsqueeze(2), frac.unsqueeze(2))
    return weights


def resized_crop(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: torch.Tensor,
                 width: torch.Tensor) -> torch.Tensor:
    """Crop each image to its box and resize it back to the full size (bilinear), as torchvision's
    ``resized_crop(image, top, left, height, width, size=(H, W))``; (N, C, H, W), four (N,) int -> (N, C, H, W).

    Boxes lie inside the image. Separable resampling as two batched matrix products: one kernel call per
    axis for any mix of box sizes.
    """
    _, _, h, w = images.shape
    rows = _bilinear_weights(top, height, h).to(images.dtype)  # (N, H, H)
    cols = _bilinear_weights(left, width, w).to(images.dtype)  # (N, W, W)
    return torch.einsum("nyi,ncij,nxj->ncyx", rows, images, cols)


# ---------------------------------------------------------------------------------------------- augmentations

@AUGMENTATIONS.register("affine")
class RandomAffine(Augmentation):
    """torchvision's RandomAffine per image: rotation, whole-pixel translation, scale, shear (zero fill)."""

    def __init__(self, degrees: float | tuple[float, float] = 15.0, translate: float | tuple[float, float] = 0.1,
                 scale: tuple[float, float] = (0.9, 1.1),
                 shear: float | tuple[float, float] | tuple[float, float, float, float] = 10.0,
                 interpolation: Interpolation = "nearest"):
        self.degrees = _pair(degrees, "affine: degrees")
        translate = (translate, translate) if isinstance(translate, (int, float)) else tuple(translate)
        if len(translate) != 2 or not all(0 <= t <= 1 for t in translate):
            raise ValueError(f"affine: translate must be a fraction in [0, 1] or (x, y) fractions, got {translate}")
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"affine: scale must be (min, max) with 0 < min <= max, got {scale}")
        if isinstance(shear, (int, float)) or len(shear) == 2:
            shear = _pair(shear, "affine: shear") + (0.0, 0.0)
        elif len(shear) == 4:
            shear = _pair(shear[:2], "affine: shear") + _pair(shear[2:], "affine: shear")
        else:
            raise ValueError(f"affine: shear must be a number, (min, max) or (xmin, xmax, ymin, ymax), got {shear}")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"affine: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        self.translate, self.scale, self.shear = tuple(map(float, translate)), tuple(map(float, scale)), shear
        self.interpolation = interpolation

    def params(self, keys: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
        """Per-sample parameters, torchvision's distributions: angle, translate (px), scale, shear (float64)."""
        angle = rnd.uniform_range(keys, 1, *self.degrees).squeeze(1)
        max_shift = torch.tensor([self.translate[0] * width, self.translate[1] * height], dtype=torch.float64,
                                 device=keys.device)
        translate = ((2.0 * rnd.uniform(keys, 4, count=2) - 1.0) * max_shift).round()
        scale = rnd.uniform_range(keys, 3, *self.scale).squeeze(1)
        shear = torch.cat([rnd.uniform_range(keys, 2, *self.shear[:2]),
                           rnd.uniform_range(keys, 5, *self.shear[2:])], dim=1)
        return {"angle": angle, "translate": translate, "scale": scale, "shear": shear}

    def transform(self, images, keys):
        p = self.params(keys, *images.shape[-2:])
        return affine(images, p["angle"], p["translate"], p["scale"], p["shear"], self.interpolation)


@AUGMENTATIONS.register("random_crop")
class RandomResizedCrop(Augmentation):
    """torchvision's RandomResizedCrop per image (area share ``scale``, aspect ``ratio``), resized to full size."""

    def __init__(self, scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 size_fraction: float | None = None):
        if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"random_crop: scale must be (min, max) area shares with 0 < min <= max <= 1, got {scale}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"random_crop: ratio must be (min, max) with 0 < min <= max, got {ratio}")
        if size_fraction is not None and not 0 < size_fraction <= 1:
            raise ValueError(f"random_crop: size_fraction must be in (0, 1] (or unset), got {size_fraction}")
        self.scale, self.ratio = tuple(map(float, scale)), tuple(map(float, ratio))
        self.size_fraction = size_fraction

    TRIES = 10  # torchvision's number of attempts before the centre-crop fallback

    def params(self, keys: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
        """Per-sample crop boxes: top, left, height, width, (N,) int64."""
        n, device = len(keys), keys.device
        if self.size_fraction is not None:
            h = torch.full((n,), max(1, round(self.size_fraction * height)), dtype=torch.int64, device=device)
            w = torch.full((n,), max(1, round(self.size_fraction * width)), dtype=torch.int64, device=device)
        else:
            area = height * width * rnd.uniform_range(keys, 1, *self.scale, count=self.TRIES)
            log_ratio = rnd.uniform_range(keys, 2, math.log(self.ratio[0]), math.log(self.ratio[1]), count=self.TRIES)
            aspect = torch.exp(log_ratio)
            w_try = torch.sqrt(area * aspect).round().to(torch.int64)
            h_try = torch.sqrt(area / aspect).round().to(torch.int64)
            ok = (w_try > 0) & (w_try <= width) & (h_try > 0) & (h_try <= height)
            first = ok.to(torch.int64).argmax(dim=1, keepdim=True)  # the first try that fits
            found = ok.any(dim=1)
            # torchvision's fallback: the largest centred crop whose aspect ratio is within ``ratio``.
            in_ratio = width / height
            if in_ratio < self.ratio[0]:
                fallback = (round(width / self.ratio[0]), width)
            elif in_ratio > self.ratio[1]:
                fallback = (height, round(height * self.ratio[1]))
            else:
                fallback = (height, width)
            h = torch.where(found, h_try.gather(1, first).squeeze(1), fallback[0])
            w = torch.where(found, w_try.gather(1, first).squeeze(1), fallback[1])
        top = (rnd.uniform(keys, 3).squeeze(1) * (height - h + 1)).floor().to(torch.int64)
        left = (rnd.uniform(keys, 4).squeeze(1) * (width - w + 1)).floor().to(torch.int64)
        if self.size_fraction is None:
            top = torch.where(found, top, (height - h) // 2)
            left = torch.where(found, left, (width - w) // 2)
        return {"top": top, "left": left, "height": h, "width": w}

    def transform(self, images, keys):
        p = self.params(keys, *images.shape[-2:])
        return resized_crop(images, *(p[k].to(images.device) for k in ("top", "left", "height", "width")))


def elastic_kernel_radius(sigma: float) -> int:
    """Half-width of torchvision's elastic smoothing kernel: size int(8 sigma + 1), made odd."""
    size = int(8 * sigma + 1)
    return (size + 1) // 2 if size % 2 == 0 else size // 2


@AUGMENTATIONS.register("elastic")
class ElasticTransform(Augmentation):
    """torchvision's ElasticTransform per image: smoothed random displacements (alpha strength, sigma px)."""

    def __init__(self, alpha: float = 50.0, sigma: float = 5.0, interpolation: Interpolation = "bilinear",
                 convention: Literal["torchvision", "simard"] = "torchvision"):
        if alpha < 0 or sigma <= 0:
            raise ValueError(f"elastic: alpha must be >= 0 and sigma > 0, got alpha={alpha}, sigma={sigma}")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"elastic: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        if convention not in ("torchvision", "simard"):
            raise ValueError(f"elastic: convention must be 'torchvision' or 'simard', got {convention!r}")
        self.alpha, self.sigma, self.interpolation, self.convention = alpha, sigma, interpolation, convention

    def params(self, keys: torch.Tensor, height: int, width: int, dtype: torch.dtype = torch.float32
               ) -> dict[str, torch.Tensor]:
        """Per-sample displacement fields (N, H, W, 2) in normalised grid units, x then y."""
        n = len(keys)
        noise = rnd.uniform_range(keys, 1, -1.0, 1.0, count=2 * height * width).view(n, 2, height, width).to(dtype)
        sigmas = torch.full((n,), self.sigma, dtype=torch.float64, device=keys.device)
        # On images narrower than torchvision's kernel (where torchvision raises) the kernel is truncated.
        radius = min(elastic_kernel_radius(self.sigma), min(height, width) - 1)
        smooth = separable_blur(noise, gaussian_kernels(sigmas, radius).to(dtype))
        # torchvision: alpha / side grid units = alpha / 2 pixels; Simard: alpha pixels = 2 alpha / side.
        strength = self.alpha if self.convention == "torchvision" else 2.0 * self.alpha
        dx = smooth[:, 0] * strength / width
        dy = smooth[:, 1] * strength / height
        return {"displacement": torch.stack([dx, dy], dim=-1)}

    def transform(self, images, keys):
        p = self.params(keys, *images.shape[-2:], dtype=images.dtype)
        return elastic(images, p["displacement"], self.interpolation)
