"""Mixed-sample augmentations: CutMix (Yun et al., ICCV 2019), as the thesis uses it.

CutMix pastes a box from a partner image over the image. The thesis (Section 2.2) keeps the receiving
image's label: "cutting a section of an image B with class Y and mixing it with an image A, which has a
class X. The resulting image is then considered as having class X" — ``label = "receiver"``, the default.
``label = "mixed"`` mixes the labels by the pasted area, as Yun et al. do.
The partner of sample i is another sample of the same batch, drawn from i's key; lambda ~ Beta(alpha,
alpha). The box is torchvision's ``CutMix`` box (and Yun et al.'s reference code's): its centre is a
uniformly drawn pixel, its half-sides are ``int(sqrt(1 - lambda) / 2 * side)`` pixels, and it is clipped at
the border, so it covers at most 1 - lambda of the image; with ``label = "mixed"`` the label weight is the
share actually kept. ``box = "rounded"`` uses :func:`box_masks` instead (a continuous centre, sides
rounded to the nearest pixel — on average about 3 % more pasted area on 32×32 images), the box of the
distortion paper's analyses.
"""

from __future__ import annotations

from typing import Literal

import torch

from auglens.augment import random as rnd
from auglens.augment.base import AUGMENTATIONS, AugmentedBatch, Augmentation


def partner_indices(keys: torch.Tensor) -> torch.Tensor:
    """For each sample, another sample of the batch (itself only when the batch has one sample); (N,) -> (N,)."""
    n = len(keys)
    if n == 1:
        return torch.zeros(1, dtype=torch.int64, device=keys.device)
    offset = 1 + rnd.randint(keys, 101, n - 1)
    return (torch.arange(n, device=keys.device) + offset) % n


def box_masks(lam: torch.Tensor, keys: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Boolean (N, H, W) masks of boxes of area (1 - lam) * H * W, uniformly centred, clipped at the border."""
    cut = torch.sqrt(1.0 - lam)
    cut_h, cut_w = cut * height, cut * width
    centre = rnd.uniform(keys, 102, count=2)
    cy, cx = centre[:, 0] * height, centre[:, 1] * width
    y0 = (cy - cut_h / 2).round().clamp(0, height)
    y1 = (cy + cut_h / 2).round().clamp(0, height)
    x0 = (cx - cut_w / 2).round().clamp(0, width)
    x1 = (cx + cut_w / 2).round().clamp(0, width)
    ys = torch.arange(height, device=keys.device).view(1, height, 1)
    xs = torch.arange(width, device=keys.device).view(1, 1, width)
    inside_y = (ys >= y0.view(-1, 1, 1)) & (ys < y1.view(-1, 1, 1))
    inside_x = (xs >= x0.view(-1, 1, 1)) & (xs < x1.view(-1, 1, 1))
    return inside_y & inside_x


def pixel_centred_box_masks(lam: torch.Tensor, keys: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """torchvision's CutMix boxes as boolean (N, H, W) masks: centre a uniform pixel, half-sides
    int(sqrt(1 - lam) / 2 * side), clipped at the border."""
    centre_y = rnd.randint(keys, 104, height).view(-1, 1, 1)
    centre_x = rnd.randint(keys, 105, width).view(-1, 1, 1)
    r = 0.5 * torch.sqrt(1.0 - lam)
    half_h = (r * height).floor().to(torch.int64).view(-1, 1, 1)
    half_w = (r * width).floor().to(torch.int64).view(-1, 1, 1)
    ys = torch.arange(height, device=keys.device).view(1, height, 1)
    xs = torch.arange(width, device=keys.device).view(1, 1, width)
    # Clipping at the border is implicit: rows/columns outside the image do not exist.
    inside_y = (ys >= centre_y - half_h) & (ys < centre_y + half_h)
    inside_x = (xs >= centre_x - half_w) & (xs < centre_x + half_w)
    return inside_y & inside_x


@AUGMENTATIONS.register("cutmix")
class CutMix(Augmentation):
    """Paste a random box from another image of the batch (lambda ~ Beta(alpha, alpha)); label: receiver's or mixed."""

    mixes_samples = True

    def __init__(self, alpha: float = 1.0, label: Literal["receiver", "mixed"] = "receiver",
                 box: Literal["torchvision", "rounded"] = "torchvision"):
        if alpha <= 0:
            raise ValueError(f"cutmix: alpha must be > 0, got {alpha}")
        if label not in ("receiver", "mixed"):
            raise ValueError(f"cutmix: label must be 'receiver' (the thesis: the pasted-on image's class) or "
                             f"'mixed' (Yun et al.: labels mixed by area), got {label!r}")
        if box not in ("torchvision", "rounded"):
            raise ValueError(f"cutmix: box must be 'torchvision' or 'rounded', got {box!r}")
        self.alpha, self.label, self.box = alpha, label, box

    def __call__(self, images, labels, keys):
        n, _, h, w = images.shape
        partner = partner_indices(keys)
        lam = rnd.beta(keys, 103, self.alpha, self.alpha)
        masks = pixel_centred_box_masks if self.box == "torchvision" else box_masks
        mask = masks(lam, keys, h, w).to(images.device)
        mixed = torch.where(mask.unsqueeze(1), images[partner], images)
        if self.label == "receiver":
            ones = torch.ones(n, dtype=images.dtype, device=images.device)
            return AugmentedBatch(mixed, labels, labels, ones)
        kept = 1.0 - mask.flatten(1).to(torch.float64).mean(dim=1)
        return AugmentedBatch(mixed, labels, labels[partner], kept.to(images.dtype))
