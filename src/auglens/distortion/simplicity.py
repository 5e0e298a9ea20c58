"""Simplicity bias with stacked images (the distortion paper's Section 4.1, after Shah et al., 2020).

An image of class k from a *simple* data set (MNIST in the paper) is stacked above an image of class k
from a *complex* one (CIFAR-10), so both halves predict the label. A model that relies on the simple half
only is revealed on test pairs recombined at random: its accuracy against the simple half's label stays
high while against the complex half's it falls to chance. The paper then trains with a mixed-sample
augmentation applied to the simple half only (``region = "top"`` of :mod:`auglens.augment.mixed`) and
finds the reliance reversed.

Both data sets must have the same number of classes (after picking ``classes``); class k of one is
paired with class k of the other. The simple images are brought to the complex images' channels
(:func:`auglens.augment.mixed.conform_images`) and, as the paper's "padded image" from MNIST, zero-padded
around the centre to the complex images' size (28x28 MNIST -> 32x32 with 2 black pixels per side); only a
simple image larger than the complex ones is resized instead. Then stacked: ``(N, C, 2H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from auglens.augment.mixed import conform_images
from auglens.data.datasets import ImageSet

__all__ = ["matched_pairs", "pick_classes", "random_pairs", "stack_halves", "stacked_set"]


def pick_classes(images: ImageSet, classes: list[int] | None) -> ImageSet:
    """Keep the listed classes, relabelled 0..K-1 in the listed order (all classes when None)."""
    if classes is None:
        return images
    lookup = torch.full((images.num_classes,), -1, dtype=torch.int64)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    keep = lookup[images.labels] >= 0
    return ImageSet(images.images[keep], lookup[images.labels[keep]], [images.classes[c] for c in classes])


def matched_pairs(simple_labels: torch.Tensor, complex_labels: torch.Tensor, seed: int) -> torch.Tensor:
    """For each complex image, a random simple image of the same class; (N_c,) -> (N_c,) indices into the simple set."""
    generator = torch.Generator().manual_seed(seed)
    out = torch.empty(len(complex_labels), dtype=torch.int64)
    for k in torch.unique(complex_labels).tolist():
        wanted = torch.nonzero(complex_labels == k).flatten()
        pool = torch.nonzero(simple_labels == k).flatten()
        if len(pool) == 0:
            raise ValueError(f"the simple data set has no image of class {k}")
        out[wanted] = pool[torch.randint(len(pool), (len(wanted),), generator=generator)]
    return out


def random_pairs(num_complex: int, num_simple: int, seed: int) -> torch.Tensor:
    """For each complex image, a simple image drawn at random, whatever its class; -> (N_c,) indices."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(num_simple, (num_complex,), generator=generator)


def stack_halves(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
    """(N, C', H', W') above (N, C, H, W) -> (N, C, 2H, W): the top converted to the bottom's channels, then
    zero-padded around the centre to H x W (the paper pads MNIST), or resized where it is larger."""
    _, c, h, w = bottom.shape
    th, tw = top.shape[-2:]
    if th > h or tw > w:
        return torch.cat([conform_images(top, c, h, w), bottom], dim=2)
    top = conform_images(top, c, th, tw)
    left, above = (w - tw) // 2, (h - th) // 2
    top = F.pad(top, (left, w - tw - left, above, h - th - above), value=0)
    return torch.cat([top.to(bottom.dtype), bottom], dim=2)


def stacked_set(simple: ImageSet, complex_: ImageSet, pairs: torch.Tensor) -> tuple[ImageSet, torch.Tensor]:
    """Stacked images labelled by the complex half, plus the simple half's labels; (ImageSet, (N,) int64)."""
    images = stack_halves(simple.images[pairs], complex_.images)
    names = [f"{s} / {c}" for s, c in zip(simple.classes, complex_.classes)]
    return ImageSet(images, complex_.labels.clone(), names), simple.labels[pairs].clone()
