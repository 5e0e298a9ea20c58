"""Architectures, registered by name; each model carries its default CAM target layer.

``build_model(name, num_classes, in_channels)`` returns an ``nn.Module`` whose attribute
``auglens_target_layer`` is the dotted name of its last convolutional stage — the thesis's CAM target.
A user's own architecture is given as ``"package.module:factory"``; the factory is called with
``num_classes`` and ``in_channels`` and may set ``auglens_target_layer`` itself (otherwise the CAM stage
uses the last ``nn.Conv2d``).
"""

from __future__ import annotations

import importlib

import torch.nn as nn

from auglens.models import preact_resnet, torchvision_models  # noqa: F401  (registration)
from auglens.models.registry import MODELS
from auglens.models.small_cnn import SmallCNN  # noqa: F401  (registration)


def build_model(name: str, num_classes: int, in_channels: int = 3, **params) -> nn.Module:
    """Build a registered architecture or a ``package.module:factory`` of the user's (``params``: extra kwargs)."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"cannot load model factory {name!r}: {error}") from error
        return factory(num_classes=num_classes, in_channels=in_channels, **params)
    return MODELS.build(name, num_classes=num_classes, in_channels=in_channels, **params)


__all__ = ["MODELS", "build_model", "SmallCNN"]
