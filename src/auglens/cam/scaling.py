"""Bringing low-resolution maps to image size, exactly as pytorch-grad-cam does, and compact storage.

pytorch-grad-cam (``BaseCAM.compute_cam_per_layer`` then ``aggregate_multi_layers``) does, per image:
ReLU -> min-max normalise -> ``cv2.resize`` to the input size (INTER_LINEAR) -> ReLU -> mean over target
layers -> min-max normalise again. ``compute_lowres`` stops after the first normalisation;
:func:`upsample_maps` does the rest. cv2's INTER_LINEAR on float32 is half-pixel-centred bilinear without
antialiasing, i.e. ``F.interpolate(mode="bilinear", align_corners=False)`` (they agree to ~1e-7; checked
for up- and downsampling and non-square, non-integer ratios).

Storing the low-resolution maps (e.g. 7x7) rather than the upsampled ones (224x224) saves ~1000x; upsampling
on read is cheap and deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from auglens.cam.base import minmax_normalise

__all__ = ["upsample_maps", "maps_to_storage", "maps_from_storage", "STORAGE_DTYPE"]

#: dtype of stored maps. Maps live in [0, 1), where float16's spacing is at most 2**-11 (~4.9e-4); see
#: tests/cam/test_cam_storage.py for what that does to the similarity metrics.
STORAGE_DTYPE = torch.float16


def _check_maps(maps: Tensor, what: str = "maps") -> None:
    if not isinstance(maps, Tensor) or maps.ndim != 3:
        got = f"shape {tuple(maps.shape)}" if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f"{what} must be a Tensor of shape (N, h, w); got {got}")


def upsample_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize then per-image min-max normalisation: ``(N, h, w) -> (N, H, W)`` float32.

    Args:
        maps: low-resolution maps, any float dtype (e.g. float16 from storage); computed in float32.
        size: ``(H, W)``, typically ``images.shape[-2:]``.
    """
    _check_maps(maps)
    if len(size) != 2:
        raise ValueError(f"size must be (H, W); got {tuple(size)}")
    size = (int(size[0]), int(size[1]))
    up = F.interpolate(maps.float()[:, None], size=size, mode="bilinear", align_corners=False, antialias=False)
    # The clamp mirrors the reference's second ReLU; bilinear weights are convex so it changes nothing
    # for non-negative input, but keeps the function exact for any input.
    return minmax_normalise(up[:, 0].clamp_min(0))


def maps_to_storage(maps: Tensor) -> Tensor:
    """``(N, h, w)`` float -> float16 for compact storage (all map writes go through here)."""
    if not torch.is_floating_point(maps):
        raise TypeError(f"maps must be a floating-point tensor; got dtype {maps.dtype}")
    return maps.to(STORAGE_DTYPE)


def maps_from_storage(stored: Tensor) -> Tensor:
    """Stored maps (float16) -> float32 (all map reads go through here)."""
    if not torch.is_floating_point(stored):
        raise TypeError(f"stored maps must be a floating-point tensor; got dtype {stored.dtype}")
    return stored.to(torch.float32)
