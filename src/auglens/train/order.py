"""The training order of Appendix B: originals plus one augmented copy each, in a fixed shuffled order.

Position k of the order holds an index into the doubled training set: ``i < N`` is original image i and
``i >= N`` is the augmented copy of image ``i - N``. The permutation depends only on the sampling seed
(and the epoch, when reshuffling), never on the augmentation or the starting state — so position k holds
the same source image in every augmented model. The baseline uses the originals alone, shuffled by the
same sampling seed. With ``augment_every_sample`` (the usual recipe outside the thesis, e.g. the
distortion paper's) the training loop uses the baseline's order and augments every position.
"""

from __future__ import annotations

import torch


def training_order(num_images: int, augmented: bool, sampling_seed: int, epoch: int = 0,
                   reshuffle_each_epoch: bool = False) -> torch.Tensor:
    """Indices into the (doubled, when ``augmented``) training set, in training order; () -> (N or 2N,)."""
    total = 2 * num_images if augmented else num_images
    generator = torch.Generator().manual_seed(sampling_seed + (epoch * 1_000_003 if reshuffle_each_epoch else 0))
    return torch.randperm(total, generator=generator)
