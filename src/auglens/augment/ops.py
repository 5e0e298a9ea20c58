"""The image operations of the automatic-augmentation policies, batched with one operation and magnitude per sample.

AutoAugment (Cubuk et al., CVPR 2019), RandAugment (Cubuk et al., CVPRW 2020), TrivialAugment (Müller &
Hutter, ICCV 2021) and AugMix (Hendrycks et al., ICLR 2020) draw, per image, operations from one shared set
and a magnitude for each. The operations have torchvision's meaning (``torchvision.transforms.v2``'s
automatic-augmentation transforms and the functional ops they call, on float images in [0, 1]):

================  =====================================================================================
ShearX / ShearY   shear by atan(m) along x / y about the top-left corner
TranslateX / Y    shift by int(m) pixels (truncated towards zero)
Rotate            rotate by m degrees counter-clockwise about the centre
Brightness        ``adjust_brightness`` with factor 1 + m
Color             ``adjust_saturation`` with factor 1 + m (no effect on grey images)
Contrast          ``adjust_contrast`` with factor 1 + m
Sharpness         ``adjust_sharpness`` with factor 1 + m
Posterize         keep int(m) bits: floor(x * 2**b) / 2**b on float images
Solarize          invert the pixels >= m
AutoContrast, Equalize, Invert   no magnitude
================  =====================================================================================

Geometric operations fill with zeros and share one ``grid_sample`` call for every sample that drew one,
built from the inverse matrix and sampling grid torchvision builds; every other operation is elementwise or
per image. So a sample's output never depends on the other samples of its batch.

Deliberate deviation: torchvision's policies usually run on uint8 images and round after each operation; we
stay in float, as torchvision does for float input. Results differ from its uint8 path by rounding only: at
most 1/255 per operation (Posterize's float levels k / 2**b against the uint8 path's k * 2**(8 - b) / 255
included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

Interpolation = Literal["nearest", "bilinear"]
INTERPOLATIONS = ("nearest", "bilinear")

#: (num_bins, height, width) -> (num_bins,) magnitudes, as torchvision tabulates them (float32 values).
MagnitudeBins = Callable[[int, int, int], torch.Tensor]


@dataclass(frozen=True)
class Op:
    """One operation of a policy's space: its name, its magnitude bins (None: no magnitude), whether the
    magnitude's sign is flipped with probability 1/2."""

    name: str
    bins: MagnitudeBins | None = None
    signed: bool = False


def linear(high: float) -> MagnitudeBins:
    return lambda n, h, w: torch.linspace(0.0, high, n)


def posterize_bits(top: int, span: int) -> MagnitudeBins:
    """Bits from ``top`` down to ``top - span`` over the bins, rounded."""
    return lambda n, h, w: (top - torch.arange(n) / ((n - 1) / span)).round()


def solarize_thresholds(n: int, h: int, w: int) -> torch.Tensor:
    return torch.linspace(1.0, 0.0, n)


def magnitude_table(ops: Sequence[Op], num_bins: int, height: int, width: int,
                    device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Every op's magnitude per bin and its sign flag: -> (K, num_bins) float64 (0 for ops without), (K,) bool."""
    rows = [torch.zeros(num_bins) if op.bins is None else op.bins(num_bins, height, width).float() for op in ops]
    table = torch.stack(rows).to(torch.float64).to(device)
    signed = torch.tensor([op.signed for op in ops], dtype=torch.bool, device=device)
    return table, signed


# ---------------------------------------------------------------------------------------------- pixel operations
# Each takes (n, C, H, W) float images and (n,) float64 magnitudes and returns (n, C, H, W).

def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1)


def _grey(images: torch.Tensor) -> torch.Tensor:
    """torchvision's ``rgb_to_grayscale`` weights, (n, 3, H, W) -> (n, 1, H, W)."""
    r, g, b = images.unbind(dim=1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(1)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's ``_blend``: images * f + other * (1 - f), clamped to [0, 1]; f (n,) float64."""
    keep, rest = _per_sample(factor, images), _per_sample(1.0 - factor, images)
    return (images * keep + other * rest).clamp_(0.0, 1.0)


def brightness(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (images * _per_sample(1.0 + m, images)).clamp_(0.0, 1.0)


def color(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    return _blend(images, _grey(images), 1.0 + m)


def contrast(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    grey = _grey(images) if images.shape[1] == 3 else images
    # float64 accumulation keeps the mean independent of how the reduction is split over threads.
    mean = grey.to(torch.float64).mean(dim=(1, 2, 3), keepdim=True).to(images.dtype)
    return _blend(images, mean, 1.0 + m)


def sharpness(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_sharpness``: blend with a 3x3 smoothing (1s around a 5, over 13) inside the border."""
    h, w = images.shape[-2:]
    if h <= 2 or w <= 2:
        return images
    # The 3x3 filter as a sum of shifted views rather than conv2d, so every pixel is computed the same way
    # whatever the batch.
    neighbours = sum(images[..., 1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx]
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
    centre = images[..., 1:-1, 1:-1]
    blurred = neighbours * (1.0 / 13.0) + centre * (5.0 / 13.0)
    out = images.clone()
    out[..., 1:-1, 1:-1] = centre + (blurred - centre) * _per_sample(-m, images)  # 1 - factor = -m
    return out.clamp_(0.0, 1.0)


def posterize(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    levels = _per_sample(torch.exp2(m.trunc()), images)
    return torch.minimum((images * levels).floor_(), levels - 1).mul_(1.0 / levels)


def solarize(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return torch.where(images >= _per_sample(m, images), 1.0 - images, images)


def autocontrast(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2.functional import autocontrast as tv_autocontrast

    return tv_autocontrast(images)  # per image and channel, batched


def equalize(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2.functional import equalize as tv_equalize

    return tv_equalize(images)  # per image and channel on the 8-bit image, batched


def invert(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return 1.0 - images


PIXEL_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "Brightness": brightness, "Color": color, "Contrast": contrast, "Sharpness": sharpness,
    "Posterize": posterize, "Solarize": solarize, "AutoContrast": autocontrast, "Equalize": equalize,
    "Invert": invert,
}


# ---------------------------------------------------------------------------------------------- geometric operations

def inverse_affine(center: torch.Tensor, angle: torch.Tensor, translate: torch.Tensor,
                   shear: torch.Tensor) -> torch.Tensor:
    """torchvision's inverse affine matrix (output -> input pixel coordinates, origin at the image centre).

    ``center`` (n, 2) pixels relative to the image centre, ``angle`` (n,) degrees, ``translate`` (n, 2)
    pixels, ``shear`` (n, 2) degrees; scale 1. -> (n, 2, 3) float64.
    """
    rot, sx, sy = torch.deg2rad(angle), torch.deg2rad(shear[:, 0]), torch.deg2rad(shear[:, 1])
    tan_sx, cos_sy = torch.tan(sx), torch.cos(sy)
    # Rotation-shear matrix [[a, b], [c, d]] (determinant 1), inverted below.
    a = torch.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + torch.sin(rot))
    c = torch.sin(rot - sy) / cos_sy
    d = torch.cos(rot) - c * tan_sx
    cx, cy = center.unbind(1)
    moved_x, moved_y = cx + translate[:, 0], cy + translate[:, 1]
    row0 = torch.stack([d, -b, cx - d * moved_x + b * moved_y], dim=1)
    row1 = torch.stack([-c, a, cy + c * moved_x - a * moved_y], dim=1)
    return torch.stack([row0, row1], dim=1)


def _shear(axis: int) -> Callable[[torch.Tensor, int, int], torch.Tensor]:
    def matrix(m: torch.Tensor, h: int, w: int) -> torch.Tensor:
        shear = torch.zeros(len(m), 2, dtype=torch.float64, device=m.device)
        shear[:, axis] = torch.rad2deg(torch.atan(m))
        # About the top-left corner: centre (0, 0) in pixels is (-w/2, -h/2) from the image centre.
        corner = torch.tensor([-0.5 * w, -0.5 * h], dtype=torch.float64, device=m.device).expand(len(m), 2)
        zero = torch.zeros(len(m), dtype=torch.float64, device=m.device)
        return inverse_affine(corner, zero, torch.zeros_like(shear), shear)
    return matrix


def _translate(axis: int) -> Callable[[torch.Tensor, int, int], torch.Tensor]:
    def matrix(m: torch.Tensor, h: int, w: int) -> torch.Tensor:
        shift = torch.zeros(len(m), 2, dtype=torch.float64, device=m.device)
        shift[:, axis] = m.trunc()
        zero = torch.zeros(len(m), dtype=torch.float64, device=m.device)
        return inverse_affine(torch.zeros_like(shift), zero, shift, torch.zeros_like(shift))
    return matrix


def _rotate(m: torch.Tensor, h: int, w: int) -> torch.Tensor:
    zeros = torch.zeros(len(m), 2, dtype=torch.float64, device=m.device)
    # torchvision's rotate turns counter-clockwise: its matrix uses -(angle mod 360).
    return inverse_affine(zeros, -torch.remainder(m, 360.0), zeros, zeros)


GEOMETRIC_OPS: dict[str, Callable[[torch.Tensor, int, int], torch.Tensor]] = {
    "ShearX": _shear(0), "ShearY": _shear(1), "TranslateX": _translate(0), "TranslateY": _translate(1),
    "Rotate": _rotate,
}

OP_NAMES = ("Identity", *GEOMETRIC_OPS, *PIXEL_OPS)


def warp(images: torch.Tensor, matrices: torch.Tensor, interpolation: Interpolation = "nearest") -> torch.Tensor:
    """Resample each image through its inverse matrix, zero fill: (n, C, H, W), (n, 2, 3) -> (n, C, H, W).

    The grid is torchvision's ``_affine_grid``: pixel-centre coordinates about the image centre, mapped by the
    matrix and then normalised by the half-sizes.
    """
    n, _, h, w = images.shape
    dtype, device = images.dtype, images.device
    base = torch.empty(1, h, w, 3, dtype=dtype, device=device)
    base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device))
    base[..., 1].copy_(torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device).unsqueeze(-1))
    base[..., 2].fill_(1)
    theta = matrices.to(device=device, dtype=dtype).transpose(1, 2)
    theta = theta / torch.tensor([0.5 * w, 0.5 * h], dtype=dtype, device=device)
    grid = base.view(1, h * w, 3).expand(n, h * w, 3).bmm(theta).view(n, h, w, 2)
    return F.grid_sample(images, grid, mode=interpolation, padding_mode="zeros", align_corners=False)


# ---------------------------------------------------------------------------------------------- per-sample dispatch

def apply_ops(images: torch.Tensor, ops: Sequence[Op], index: torch.Tensor, magnitude: torch.Tensor,
              interpolation: Interpolation = "nearest") -> torch.Tensor:
    """Apply operation ``ops[index[i]]`` with magnitude ``magnitude[i]`` to image i.

    ``images`` (N, C, H, W) float in [0, 1]; ``index`` (N,) int64, -1 = leave the image as it is;
    ``magnitude`` (N,) float64, signed. -> (N, C, H, W). Samples are grouped by operation, and all
    geometric ones share a single resampling call.
    """
    _, _, h, w = images.shape
    index, magnitude = index.to(images.device), magnitude.to(images.device)
    out = images.clone()
    warped, matrices = [], []
    for k, op in enumerate(ops):
        if op.name == "Identity":
            continue
        chosen = (index == k).nonzero().squeeze(1)
        if chosen.numel() == 0:
            continue
        if op.name in GEOMETRIC_OPS:
            warped.append(chosen)
            matrices.append(GEOMETRIC_OPS[op.name](magnitude[chosen], h, w))
        else:
            out[chosen] = PIXEL_OPS[op.name](images[chosen], magnitude[chosen])
    if warped:
        chosen = torch.cat(warped)
        out[chosen] = warp(images[chosen], torch.cat(matrices), interpolation)
    return out


def check_ops(ops: Sequence[Op]) -> None:
    for op in ops:
        if op.name not in OP_NAMES:
            raise ValueError(f"unknown operation {op.name!r}; valid operations: {', '.join(OP_NAMES)}")
