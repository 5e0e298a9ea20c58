"""Pixel-value and filtering augmentations of the thesis: Gaussian blur, colour jitter, histogram equalisation.

The thesis used torchvision's transforms, so parameters mean what they mean in torchvision
(``torchvision.transforms.v2``); the functional ops below give torchvision's functional ops' image for the
same parameters (tested to float rounding), and each class draws torchvision's distributions per sample:

- ``gaussian_blur`` (``GaussianBlur``): one sigma ~ U(sigma) per image for both axes, a ``kernel_size``
  kernel exp(-x²/2σ²) normalised, reflect padding. Defaults: kernel 5, sigma (0.1, 2.0) (torchvision's).
- ``color_jitter`` (``ColorJitter``): brightness, contrast, saturation factors ~ U(max(0, 1 - v), 1 + v)
  (or U(min, max) for a pair), hue shift ~ U(-h, h) of a turn, applied in a random order per image
  (torchvision draws a permutation per call); brightness scales, contrast blends with the mean grey level,
  saturation blends with the grey image (ITU-R 601 weights 0.2989, 0.587, 0.114), hue shifts H in HSV.
  Grey images get brightness and contrast only, as torchvision. ``order = "fixed"`` applies brightness,
  contrast, saturation, hue in that order and ``hue_space = "yiq"`` rotates the YIQ chroma plane instead
  (auglens's earlier reading).
- ``equalize`` (``RandomEqualize`` / ``equalize``): per-channel histogram equalisation of the 8-bit image
  (PIL's look-up table, as torchvision), applied with probability ``p`` per image. The thesis describes
  equalisation as applied to the image, so ``p = 1`` by default; torchvision's ``RandomEqualize`` default
  is ``p = 0.5``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from auglens.augment import random as rnd
from auglens.augment.base import AUGMENTATIONS, Augmentation


def gaussian_kernels(sigmas: torch.Tensor, radius: int) -> torch.Tensor:
    """One normalised 1-D Gaussian kernel per sigma: (N,) -> (N, 2 * radius + 1)."""
    offsets = torch.arange(-radius, radius + 1, dtype=sigmas.dtype, device=sigmas.device)
    weights = torch.exp(-0.5 * (offsets.unsqueeze(0) / sigmas.unsqueeze(1)) ** 2)
    return weights / weights.sum(dim=1, keepdim=True)


def separable_blur(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own 1-D kernel along both axes; (N, C, H, W), (N, K) -> (N, C, H, W).

    Folding the batch into channels turns N different kernels into one grouped convolution.
    """
    n, c, h, w = images.shape
    k = kernels.shape[1]
    radius = k // 2
    if radius >= min(h, w):
        raise ValueError(f"blur kernel of size {k} is too large for {h}x{w} images")
    weight = kernels.repeat_interleave(c, dim=0)  # (N*C, K)
    flat = images.reshape(1, n * c, h, w)
    flat = F.pad(flat, (radius, radius, 0, 0), mode="reflect")
    flat = F.conv2d(flat, weight.view(n * c, 1, 1, k), groups=n * c)
    flat = F.pad(flat, (0, 0, radius, radius), mode="reflect")
    flat = F.conv2d(flat, weight.view(n * c, 1, k, 1), groups=n * c)
    return flat.view(n, c, h, w)


def gaussian_blur(images: torch.Tensor, sigmas: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """torchvision's ``gaussian_blur`` with one sigma per image; (N, C, H, W), (N,) -> (N, C, H, W)."""
    return separable_blur(images, gaussian_kernels(sigmas.to(images.device), kernel_size // 2).to(images.dtype))


@AUGMENTATIONS.register("gaussian_blur")
class GaussianBlur(Augmentation):
    """torchvision's GaussianBlur per image: a sigma drawn from [sigma_min, sigma_max]."""

    def __init__(self, kernel_size: int = 5, sigma: float | tuple[float, float] = (0.1, 2.0)):
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"gaussian_blur: kernel_size must be odd and >= 1, got {kernel_size}")
        sigma = (sigma, sigma) if isinstance(sigma, (int, float)) else tuple(sigma)
        if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"gaussian_blur: sigma must be > 0 or (min, max) with 0 < min <= max, got {sigma}")
        self.kernel_size, self.sigma = kernel_size, tuple(map(float, sigma))

    def params(self, keys: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample sigma (N,) float64."""
        return {"sigma": rnd.uniform_range(keys, 1, self.sigma[0], self.sigma[1]).squeeze(1)}

    def transform(self, images, keys):
        return gaussian_blur(images, self.params(keys)["sigma"], self.kernel_size)


# ---------------------------------------------------------------------------------------------- colour

def rgb_to_grey(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma with torchvision's weights (ITU-R 601, 0.2989 as torchvision)."""
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return 0.2989 * r + 0.587 * g + 0.114 * b


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.to(a.dtype).view(-1, 1, 1, 1)
    return (f * a + (1 - f) * b).clamp(0, 1)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale pixel values by a factor per image; (N, C, H, W), (N,) -> (N, C, H, W)."""
    return (images * factor.to(images.dtype).view(-1, 1, 1, 1)).clamp(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its mean grey level; (N, C, H, W), (N,) -> (N, C, H, W)."""
    grey = rgb_to_grey(images) if images.shape[1] == 3 else images
    return _blend(images, grey.mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each colour image with its grey image (grey images unchanged); (N, C, H, W), (N,)."""
    if images.shape[1] == 1:
        return images
    return _blend(images, rgb_to_grey(images), factor)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 3, H, W) HSV in [0, 1] (hue in turns; 0 for grey pixels)."""
    r, g, _ = images.unbind(1)
    maxc, minc = images.amax(dim=1), images.amin(dim=1)
    grey = maxc == minc
    spread = maxc - minc
    ones = torch.ones_like(maxc)
    saturation = spread / torch.where(grey, ones, maxc)
    # Distances of each channel from the maximum, in units of the spread; any finite value for grey pixels.
    rc, gc, bc = ((maxc.unsqueeze(1) - images) / torch.where(grey, ones, spread).unsqueeze(1)).unbind(1)
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(grey, torch.zeros_like(hue), hue)
    return torch.stack([(hue / 6.0 + 1.0).fmod(1.0), saturation, maxc], dim=1)


def hsv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) HSV in [0, 1] -> (N, 3, H, W) RGB in [0, 1]."""
    h, s, v = images.unbind(1)
    h6 = h * 6.0
    sector = h6.floor()
    f = h6 - sector
    sector = sector.to(torch.int64).remainder(6)
    p = (v * (1.0 - s)).clamp(0, 1)
    q = (v * (1.0 - s * f)).clamp(0, 1)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0, 1)
    candidates = torch.stack([v, p, q, t], dim=1)  # (N, 4, H, W)
    # Which of (v, p, q, t) is R, G and B in each of the six hue sectors.
    table = torch.tensor([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]], device=images.device)
    return candidates.gather(1, table[:, sector].movedim(0, 1))


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift the HSV hue by ``shift`` turns per image (grey images unchanged); (N, C, H, W), (N,)."""
    if images.shape[1] == 1:
        return images
    hsv = rgb_to_hsv(images)
    hue = (hsv[:, 0] + shift.to(images.dtype).view(-1, 1, 1)).remainder(1.0)
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], dim=1))


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rotate_hue_yiq(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the YIQ chroma plane by ``shift`` turns per image (grey images unchanged); (N, C, H, W), (N,)."""
    if images.shape[1] == 1:
        return images
    to_yiq = _RGB_TO_YIQ.to(images.device, images.dtype)
    to_rgb = torch.linalg.inv(to_yiq)
    angle = shift.to(images.dtype) * 2 * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(len(angle), 3, 3, dtype=images.dtype, device=images.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    matrix = to_rgb @ rotation @ to_yiq  # (N, 3, 3)
    return torch.einsum("nij,njhw->nihw", matrix, images).clamp(0, 1)


def _factor_range(value, name: str) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"color_jitter: {name} must be >= 0, got {value}")
        return (max(0.0, 1.0 - value), 1.0 + value)
    if len(value) != 2 or not 0 <= value[0] <= value[1]:
        raise ValueError(f"color_jitter: {name} must be >= 0 or (min, max) with 0 <= min <= max, got {value}")
    return (float(value[0]), float(value[1]))


@AUGMENTATIONS.register("color_jitter")
class ColorJitter(Augmentation):
    """torchvision's ColorJitter per image: brightness, contrast, saturation, hue in a random order."""

    #: The four adjustments, indexed as torchvision's ``fn_idx``.
    OPS = ("brightness", "contrast", "saturation", "hue")
    NEUTRAL = ((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (0.0, 0.0))

    def __init__(self, brightness: float | tuple[float, float] = 0.4, contrast: float | tuple[float, float] = 0.4,
                 saturation: float | tuple[float, float] = 0.4, hue: float | tuple[float, float] = 0.1,
                 order: Literal["random", "fixed"] = "random", hue_space: Literal["hsv", "yiq"] = "hsv"):
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.saturation = _factor_range(saturation, "saturation")
        hue = (-hue, hue) if isinstance(hue, (int, float)) else tuple(hue)
        if len(hue) != 2 or not -0.5 <= hue[0] <= hue[1] <= 0.5:
            raise ValueError(f"color_jitter: hue must be in [0, 0.5] or (min, max) within [-0.5, 0.5], got {hue}")
        if order not in ("random", "fixed"):
            raise ValueError(f"color_jitter: order must be 'random' or 'fixed', got {order!r}")
        if hue_space not in ("hsv", "yiq"):
            raise ValueError(f"color_jitter: hue_space must be 'hsv' or 'yiq', got {hue_space!r}")
        self.hue, self.order, self.hue_space = tuple(map(float, hue)), order, hue_space

    def params(self, keys: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample factors (N,) float64 and the order (N, 4) int64 of the adjustments (indices into OPS)."""
        n = len(keys)
        out = {name: rnd.uniform_range(keys, stream, *getattr(self, name)).squeeze(1)
               for stream, name in enumerate(self.OPS, start=1)}
        if self.order == "random":
            # argsort of i.i.d. uniforms: each of the 24 permutations equally likely, as torch.randperm(4).
            out["order"] = rnd.uniform(keys, 5, count=4).argsort(dim=1)
        else:
            out["order"] = torch.arange(4, device=keys.device).expand(n, 4)
        return out

    def transform(self, images, keys):
        p = self.params(keys)
        order = p["order"].to(images.device)
        hue = adjust_hue if self.hue_space == "hsv" else rotate_hue_yiq
        ops = (adjust_brightness, adjust_contrast, adjust_saturation, hue)
        out = images
        for step in range(4):
            # Each image applies its step-th adjustment: group the batch by adjustment, one call per group.
            result = out.clone()
            for index, (name, op) in enumerate(zip(self.OPS, ops)):
                if getattr(self, name) == self.NEUTRAL[index]:
                    continue  # torchvision skips an adjustment whose range is the identity
                rows = (order[:, step] == index).nonzero().squeeze(1)
                if len(rows):
                    result[rows] = op(out[rows], p[name].to(images.device)[rows])
            out = result
        return out


@AUGMENTATIONS.register("equalize")
class Equalize(Augmentation):
    """Histogram equalisation per channel of the 8-bit image (torchvision's), with probability p per image."""

    def __init__(self, p: float = 1.0):
        if not 0 <= p <= 1:
            raise ValueError(f"equalize: p must be a probability in [0, 1], got {p}")
        self.p = p

    def params(self, keys: torch.Tensor) -> dict[str, torch.Tensor]:
        """Whether each image is equalised, (N,) bool."""
        return {"apply": rnd.bernoulli(keys, 1, self.p)}

    def transform(self, images, keys):
        from torchvision.transforms.v2.functional import equalize

        apply = self.params(keys)["apply"].to(images.device)
        if self.p == 1.0:
            return equalize(images)
        return torch.where(apply.view(-1, 1, 1, 1), equalize(images), images)
