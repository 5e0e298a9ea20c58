"""Resizing and per-channel normalisation of uint8 image batches."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: ImageNet's per-channel statistics, with which torchvision's pretrained weights were trained (RGB order).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_keep_aspect(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the shorter side is ``size`` then centre-crop to ``size x size``; (N, C, H, W) -> (N, C, S, S).

    The thesis resizes CIFAR-10 to 224x224 "while preserving the aspect ratio"; for square images this is a
    plain resize. For other shapes we crop rather than pad, so no model sees artificial borders.
    Bilinear with antialiasing (as PIL) so downscaling does not alias.
    """
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    dtype = images.dtype
    resized = F.interpolate(images.float(), size=(new_h, new_w), mode="bilinear", align_corners=False,
                            antialias=new_h < h)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    resized = resized[..., top : top + size, left : left + size]
    return resized if dtype.is_floating_point else resized.round().clamp(0, 255).to(dtype)


def resize_masks(masks: torch.Tensor, size: int) -> torch.Tensor:
    """Object masks through the images' resize and crop; (N, H, W) bool -> (N, S, S) bool.

    The mask is resized as a coverage map, like the image's pixels, and a pixel is object where at least
    half of it is covered.
    """
    return resize_keep_aspect(masks.float().unsqueeze(1), size).squeeze(1) >= 0.5


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images scaled to [0, 1]; (N, C, H, W) -> ((C,), (C,)).

    Accumulated in float64 over chunks so large data sets neither overflow nor need a float copy.
    """
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    count = 0
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].to(torch.float64).div_(255.0)
        total += block.sum(dim=(0, 2, 3)).cpu()
        total_sq += block.square().sum(dim=(0, 2, 3)).cpu()
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0).sqrt()
    return mean.float(), std.clamp_min(1e-6).float()


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std per channel for images in [0, 1]; (N, C, H, W) -> same shape."""
    mean = mean.to(images.device, images.dtype).view(1, -1, 1, 1)
    std = std.to(images.device, images.dtype).view(1, -1, 1, 1)
    return (images - mean) / std
