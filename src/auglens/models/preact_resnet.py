"""PreAct-ResNet18 (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016), CIFAR-style.

The distortion paper's and FMix's architecture: a 3x3 stem without pooling (32x32 inputs keep a 4x4 map
at the last stage), pre-activation basic blocks (BN-ReLU-conv), widths 64-128-256-512, a final BN-ReLU,
global average pooling and a linear classifier. The CAM target is ``final`` (the BN-ReLU after the last
block), so maps use the activations the classifier actually sees.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from auglens.models.registry import MODELS


class PreActBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        # The projection shortcut takes the pre-activated input, as in the paper's full pre-activation unit.
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    auglens_target_layer = "final"
    # The distortion paper's release takes its iOcclusion Grad-CAM after the third stage (layer_k = 6 of
    # conv1, bn1, relu, layer1, layer2, layer3): a 8x8 map on CIFAR rather than layer4's 4x4.
    auglens_occlusion_layer = "layer3"

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        layers, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(PreActBlock(c_in, c_out, stride), PreActBlock(c_out, c_out, 1)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.final = nn.Sequential(nn.BatchNorm2d(512), nn.ReLU())
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.classifier(F.adaptive_avg_pool2d(self.final(x), 1).flatten(1))


@MODELS.register("preact_resnet18")
def preact_resnet18(num_classes: int, in_channels: int = 3) -> PreActResNet18:
    """PreAct-ResNet18, CIFAR-style (He et al., 2016): the distortion paper's architecture; CAM target final."""
    return PreActResNet18(num_classes, in_channels)
