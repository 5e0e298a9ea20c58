"""Ground-truth localisation: how much of a CAM lies on the object, given the object's mask.

Where the similarity metrics (:mod:`auglens.metrics.functional`) compare an augmented model's CAMs with the
baseline's, these score each model's CAM against a segmentation mask, so a study can say whether an
augmentation moved attention onto or off the object.

- **Energy-based pointing game** (Wang et al., "Score-CAM", CVPR Workshops 2020, Sec. 4.3): the share of
  the CAM's energy inside the object, sum(cam * mask) / sum(cam). Score-CAM scores against the bounding
  box; we use the mask itself, the finer ground truth. Negative CAM values (some methods produce them)
  carry no "attention" and are clipped to 0 first.
- **Top-region IoU**: the CAM's top-Y % region, selected exactly as the Overlap Rate selects it
  (:func:`auglens.metrics.functional.top_region`: the k = ceil(Y/100 * D) largest pixels, ties included),
  against the mask: |region & mask| / |region | mask|. Y comes from the metric's ``percents`` parameter.

A CAM equal to the mask scores 1 on both (on the IoU whenever the mask covers at least Y % of the image,
since the tied pixels of the mask are then the whole region). A mask with no object pixel, a CAM with no
positive value, or a CAM containing NaN gives NaN — an undefined value, never an invented one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from auglens.metrics.functional import top_region

__all__ = ["energy_pointing_game", "top_region_iou"]


def _flatten(cam: Any, mask: Any) -> tuple[Tensor, Tensor]:
    cam, mask = torch.as_tensor(cam), torch.as_tensor(mask)
    if cam.shape != mask.shape or cam.ndim < 2:
        raise ValueError(f"cam and mask must be batches of the same shape (N, H, W), got {tuple(cam.shape)} and "
                         f"{tuple(mask.shape)}; resize the masks to the CAMs' size first")
    if cam.device != mask.device:
        raise ValueError(f"cam and mask are on different devices ({cam.device} and {mask.device})")
    return cam.flatten(1).to(torch.float64), mask.flatten(1) > 0


def energy_pointing_game(cam: Any, mask: Any) -> Tensor:
    """Share of each CAM's (positive) energy inside its mask; (N, H, W), (N, H, W) -> (N,) float64 in [0, 1].

    ``mask`` is boolean or 0/1 (any value > 0 is object). NaN where the mask is empty, the CAM has no
    positive value, or the CAM contains NaN. Higher = more attention on the object.
    """
    cam, mask = _flatten(cam, mask)
    energy = cam.clamp_min(0.0)
    total = energy.sum(dim=1)
    inside = (energy * mask).sum(dim=1)
    undefined = (total <= 0) | ~mask.any(dim=1) | torch.isnan(cam).any(dim=1)
    # The two sums run in different orders, so the ratio of an all-inside CAM can round to 1 + 1 ulp.
    share = (inside / total.clamp_min(1e-300)).clamp_(0.0, 1.0)
    return torch.where(undefined, torch.full_like(total, math.nan), share)


def top_region_iou(cam: Any, mask: Any, top_percent: float) -> Tensor:
    """IoU between each CAM's top-``top_percent`` % region (ties included) and its mask; -> (N,) float64 in [0, 1].

    Shapes as :func:`energy_pointing_game`. NaN where the mask is empty or the CAM contains NaN. Higher =
    the CAM's strongest region coincides better with the object.
    """
    cam, mask = _flatten(cam, mask)
    region = top_region(cam, top_percent)
    iou = (region & mask).sum(dim=1).to(torch.float64) / (region | mask).sum(dim=1).to(torch.float64)
    undefined = ~mask.any(dim=1) | torch.isnan(cam).any(dim=1)
    return torch.where(undefined, torch.full_like(iou, math.nan), iou)
