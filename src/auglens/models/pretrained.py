"""torchvision's pretrained ImageNet classifiers, loaded from the user's torch cache (never downloaded here).

torchvision keeps downloaded weights in ``$TORCH_HOME/hub/checkpoints/<file>`` (``torch.hub.get_dir()``;
``~/.cache/torch/hub`` by default), the file name being the last part of the weights' URL, e.g.
``resnet101-cd907fc2.pth``. :func:`load_pretrained` reads exactly that file, so runs are reproducible and
work offline; a missing file is an error naming it and saying how to fetch it once.

The models expect ImageNet-normalised input (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`) and predict
the 1,000 ImageNet classes (:func:`pretrained_classes`, torchvision's class order).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "load_pretrained", "pretrained_classes", "pretrained_names",
           "pretrained_weights_path"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pretrained_names() -> list[str]:
    """torchvision's ImageNet classification architectures (those with pretrained weights)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _weights(architecture: str):
    import torchvision

    names = pretrained_names()
    if architecture not in names:
        raise ValueError(f"model.pretrained: {architecture!r} is not a torchvision ImageNet classifier; valid: "
                         f"{', '.join(names)}")
    return torchvision.models.get_model_weights(architecture).DEFAULT


def pretrained_weights_path(architecture: str) -> Path:
    """Where torchvision caches the default ImageNet weights of ``architecture`` (the file need not exist)."""
    url = _weights(architecture).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def pretrained_classes(architecture: str) -> list[str]:
    """The ImageNet class names, in the model's output order."""
    return list(_weights(architecture).meta["categories"])


def load_pretrained(architecture: str) -> nn.Module:
    """The architecture with its default ImageNet weights from the torch cache; raises FileNotFoundError if absent."""
    import torchvision

    path = pretrained_weights_path(architecture)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights of {architecture} not found: expected {path} (torchvision's cache, "
            f"$TORCH_HOME/hub/checkpoints). Fetch them once on a machine with internet access, e.g. "
            f"python -c \"import torchvision; torchvision.models.get_model('{architecture}', weights='DEFAULT')\", "
            f"and copy the file there; or set model.pretrained = false")
    model = torchvision.models.get_model(architecture, weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model
