"""The thesis's candidate architectures from torchvision, for any number of classes and input channels.

Weights are randomly initialised: the thesis does not say whether its EfficientNet-B0 was trained from scratch
or fine-tuned from ImageNet weights, and training from scratch is auglens's choice (its default; a study's
``model.pretrained = "imagenet"`` starts every model from torchvision's ImageNet weights instead,
:mod:`auglens.models.pretrained`). Nothing is downloaded here.
For inputs with other than 3 channels the first convolution is replaced by one with the same geometry.
The CAM target is the last convolutional stage, as pytorch-grad-cam's examples use it:
EfficientNet-B0 ``features.8`` (the final 1x1 conv-BN-SiLU), ResNet-18 ``layer4.1`` (last residual
block), DenseNet-121 ``features.norm5`` (the output of the last dense block, ReLU applied after it in
``forward``).
"""

from __future__ import annotations

import torch.nn as nn

from auglens.models.registry import MODELS


def _replace_first_conv(parent: nn.Module, attribute: str, in_channels: int) -> None:
    conv = getattr(parent, attribute)
    if conv.in_channels == in_channels:
        return
    setattr(parent, attribute, nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                         conv.padding, bias=conv.bias is not None))


@MODELS.register("efficientnet_b0")
def efficientnet_b0(num_classes: int, in_channels: int = 3) -> nn.Module:
    """EfficientNet-B0 (Tan & Le, 2019), the thesis's architecture; CAM target features.8."""
    from torchvision.models import efficientnet_b0 as factory

    model = factory(weights=None, num_classes=num_classes)
    _replace_first_conv(model.features[0], "0", in_channels)
    model.auglens_target_layer = "features.8"
    return model


@MODELS.register("resnet18")
def resnet18(num_classes: int, in_channels: int = 3) -> nn.Module:
    """ResNet-18 (He et al., 2016); CAM target layer4.1."""
    from torchvision.models import resnet18 as factory

    model = factory(weights=None, num_classes=num_classes)
    _replace_first_conv(model, "conv1", in_channels)
    model.auglens_target_layer = "layer4.1"
    return model


@MODELS.register("densenet121")
def densenet121(num_classes: int, in_channels: int = 3) -> nn.Module:
    """DenseNet-121 (Huang et al., 2017); CAM target features.norm5."""
    from torchvision.models import densenet121 as factory

    model = factory(weights=None, num_classes=num_classes)
    _replace_first_conv(model.features, "conv0", in_channels)
    model.auglens_target_layer = "features.norm5"
    return model
