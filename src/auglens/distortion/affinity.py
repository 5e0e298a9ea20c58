"""Affinity and diversity of an augmentation (Gontijo-Lopes et al., 2020), as used by the distortion paper.

- **Affinity**: accuracy of the clean-trained reference model on augmented test data relative to its
  accuracy on clean test data. The distortion paper reports the *difference* ``A(aug) - A(clean)``
  (negative numbers in its Table 5), the default here; later versions of Gontijo-Lopes et al. use the
  *ratio* ``A(aug) / A(clean)`` (``kind = "ratio"``).
- **Diversity**: the final training loss under the augmentation (Gontijo-Lopes et al.: "the training loss
  when learning with augmented samples") — the augmented model's mean cross-entropy over its last training
  epoch against the label of the majority image (lam >= 0.5: the first image's label), as the paper's
  Table 5 following Inoue (2018). Recorded by the training loop (``train_loss_majority`` in the history).
- **MixDiversity**: the same epoch's lam-weighted loss of both labels — the mixed-sample training
  objective (``train_loss``). Both are also reported as a ratio to the basic model's final training loss.

For mixed images, "accuracy on augmented data" uses the majority label as well.
"""

from __future__ import annotations

import torch

from auglens.augment.base import AugmentedBatch

__all__ = ["affinity", "majority_labels"]


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
