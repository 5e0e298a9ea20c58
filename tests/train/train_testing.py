"""Shared by the training tests: a tiny prepared data set, and the logged epoch losses computed by hand."""

from __future__ import annotations

import torch

from auglens.data.datasets import ImageSet
from auglens.data.prepared import PreparedData


def tiny_data(n: int = 80, side: int = 12) -> PreparedData:
    """n one-channel images of 4 classes, each class brighter in its own quadrant: 60 to train on, 10 to
    validate, the rest to test."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 4
    images = torch.randint(0, 60, (n, 1, side, side), generator=g, dtype=torch.uint8)
    for k in range(4):  # a learnable signal: a bright quadrant per class
        rows, cols = divmod(k, 2)
        images[labels == k, :, rows * 6 : rows * 6 + 6, cols * 6 : cols * 6 + 6] += 150
    classes = [str(k) for k in range(4)]
    return PreparedData(ImageSet(images[:60], labels[:60], classes), ImageSet(images[60:70], labels[60:70], classes),
                        ImageSet(images[70:], labels[70:], classes), torch.tensor([0.3]), torch.tensor([0.3]))


#: Added to every per-sample loss: it changes no gradient, and makes each epoch's loss sum large enough that
#: float32 accumulation would lose several of its last digits.
LOSS_OFFSET = 1_000_000.0 / 3.0


def expected_epoch_losses(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """The logged mean losses of an unmixed epoch from its batches' per-sample losses: each batch's mean
    (float32, as training computes it) times its size, summed in float64, over the epoch's images."""
    total = majority = 0.0
    seen = 0
    for loss_a, loss_b in pairs:
        lam = torch.ones_like(loss_a)
        total += float((lam * loss_a + (1 - lam) * loss_b).mean(dim=-1) * loss_a.shape[-1])
        majority += float(torch.where(lam >= 0.5, loss_a, loss_b).sum(dim=-1))
        seen += loss_a.shape[-1]
    return total / seen, majority / seen
