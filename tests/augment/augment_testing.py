"""Shared by the augmentation tests: the policies' operations and AugMix's mixing, as torchvision does them."""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as TF


def torchvision_op(image: torch.Tensor, name: str, m: float, interpolation: str) -> torch.Tensor:
    """One operation as torchvision's policies apply it (``_AutoAugmentBase._apply_image_or_video_transform``)."""
    mode = TF.InterpolationMode(interpolation)
    if name == "Identity":
        return image
    if name in ("ShearX", "ShearY"):
        shear = math.degrees(math.atan(m))
        return TF.affine(image, angle=0.0, translate=[0, 0], scale=1.0, interpolation=mode, center=[0, 0],
                         shear=[shear, 0.0] if name == "ShearX" else [0.0, shear])
    if name in ("TranslateX", "TranslateY"):
        shift = [int(m), 0] if name == "TranslateX" else [0, int(m)]
        return TF.affine(image, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0], interpolation=mode)
    if name == "Rotate":
        return TF.rotate(image, angle=m, interpolation=mode)
    adjust = {"Brightness": TF.adjust_brightness, "Color": TF.adjust_saturation,
              "Contrast": TF.adjust_contrast, "Sharpness": TF.adjust_sharpness}
    if name in adjust:
        return adjust[name](image, 1.0 + m)
    if name == "Posterize":
        return TF.posterize(image, int(m))
    if name == "Solarize":
        return TF.solarize(image, 1.0 * m)
    return {"AutoContrast": TF.autocontrast, "Equalize": TF.equalize, "Invert": TF.invert}[name](image)


def augmix_replayed(image: torch.Tensor, plan, i: int) -> torch.Tensor:
    """Image ``i`` of an AugMix plan made by torchvision: the weighted sum of the original and each chain's
    operations applied in turn."""
    mixed = float(plan.weights[i, 0]) * image
    for c, chain in enumerate(plan.chains):
        chained = image
        for draw in chain:
            chained = torchvision_op(chained, draw.names()[i], float(draw.magnitude[i]), "bilinear")
        mixed = mixed + float(plan.weights[i, c + 1]) * chained
    return mixed
