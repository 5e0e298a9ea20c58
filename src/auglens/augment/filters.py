"""Pixel-value and filtering augmentations: Gaussian blur, colour jitter, histogram equalisation.

Defaults (auglens's choice; the thesis does not publish its parameters):
- ``gaussian_blur``: kernel 5x5, sigma ~ U(0.1, 2.0) per image (torchvision's ``GaussianBlur`` defaults
  for the sigma range), reflect padding.
- ``color_jitter``: brightness, contrast, saturation factors ~ U(1 - v, 1 + v) with v = 0.4, hue shift
  ~ U(-0.1, 0.1) of a turn; applied in a fixed order (brightness, contrast, saturation, hue) rather than
  torchvision's random order, and hue is a rotation of the chroma plane in YIQ space instead of an HSV
  round trip — cheaper and batched, and for small shifts visually the same. On grey images only
  brightness and contrast apply.
- ``equalize``: per-channel histogram equalisation of the 8-bit image (deterministic), torchvision's
  batched ``equalize``.
"""

from __future__ import annotations

import math

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


@AUGMENTATIONS.register("gaussian_blur")
class GaussianBlur(Augmentation):
    """Gaussian blur with a per-image sigma drawn from [sigma_min, sigma_max]."""

    def __init__(self, kernel_size: int = 5, sigma: tuple[float, float] = (0.1, 2.0)):
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"gaussian_blur: kernel_size must be odd and >= 3, got {kernel_size}")
        if not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"gaussian_blur: sigma must be (min, max) with 0 < min <= max, got {sigma}")
        self.kernel_size, self.sigma = kernel_size, tuple(sigma)

    def transform(self, images, keys):
        sigmas = rnd.uniform_range(keys, 1, self.sigma[0], self.sigma[1]).squeeze(1)
        kernels = gaussian_kernels(sigmas, self.kernel_size // 2).to(images.dtype)
        return separable_blur(images, kernels)


def _grey(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor.view(-1, 1, 1, 1) * a + (1 - factor.view(-1, 1, 1, 1)) * b).clamp(0, 1)


@AUGMENTATIONS.register("color_jitter")
class ColorJitter(Augmentation):
    """Random brightness, contrast, saturation and hue per image (saturation/hue only on colour images)."""

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1):
        if min(brightness, contrast, saturation) < 0 or not 0 <= hue <= 0.5:
            raise ValueError("color_jitter: brightness, contrast, saturation must be >= 0 and hue in [0, 0.5]")
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def _factor(self, keys, stream, spread, dtype):
        return rnd.uniform_range(keys, stream, max(0.0, 1 - spread), 1 + spread).squeeze(1).to(dtype)

    def transform(self, images, keys):
        dtype = images.dtype
        out = (images * self._factor(keys, 1, self.brightness, dtype).view(-1, 1, 1, 1)).clamp(0, 1)
        mean_grey = _grey(out).mean(dim=(1, 2, 3), keepdim=True)
        out = _blend(out, mean_grey.expand_as(out), self._factor(keys, 2, self.contrast, dtype))
        if images.shape[1] == 3:
            out = _blend(out, _grey(out).expand_as(out), self._factor(keys, 3, self.saturation, dtype))
            angle = rnd.uniform_range(keys, 4, -self.hue, self.hue).squeeze(1).to(dtype) * 2 * math.pi
            out = _rotate_hue(out, angle)
        return out


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _rotate_hue(images: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma (I, Q) plane by ``angle`` radians per image; (N, 3, H, W), (N,) -> (N, 3, H, W)."""
    to_yiq = _RGB_TO_YIQ.to(images.device, images.dtype)
    to_rgb = torch.linalg.inv(to_yiq)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(len(angle), 3, 3, dtype=images.dtype, device=images.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    matrix = to_rgb @ rotation @ to_yiq  # (N, 3, 3)
    return torch.einsum("nij,njhw->nihw", matrix, images).clamp(0, 1)


@AUGMENTATIONS.register("equalize")
class Equalize(Augmentation):
    """Histogram equalisation per channel of the 8-bit image (deterministic)."""

    def transform(self, images, keys):
        from torchvision.transforms.v2.functional import equalize

        as_bytes = (images * 255).round().clamp(0, 255).to(torch.uint8)
        return equalize(as_bytes).to(images.dtype) / 255.0
