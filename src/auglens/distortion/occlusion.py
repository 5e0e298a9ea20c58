"""Occlusion robustness: CutOcclusion and interplay occlusion (iOcclusion), Eq. 2 of the distortion paper.

CutOcclusion is the accuracy on test images with a fraction p occluded. iOcclusion relates the accuracy
gap between training and test data under occlusion to the model's generalisation gap:

    iOcclusion_p = | (A(D_train^p) - A(D_test^p)) / (A(D_train) - A(D_test)) |        (Eq. 2)

where ``D^p`` has a fraction p of each image's pixels removed. It is 1 at p = 0 by definition and falls
towards 0 as both accuracies approach chance; the paper argues robust models keep the gap longer.
A model with no generalisation gap (A_train = A_test) has no defined iOcclusion: NaN.

Masks (``masking``): ``"saliency"`` removes the p most salient pixels of a CAM of the model's predicted
class (the paper uses Grad-CAM; any registered CAM method works), ``"box"`` one in-bounds rectangle (so the
removed fraction is exact, as the paper's Section 3), ``"fourier"`` an FMix mask. Saliency masks come from
the clean image, computed once per model and image set. Where the authors' release (``gradcam.py``)
occludes, on a coin flip per batch, either the most or the least salient pixels, auglens occludes the most
salient ones as the paper says; ``order = "coin"`` reproduces the release per image. The Grad-CAM layer
defaults to the architecture's ``auglens_occlusion_layer`` where it declares one (PreAct-ResNet18:
``layer3``, the release's choice), else its CAM target layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from auglens.data.prepared import model_input
from auglens.distortion.distortions import (
    box_occlusion_masks,
    fourier_occlusion_masks,
    release_fourier_fractions,
    saliency_occlusion_masks,
)

__all__ = ["MASKINGS", "i_occlusion", "occlusion_masks", "saliency_maps"]

MASKINGS = ("saliency", "box", "fourier")


def i_occlusion(train_acc_p, test_acc_p, train_acc, test_acc) -> torch.Tensor:
    """Eq. 2, elementwise over broadcastable accuracies (any common unit) -> float64 tensor; NaN where no gap."""
    train_acc_p, test_acc_p, train_acc, test_acc = (torch.as_tensor(v, dtype=torch.float64)
                                                    for v in (train_acc_p, test_acc_p, train_acc, test_acc))
    gap = train_acc - test_acc
    ratio = (train_acc_p - test_acc_p) / torch.where(gap == 0, torch.nan, gap)
    return ratio.abs()


def saliency_maps(model: torch.nn.Module, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                  input_size: int | None, method: str = "gradcam", target_layer: str | None = None,
                  batch_size: int = 128) -> torch.Tensor:
    """CAMs of the predicted class at the images' own resolution; (N, C, H, W) in [0, 1] -> (N, H, W).

    Computed on the images' device; the model must live there.
    """
    from auglens import cam

    h, w = images.shape[-2:]
    out = []
    for start in range(0, len(images), batch_size):
        x = model_input(images[start : start + batch_size], mean, std, input_size)
        maps = cam.compute(model, x, method=method, target_layer=target_layer, batch_size=batch_size)
        if tuple(maps.shape[-2:]) != (h, w):
            # The model saw a resized image; bring the map back to the pixels that will be occluded.
            maps = F.interpolate(maps.unsqueeze(1), size=(h, w), mode="bilinear", align_corners=False).squeeze(1)
        out.append(maps.detach())
    return torch.cat(out)


def occlusion_masks(masking: str, fraction: float, keys: torch.Tensor, height: int, width: int,
                    saliency: torch.Tensor | None = None, order: str = "most",
                    decay_power: float = 3.0, fourier_fraction: str = "exact") -> torch.Tensor:
    """Masks removing ``fraction`` of each image's pixels by the named masking; -> (N, H, W) bool, True = occluded.

    ``fourier_fraction = "release"``: Fourier masks occlude a share ~ Beta(fraction, fraction) per image, as
    the authors' release does, instead of exactly ``fraction`` (the paper).
    """
    if masking == "saliency":
        if saliency is None:
            raise ValueError("masking 'saliency' needs the saliency maps")
        return saliency_occlusion_masks(saliency, fraction, keys, order)
    if masking == "box":
        return box_occlusion_masks(torch.full((len(keys),), fraction, dtype=torch.float64, device=keys.device),
                                   keys, height, width, restricted=True)
    if masking == "fourier":
        if fourier_fraction not in ("exact", "release"):
            raise ValueError(f"fourier_fraction must be 'exact' or 'release', got {fourier_fraction!r}")
        shares = release_fourier_fractions(fraction, keys) if fourier_fraction == "release" else fraction
        return fourier_occlusion_masks(shares, keys, height, width, decay_power)
    raise ValueError(f"unknown masking {masking!r}; valid: {', '.join(MASKINGS)}")
