"""Mixed-sample augmentations: CutMix (Yun et al., ICCV 2019).

CutMix pastes a box from a partner image over the image and mixes the labels by the pasted area.
The partner of sample i is another sample of the same batch, drawn from i's key; the box area ratio is
1 - lambda with lambda ~ Beta(alpha, alpha); the box centre is uniform over the image and the box is
clipped at the border (so it may cover less than 1 - lambda), and lambda is then recomputed from the
clipped area, as in the reference implementation.
"""

from __future__ import annotations

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


@AUGMENTATIONS.register("cutmix")
class CutMix(Augmentation):
    """Paste a random box from another image of the batch; labels mixed by area (lambda ~ Beta(alpha, alpha))."""

    mixes_samples = True

    def __init__(self, alpha: float = 1.0):
        if alpha <= 0:
            raise ValueError(f"cutmix: alpha must be > 0, got {alpha}")
        self.alpha = alpha

    def __call__(self, images, labels, keys):
        n, _, h, w = images.shape
        partner = partner_indices(keys)
        lam = rnd.beta(keys, 103, self.alpha, self.alpha)
        mask = box_masks(lam, keys, h, w)
        mixed = torch.where(mask.unsqueeze(1), images[partner], images)
        kept = 1.0 - mask.flatten(1).to(torch.float64).mean(dim=1)
        return AugmentedBatch(mixed, labels, labels[partner], kept.to(images.dtype))
