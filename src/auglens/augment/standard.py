"""The standard augmentation of the distortion paper's trainer: random crop with zero padding, horizontal flip.

The authors' trainer (``trainer.py`` of their release, line 43: ``--augment``, default True) applies, to every
training image of CIFAR and FashionMNIST, torchvision's ``RandomCrop(size, padding=4)`` and then
``RandomHorizontalFlip()`` (``datasets/datasets.py``, lines 14 and 28), in the data loader, so before any
mixed-sample augmentation mixes the batch, and for the basic model too. ``training.standard_augmentation =
"crop_flip"`` does the same per sample, from the sample's key:

- the image is padded with 4 zero pixels on every side (black, before normalisation, as torchvision pads the
  PIL image) and the original size is cut out at offsets (top, left), each uniform on {0, ..., 8}, as
  ``RandomCrop.get_params`` draws them;
- the crop is mirrored left-right with probability 0.5.

For the same offsets and flip decision the image equals torchvision's (tested).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from auglens.augment import random as rnd

__all__ = ["PADDING", "STANDARD_AUGMENTATIONS", "StandardAugmentation", "crop_flip", "crop_flip_params",
           "standard_augmentation"]

#: The names ``training.standard_augmentation`` takes: none, or the authors' crop and flip.
StandardAugmentation = Literal["none", "crop_flip"]
STANDARD_AUGMENTATIONS: tuple[str, ...] = ("none", "crop_flip")

#: Zero padding of the random crop (pixels per side), as the authors' trainer.
PADDING = 4

# Streams of the per-sample draws; the keys are derived from the sample keys with their own stream, so the
# standard augmentation never shares a draw with the mixed-sample augmentation applied after it.
_KEY_STREAM, _TOP, _LEFT, _FLIP = 0x5741, 1, 2, 3


def crop_flip(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor,
              padding: int = PADDING) -> torch.Tensor:
    """Crop each zero-padded image at (top, left) to its own size, then mirror where ``flip``.

    (N, C, H, W), (N,) int offsets in [0, 2 * padding], (N,) bool -> (N, C, H, W).
    """
    n, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = top.to(images.device).view(n, 1) + torch.arange(h, device=images.device)  # (N, H)
    cols = left.to(images.device).view(n, 1) + torch.arange(w, device=images.device)  # (N, W)
    cols = torch.where(flip.to(images.device).view(n, 1), cols.flip(1), cols)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    # Advanced indexing on (N, H+2p, W+2p, C): one gather for the whole batch, no per-sample loop.
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()


def crop_flip_params(keys: torch.Tensor, padding: int = PADDING) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sample's (top, left, flip) from its key: offsets uniform on {0, ..., 2 * padding}, flip p = 0.5;
    (N,) int64 -> (N,), (N,), (N,) bool."""
    keys = rnd.derive_keys(keys, _KEY_STREAM)
    return (rnd.randint(keys, _TOP, 2 * padding + 1), rnd.randint(keys, _LEFT, 2 * padding + 1),
            rnd.bernoulli(keys, _FLIP, 0.5))


def standard_augmentation(name: str, images: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Apply the standard augmentation ``name`` to a batch; (N, C, H, W), (N,) int64 keys -> (N, C, H, W)."""
    if name == "none":
        return images
    if name == "crop_flip":
        return crop_flip(images, *crop_flip_params(keys))
    raise ValueError(f"unknown standard augmentation {name!r}; valid: {', '.join(STANDARD_AUGMENTATIONS)}")
