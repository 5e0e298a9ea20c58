"""Affinity and diversity of an augmentation (Gontijo-Lopes et al., 2020), as used by the distortion paper.

- **Affinity**: accuracy of the clean-trained reference model on augmented test data relative to its
  accuracy on clean test data. The distortion paper reports the *difference* ``A(aug) - A(clean)``
  (negative numbers in its Table 5), the default here; later versions of Gontijo-Lopes et al. use the
  *ratio* ``A(aug) / A(clean)`` (``kind = "ratio"``).
- **Diversity**: the final training loss under the augmentation — the cross-entropy of the
  augmentation-trained model on augmented training data against the label of the majority image
  (lam >= 0.5: the first image's label), as the paper's Table 5 following Inoue (2018).
- **MixDiversity**: the same loss with both labels, lam-weighted — the mixed-sample training objective.

For mixed images, "accuracy on augmented data" uses the majority label as well.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from auglens.augment.base import AugmentedBatch

__all__ = ["affinity", "diversity", "majority_labels"]


def affinity(augmented_accuracy, clean_accuracy, kind: str = "difference") -> torch.Tensor:
    """``A(aug) - A(clean)`` (the paper) or ``A(aug) / A(clean)`` (``kind = "ratio"``); elementwise, float64."""
    augmented = torch.as_tensor(augmented_accuracy, dtype=torch.float64)
    clean = torch.as_tensor(clean_accuracy, dtype=torch.float64)
    if kind == "difference":
        return augmented - clean
    if kind == "ratio":
        return augmented / clean
    raise ValueError(f"kind must be 'difference' or 'ratio', got {kind!r}")


def majority_labels(batch: AugmentedBatch) -> torch.Tensor:
    """The label of the image that contributes most to each mixed sample (ties: the first); (N,) int64."""
    return torch.where(batch.lam >= 0.5, batch.labels, batch.partner_labels)


def diversity(logits: torch.Tensor, batch: AugmentedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(Diversity, MixDiversity): mean majority-label CE and mean lam-weighted CE; (N, K) logits -> two scalars."""
    lam = batch.lam.to(logits.device, torch.float64)
    first = F.cross_entropy(logits.double(), batch.labels.to(logits.device), reduction="none")
    second = F.cross_entropy(logits.double(), batch.partner_labels.to(logits.device), reduction="none")
    majority = torch.where(lam >= 0.5, first, second)
    return majority.mean(), (lam * first + (1 - lam) * second).mean()
