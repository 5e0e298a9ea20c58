"""PreAct-ResNet18 (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016), CIFAR-style, in two
variants.

``preact_resnet18`` (the default): He et al.'s full pre-activation network as the paper describes it, the
architecture the distortion paper and FMix cite: a 3x3 stem convolution without pooling (32x32 inputs keep a
4x4 map at the last stage), pre-activation basic blocks (BN-ReLU-conv), widths 64-128-256-512, whose identity
shortcut carries the block's input unchanged, a final BN-ReLU, global average pooling and a linear classifier.
The CAM target is ``final`` (the BN-ReLU after the last block), so maps use the activations the classifier sees.

``preact_resnet18_release``: the network of the distortion paper's released code (``models/resnet.py``,
``ResNet18``), which produced its tables. It differs in three places:

- the stem is conv-BN-ReLU (here: ``stem`` then ``stem_bn``);
- a block's identity shortcut carries the *pre-activated* input, BN-ReLU(x), not x: the residual stream is
  re-normalised at every block rather than being an identity path through the network;
- there is no final BN-ReLU: the pooled output of the last block (a sum of un-normalised branches) goes to the
  classifier. Its CAM target is therefore ``layer4``.

Both keep the release's iOcclusion layer, ``layer3``. The default stays He et al.'s because that is the
network the papers name, and because a model registry name must keep meaning one network: models trained and
stored as ``preact_resnet18`` stay valid. Configs that reproduce the paper's numbers use the release's.

Both take ``width``, the first stage's channels (later stages 2x, 4x, 8x): 64, the default, is the papers'
network; a narrower one (``model.params.width = 16``, about 1/16 of the parameters and FLOPs) is a deliberate
deviation that lets a paper config be checked on a CPU.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from auglens.models.registry import MODELS


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice plus a shortcut; ``preactivated_identity``: the identity shortcut carries BN-ReLU(x)
    (the release) instead of x (He et al.)."""

    def __init__(self, c_in: int, c_out: int, stride: int, preactivated_identity: bool = False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.preactivated_identity = preactivated_identity
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        # The projection shortcut takes the pre-activated input in both variants (He et al.'s full
        # pre-activation unit); the identity one does in the release only.
        if self.shortcut is not None:
            shortcut = self.shortcut(out)
        else:
            shortcut = out if self.preactivated_identity else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    auglens_target_layer = "final"
    # The distortion paper's release takes its iOcclusion Grad-CAM after the third stage (layer_k = 6 of
    # conv1, bn1, relu, layer1, layer2, layer3): a 8x8 map on CIFAR rather than layer4's 4x4.
    auglens_occlusion_layer = "layer3"

    def __init__(self, num_classes: int = 10, in_channels: int = 3, release: bool = False, width: int = 64):
        super().__init__()
        if width < 1:
            raise ValueError(f"width (the first stage's channels) must be a positive integer, got {width!r}; "
                             "the papers' network has 64")
        self.release = release
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width) if release else None
        layers, c_in = [], width
        for c_out, stride in ((width, 1), (2 * width, 2), (4 * width, 2), (8 * width, 2)):
            layers.append(nn.Sequential(PreActBlock(c_in, c_out, stride, release),
                                        PreActBlock(c_out, c_out, 1, release)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.final = None if release else nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU())
        if release:
            self.auglens_target_layer = "layer4"
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = self.stem(x)
        if self.stem_bn is not None:
            x = F.relu(self.stem_bn(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.final is not None:
            x = self.final(x)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


@MODELS.register("preact_resnet18")
def preact_resnet18(num_classes: int, in_channels: int = 3, width: int = 64) -> PreActResNet18:
    """PreAct-ResNet18, CIFAR-style (He et al., 2016): the distortion paper's architecture; CAM target final.
    ``width``: the first stage's channels (later stages 2x, 4x, 8x; 64 is the paper's)."""
    return PreActResNet18(num_classes, in_channels, width=width)


@MODELS.register("preact_resnet18_release")
def preact_resnet18_release(num_classes: int, in_channels: int = 3, width: int = 64) -> PreActResNet18:
    """PreAct-ResNet18 as the distortion paper's released code builds it (conv-BN-ReLU stem, pre-activated
    identity shortcuts, no final BN-ReLU); CAM target layer4. ``width``: the first stage's channels (later
    stages 2x, 4x, 8x; 64 is the paper's)."""
    return PreActResNet18(num_classes, in_channels, release=True, width=width)
